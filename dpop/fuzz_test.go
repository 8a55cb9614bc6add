package dpop

import (
	"errors"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// FuzzCheck: whatever arrives in a DPoP header is refused with one of the
// fixed failures, never a panic; a refusal never echoes the input; a proof
// that passes names this request and carries a thumbprint.
func FuzzCheck(f *testing.F) {
	s := newSigner(f, jwa.ES256)
	good := s.proof(claimsFor("seed"), nil)
	for _, p := range []string{
		good, good + "x", strings.Replace(good, ".", "..", 1), "", ".", "..", "a.b.c",
		"eyJhbGciOiJub25lIn0.e30.", "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7fX0.e30.AA",
		"eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIn19.e30.AA",
	} {
		f.Add(p)
	}
	c := checker(f, Config{})
	f.Fuzz(func(t *testing.T, proof string) {
		res, err := c.Check(proof, target(""))
		if err != nil {
			var fl *Failure
			if !errors.As(err, &fl) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if len(proof) > 8 && strings.Contains(err.Error(), proof) {
				t.Fatalf("error echoes the proof")
			}
			return
		}
		if !ValidJKT(res.JKT) {
			t.Fatalf("accepted proof with thumbprint %q", res.JKT)
		}
	})
}
