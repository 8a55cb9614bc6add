package tokens

import (
	"errors"
	"reflect"
	"testing"
)

// TestResourceAudience (RFC 8707, RFC 9068 §3): a token minted for
// resources names them in aud (a string for one, an array for several),
// one minted without keeps the default audience; Verify accepts a token
// whose aud names the default audience or a configured resource, and
// refuses one naming neither, even from another configuration's resource
// list.
func TestResourceAudience(t *testing.T) {
	const crm, acct = "https://api.example.test/crm", "https://api.example.test/accounting"
	st := openStore(t)
	s := newService(t, st, Config{Resources: []string{crm, acct}})
	for _, tc := range []struct {
		name      string
		resources []string
		aud       any
	}{
		{"no resource", nil, testIssuer},
		{"one resource", []string{crm}, crm},
		{"two resources", []string{crm, acct}, []any{crm, acct}},
	} {
		raw := mint(t, s, Access{Resources: tc.resources, Scopes: []string{"read:x"}})
		if _, claims := segments(t, raw); !reflect.DeepEqual(claims["aud"], tc.aud) {
			t.Errorf("%s: aud %v, want %v", tc.name, claims["aud"], tc.aud)
		}
		c, err := s.Verify(raw)
		if err != nil {
			t.Fatalf("%s: Verify: %v", tc.name, err)
		}
		want := tc.resources
		if want == nil {
			want = []string{testIssuer}
		}
		if !reflect.DeepEqual(c.Audience, want) || !c.HasAudience([]string{"other", want[len(want)-1]}) || c.HasAudience([]string{"other"}) {
			t.Errorf("%s: Claims.Audience %v", tc.name, c.Audience)
		}
	}
	// Another configuration knows only the CRM resource: a token for the
	// accounting one is not its audience.
	other := newService(t, st, Config{Resources: []string{crm}})
	raw := mint(t, s, Access{Resources: []string{acct}})
	if _, err := other.Verify(raw); !errors.Is(err, ErrInvalidToken) || err.Error() != "invalid token: wrong audience" {
		t.Errorf("token for an unknown resource: %v", err)
	}
	if _, err := other.Verify(mint(t, s, Access{Resources: []string{crm, acct}})); err != nil {
		t.Errorf("token naming a known resource among others: %v", err)
	}
}
