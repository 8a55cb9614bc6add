package tokens

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzVerify: the only string that verifies is the token that was minted,
// spelled as it was minted (RFC 7515 §2, RFC 4648 §3.5): any other input,
// mangled, re-encoded, truncated or made up, is refused, by Verify and by
// Parse alike, and never panics. compactJWS agrees with the slow reading of
// the rule: three segments, each of which base64url-decodes and encodes back
// to itself.
func FuzzVerify(f *testing.F) {
	st := openStore(f)
	s := newService(f, st, Config{})
	genuine := mint(f, s, Access{Scopes: []string{"read:invoices"}, BusinessID: "biz_1"})
	if _, err := s.Verify(genuine); err != nil {
		f.Fatalf("the genuine token: %v", err)
	}
	h, p, sig := splitToken(genuine)
	reencode := func(seg string, enc *base64.Encoding) string {
		b, _ := base64.RawURLEncoding.DecodeString(seg)
		return enc.EncodeToString(b)
	}
	for _, seed := range []string{
		genuine,
		h + "." + p + "." + reencode(sig, base64.URLEncoding),
		h + "." + p + "." + reencode(sig, base64.RawStdEncoding),
		reencode(h, base64.URLEncoding) + "." + p + "." + sig,
		h + "." + p + "." + sig[:len(sig)-1] + string(sig[len(sig)-1]^1),
		h + "." + p + "." + sig + "=",
		h + "." + p + ".",
		h + "." + p,
		h + "." + p + "." + sig + ".",
		"eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + p + ".",
		"Bearer " + genuine,
		" " + genuine,
		"..", "", ".", "a.b.c", "e30.e30.e30",
		strings.Repeat("A", maxTokenLen+1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if got, want := compactJWS(raw), canonicalCompact(raw); got != want {
			t.Fatalf("compactJWS(%q) = %v, the rule says %v", raw, got, want)
		}
		c, err := s.Verify(raw)
		if (err == nil) != (raw == genuine) {
			t.Fatalf("Verify(%q): %+v, %v", raw, c, err)
		}
		if err == nil && (c.BusinessID != "biz_1" || c.Scope != "read:invoices") {
			t.Fatalf("the genuine token verified as %+v", c)
		}
		if _, err := s.Parse(raw); (err == nil) != (raw == genuine) {
			t.Fatalf("Parse(%q): %v", raw, err)
		}
	})
}

// canonicalCompact is compactJWS written the slow way.
func canonicalCompact(raw string) bool {
	if len(raw) > maxTokenLen {
		return false
	}
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return false
	}
	for _, seg := range segs {
		b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != seg {
			return false
		}
	}
	return true
}

func splitToken(raw string) (h, p, sig string) {
	h, rest, _ := strings.Cut(raw, ".")
	p, sig, _ = strings.Cut(rest, ".")
	return h, p, sig
}
