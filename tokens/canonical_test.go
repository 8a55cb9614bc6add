package tokens

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// genuineToken signs a valid access token whose header and payload
// segments have lengths with unused trailing bits (len%4 of 2 or 3) and
// whose signature holds a '-' or '_', so that every re-encoding below has
// something to change in every part.
func genuineToken(t *testing.T, s *Service, now int64) string {
	t.Helper()
	active := s.keys.Load().active
	for pad := 0; pad < 400; pad++ {
		hdr := map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": active.kid, "x": strings.Repeat("h", pad%4)}
		claims := map[string]any{
			"iss": testIssuer, "sub": "user-1", "aud": testIssuer, "client_id": "app-1",
			"scope": "read:invoices", "iat": now, "exp": now + 3600, "jti": "jti-1" + strings.Repeat("j", pad/4%4), "gid": "grant-1",
		}
		raw := craft(t, hdr, claims, jwa.ES256, active.priv)
		p := strings.Split(raw, ".")
		if len(p[0])%4 >= 2 && len(p[1])%4 >= 2 && strings.ContainsAny(p[2], "-_") && len(p[2])%4 >= 2 {
			return raw
		}
	}
	t.Fatal("no token with re-encodable parts")
	return ""
}

// Each part of a JWS has exactly one spelling: canonical, unpadded
// base64url (RFC 7515 §2, RFC 4648 §3.5). A genuine token re-encoded in
// any other way decodes to the same bytes, and is refused before the cache
// is consulted.
func TestVerifyRefusesNonCanonicalBase64(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{}, clock))
	good := genuineToken(t, s, clock.Now().Unix())
	if _, err := s.Verify(good); err != nil { // now in the cache too
		t.Fatalf("genuine token refused: %v", err)
	}

	// Re-encodings of one segment that decode to the same bytes.
	padded := func(seg string) string { return seg + strings.Repeat("=", (4-len(seg)%4)%4) }
	standard := func(seg string) string {
		return strings.NewReplacer("-", "+", "_", "/").Replace(seg)
	}
	flipped := func(seg string) string {
		// Set the unused low bits of the last character (len%4 is 2 or 3).
		unused := byte(0x0f)
		if len(seg)%4 == 3 {
			unused = 0x03
		}
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, seg[len(seg)-1])
		return seg[:len(seg)-1] + string(alphabet[byte(last)|unused])
	}
	parts := strings.Split(good, ".")
	names := []string{"header", "payload", "signature"}
	for i := range parts {
		for _, enc := range []struct {
			name string
			f    func(string) string
		}{{"padded", padded}, {"standard alphabet", standard}, {"flipped trailing bits", flipped}} {
			seg := enc.f(parts[i])
			if seg == parts[i] {
				if enc.name == "standard alphabet" && i < 2 {
					continue // header and payload may hold neither '-' nor '_'
				}
				t.Fatalf("%s of the %s changed nothing", enc.name, names[i])
			}
			std := base64.RawURLEncoding
			if enc.name == "standard alphabet" {
				std = base64.RawStdEncoding
			}
			// The variant really is the same bytes in a looser decoder.
			want, _ := base64.RawURLEncoding.DecodeString(parts[i])
			got, err := std.WithPadding(base64.NoPadding).DecodeString(strings.TrimRight(seg, "="))
			if err != nil || string(got) != string(want) {
				t.Fatalf("%s of the %s does not decode to the same bytes", enc.name, names[i])
			}
			variant := strings.Join(append(append(append([]string(nil), parts[:i]...), seg), parts[i+1:]...), ".")
			t.Run(names[i]+" "+enc.name, func(t *testing.T) {
				c, err := s.Verify(variant)
				if err == nil {
					t.Fatalf("accepted: %+v", c)
				}
				if !errors.Is(err, ErrInvalidToken) || err.Error() != "invalid token: malformed" {
					t.Errorf("err = %v, want invalid token: malformed", err)
				}
				if _, err := s.Parse(variant); err == nil {
					t.Error("Parse accepted it")
				}
			})
		}
	}
	if _, err := s.Verify(good); err != nil {
		t.Errorf("genuine token refused after the variants: %v", err)
	}
}

func TestCompactJWS(t *testing.T) {
	tests := []struct {
		raw  string
		want bool
	}{
		{"eyJh.eyJh.c2ln", true},
		{"..", true}, // empty segments are canonical; the verifier refuses them later
		{"QQ.QUI.QUJD", true},
		{"QR.QUI.QUJD", false},   // "QR": low 4 bits of R set
		{"QQ.QUJ.QUJD", false},   // "QUJ": low 2 bits of J set
		{"QQ==.QUI.QUJD", false}, // padding
		{"Q.QUI.QUJD", false},    // a length no encoding has
		{"QQ.Q+I.QUJD", false},   // standard alphabet
		{"QQ.Q/I.QUJD", false},
		{"QQ.QUI.QU JD", false},
		{"QQ.QUI.QUJD\n", false},
		{"QQ.QUI", false},
		{"QQ.QUI.QUJD.", false},
		{"QQ.QUI.QUJD.QQ", false},
		{"QQ.QUI.QUJ\x00", false},
		{"QQ.QUI.QUJ\xc3", false},
		{strings.Repeat("A", maxTokenLen-2) + "..", true},
		{strings.Repeat("A", maxTokenLen) + "..", false},
	}
	for _, tt := range tests {
		if got := compactJWS(tt.raw); got != tt.want {
			t.Errorf("compactJWS(%.40q) = %v, want %v", tt.raw, got, tt.want)
		}
	}
}

// canonicalShape, the check before the cache, refuses every re-encoding
// compactJWS does, and accepts everything compactJWS accepts.
func TestCanonicalShape(t *testing.T) {
	for _, raw := range []string{
		"eyJh.eyJh.c2ln", "..", "QQ.QUI.QUJD", "QR.QUI.QUJD", "QQ.QUJ.QUJD", "QQ==.QUI.QUJD", "Q.QUI.QUJD",
		"QQ.Q+I.QUJD", "QQ.Q/I.QUJD", "QQ.QUI", "QQ.QUI.QUJD.", "QQ.QUI.QUJD.QQ", "QQ.QU=.QUJD", "QQ.QUI.QUJ=",
	} {
		if compactJWS(raw) && !canonicalShape(raw) {
			t.Errorf("canonicalShape(%q) refuses a canonical token", raw)
		}
		if !compactJWS(raw) && strings.ContainsAny(raw, "=+/") && canonicalShape(raw) {
			t.Errorf("canonicalShape(%q) accepts a re-encoding", raw)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	raw := "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0." + strings.Repeat("eyJpc3MiOiJodHRwOi8vYmVuY2gudGVzdCJ9", 14) + ".c2lnbmF0dXJlc2lnbmF0dXJl"
	b.Run("shape", func(b *testing.B) {
		for b.Loop() {
			if !canonicalShape(raw) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			if !compactJWS(raw) {
				b.Fatal("refused")
			}
		}
	})
}

// FuzzCompactJWS: compactJWS accepts exactly the strings whose three parts
// decode strictly and re-encode to themselves, and canonicalShape (the check
// before the cache) never refuses what compactJWS accepts.
func FuzzCompactJWS(f *testing.F) {
	for _, s := range []string{"eyJh.eyJh.c2ln", "..", "QQ.QUI.QUJD", "QR.QUI.QUJD", "QQ==.QUI.QUJD", "Q.QUI.QUJD", "QQ.Q+I.QUJD", "a.b.c.d", "QQ.QUI.QU\nJD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		parts := strings.Split(raw, ".")
		want := len(parts) == 3 && len(raw) <= maxTokenLen
		for _, p := range parts {
			if !want {
				break
			}
			b, err := base64.RawURLEncoding.Strict().DecodeString(p)
			want = err == nil && base64.RawURLEncoding.EncodeToString(b) == p
		}
		if got := compactJWS(raw); got != want {
			t.Fatalf("compactJWS(%q) = %v, want %v", raw, got, want)
		}
		if want && !canonicalShape(raw) {
			t.Fatalf("canonicalShape(%q) refuses a canonical token", raw)
		}
	})
}
