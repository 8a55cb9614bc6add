package tokens

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

func TestIDTokenClaims(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			clock := newFakeClock()
			s := newService(t, openStore(t), withClock(Config{Alg: alg, IDTokenTTL: 10 * time.Minute}, clock))
			access := mint(t, s, Access{})
			authTime := clock.Now().Add(-5 * time.Minute)
			raw, err := s.MintIDToken(IDToken{
				Subject: "user-1", ClientID: "app-1", Nonce: "n-0S6_WzA2Mj",
				Name: "Ada Lovelace", Email: "ada@example.test",
				DefaultBusinessID: "biz-1", AuthorizedBusinessID: "biz-2", BusinessIDs: []string{"biz-1", "biz-2"},
				AuthTime: authTime, AccessToken: access,
			})
			if err != nil {
				t.Fatal(err)
			}
			hdr, c := segments(t, raw)
			if hdr["typ"] != "JWT" || hdr["alg"] != alg || hdr["kid"] != s.Keys()[0].ID {
				t.Errorf("header = %v", hdr)
			}
			now := float64(clock.Now().Unix())
			want := map[string]any{
				"iss": testIssuer, "sub": "user-1", "aud": "app-1", "azp": "app-1",
				"iat": now, "exp": now + 600, "auth_time": float64(authTime.Unix()),
				"nonce": "n-0S6_WzA2Mj", "user_id": "user-1", "user_name": "Ada Lovelace",
				"user_email": "ada@example.test", "default_business_id": "biz-1",
				"authorized_business_id": "biz-2", "at_hash": wantAtHash(alg, access),
			}
			for k, v := range want {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
			if ids, _ := c["business_ids"].([]any); len(ids) != 2 || ids[0] != "biz-1" || ids[1] != "biz-2" {
				t.Errorf("business_ids = %v", c["business_ids"])
			}

			// A relying party verifies it with nothing but the JWKS.
			set, err := jwk.Parse(s.JWKS())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify([]byte(raw), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
				t.Errorf("verifying with the JWKS: %v", err)
			}
		})
	}
}

func wantAtHash(alg, token string) string {
	var sum []byte
	if alg == "EdDSA" {
		s := sha512.Sum512([]byte(token))
		sum = s[:32]
	} else {
		s := sha256.Sum256([]byte(token))
		sum = s[:16]
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

func TestIDTokenOmitsEmptyOptionalClaims(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	raw, err := s.MintIDToken(IDToken{Subject: "user-1", ClientID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, c := segments(t, raw)
	for _, k := range []string{"nonce", "at_hash", "auth_time"} {
		if _, ok := c[k]; ok {
			t.Errorf("%s present though not given", k)
		}
	}
	if c["user_id"] != "user-1" {
		t.Errorf("user_id = %v, want the subject", c["user_id"])
	}
	if ids, ok := c["business_ids"].([]any); !ok || len(ids) != 0 {
		t.Errorf("business_ids = %#v, want an empty array", c["business_ids"])
	}
}

func TestMintUniqueJTI(t *testing.T) {
	s := newService(t, openStore(t), Config{})
	var seen []string
	for range 50 {
		_, c := segments(t, mint(t, s, Access{}))
		jti := c["jti"].(string)
		if slices.Contains(seen, jti) {
			t.Fatalf("jti %q repeated", jti)
		}
		seen = append(seen, jti)
	}
}
