package tokens

import (
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// "Is this a user token" is the subject_type claim, minted with the token,
// not a guess from its subject.
func TestSubjectType(t *testing.T) {
	clock := newFakeClock()
	s := newService(t, openStore(t), withClock(Config{}, clock))
	for _, tt := range []struct {
		a    Access
		want string
	}{
		{Access{Subject: "user-1", ClientID: "app-1", User: true}, "user"},
		{Access{Subject: "app-1", ClientID: "app-1"}, "client"},
		// A user whose id happens to equal the client id is still a user.
		{Access{Subject: "app-1", ClientID: "app-1", User: true}, "user"},
	} {
		raw := mint(t, s, tt.a)
		if _, claims := segments(t, raw); claims["subject_type"] != tt.want {
			t.Errorf("%+v: subject_type %v, want %s", tt.a, claims["subject_type"], tt.want)
		}
		c, err := s.Verify(raw)
		if err != nil || c.User != (tt.want == "user") {
			t.Errorf("%+v: Verify = %+v, %v", tt.a, c, err)
		}
	}

	// Tokens minted before the claim existed: a client-credentials token's
	// subject is its client.
	active := s.keys.Load().active
	now := clock.Now().Unix()
	hdr := map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": active.kid}
	claims := func(sub string, kv ...any) map[string]any {
		m := map[string]any{"iss": testIssuer, "sub": sub, "aud": testIssuer, "client_id": "app-1",
			"iat": now, "exp": now + 3600, "jti": "j-" + sub, "gid": "g-1"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, tt := range []struct {
		name   string
		claims map[string]any
		user   bool
		ok     bool
	}{
		{"legacy user token", claims("user-1"), true, true},
		{"legacy client token", claims("app-1"), false, true},
		{"unknown subject_type", claims("user-2", "subject_type", "robot"), false, false},
		{"subject_type not a string", claims("user-3", "subject_type", true), false, false},
	} {
		c, err := s.Verify(craft(t, hdr, tt.claims, jwa.ES256, active.priv))
		switch {
		case tt.ok && (err != nil || c.User != tt.user):
			t.Errorf("%s: %+v, %v; want user %v", tt.name, c, err, tt.user)
		case !tt.ok && err == nil:
			t.Errorf("%s: accepted", tt.name)
		}
	}
}
