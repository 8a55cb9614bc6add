package dpop

import (
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// BenchmarkCheck is one proof check (what oauth_protect adds to a request
// with a DPoP-bound token) next to the bare signature verification it
// contains ("verify-only": jwx's verifier with an already parsed key), so
// the overhead of parsing, claims, thumbprint and replay cache shows.
func BenchmarkCheck(b *testing.B) {
	for _, alg := range []jwa.SignatureAlgorithm{jwa.ES256, jwa.EdDSA} {
		s := newSigner(b, alg)
		proofs := make([]string, 20000)
		for i := range proofs {
			cl := claimsFor("")
			cl["jti"] = alg.String() + "-" + itoa(i)
			proofs[i] = s.proof(cl, nil)
		}
		b.Run(alg.String(), func(b *testing.B) {
			now := t0
			c := checker(b, Config{Now: func() time.Time { return now }, ReplayEntries: 1 << 22})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(proofs) {
					// Start over as if a minute later: a fresh replay cache.
					b.StopTimer()
					c = checker(b, Config{Now: func() time.Time { return now }, ReplayEntries: 1 << 22})
					i = 0
					b.StartTimer()
				}
				if _, err := c.Check(proofs[i], target(s.jkt())); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(alg.String()+"-verify-only", func(b *testing.B) {
			v, _ := jws.NewVerifier(alg)
			msg, err := jws.ParseString(proofs[0])
			if err != nil {
				b.Fatal(err)
			}
			input := []byte(proofs[0][:len(proofs[0])-len(msgSig(proofs[0]))-1])
			sig := msg.Signatures()[0].Signature()
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Verify(input, sig, s.pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func msgSig(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '.' {
			return p[i+1:]
		}
	}
	return ""
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
