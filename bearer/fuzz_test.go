package bearer

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzToken: an Authorization header yields no credential, a malformed
// one, or one token that has no space or tab in it and that is exactly
// what follows "Bearer " (RFC 6750 §2.1); writing it back the canonical way
// reads the same token.
func FuzzToken(f *testing.F) {
	for _, h := range []string{
		"Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig", "bearer abc", "BEARER abc", "Bearer  abc", "Bearer abc ",
		"Bearer a b", "Bearer a\tb", "Bearer ", "Bearer", "Basic YTpi", "Bearerabc", "Bearer abc==",
		"Bearer \x00", "Bearer é", "",
	} {
		f.Add(h, false)
	}
	f.Add("Bearer abc", true)
	f.Fuzz(func(t *testing.T, h string, twice bool) {
		hdr := http.Header{}
		if h != "" {
			hdr["Authorization"] = []string{h}
			if twice {
				hdr["Authorization"] = append(hdr["Authorization"], h)
			}
		}
		tok, present, malformed := Token(hdr)
		switch {
		case h == "":
			if present || malformed || tok != "" {
				t.Fatalf("no header: %q %v %v", tok, present, malformed)
			}
		case !present:
			t.Fatalf("header %q not present", h)
		case malformed || twice:
			if !malformed || tok != "" {
				t.Fatalf("%q (twice %v): token %q, malformed %v", h, twice, tok, malformed)
			}
		default:
			if tok == "" || strings.ContainsAny(tok, " \t") || !strings.EqualFold(h[:7], "Bearer ") ||
				strings.TrimLeft(h[7:], " ") != tok {
				t.Fatalf("%q read as %q", h, tok)
			}
			again, _, bad := Token(http.Header{"Authorization": {"Bearer " + tok}})
			if bad || again != tok {
				t.Fatalf("%q read as %q, written back as %q", h, tok, again)
			}
		}
	})
}
