package gateway

import (
	"testing"

	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokens"
)

// audienceGuard guards the accounting resource; the default audience is
// the issuer's.
func audienceGuard(t *testing.T) *Guard {
	t.Helper()
	p, err := policies.Compile([]policies.Rule{{Methods: []string{"GET"}, Path: "/invoices*", Scopes: []string{"read:invoices"}}})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Policy: p, Tenancy: policies.Tenancy{Mode: policies.Off},
		Audiences: []string{"https://api.test/accounting", "https://api.test"}})
}

func audienceFake() *fakeVerifier {
	claims := func(aud ...string) *tokens.Claims {
		return &tokens.Claims{Subject: "app", ClientID: "app", Scopes: []string{"read:invoices"}, Audience: aud}
	}
	return &fakeVerifier{tokens: map[string]*tokens.Claims{
		"for-accounting":  claims("https://api.test/accounting"),
		"for-both":        claims("https://api.test/crm", "https://api.test/accounting"),
		"default":         claims("https://api.test"),
		"for-crm":         claims("https://api.test/crm"),
		"for-crm-no-read": {Subject: "app", ClientID: "app", Audience: []string{"https://api.test/crm"}},
		"no-aud":          claims(),
		"prefix-only":     claims("https://api.test/accounting/sub"),
	}}
}

// TestDecideAudience (RFC 8707, RFC 9068 §4): oauth_protect accepts a
// token whose aud names its resource or the default audience of tokens
// requested without a resource, and refuses any other, before it looks at
// scopes (a token for another resource learns nothing of this one's).
func TestDecideAudience(t *testing.T) {
	g, v := audienceGuard(t), audienceFake()
	for _, tc := range []struct {
		token   string
		verdict Verdict
		reason  Reason
	}{
		{"for-accounting", Allow, 0},
		{"for-both", Allow, 0},
		{"default", Allow, 0},
		{"for-crm", Refuse, WrongAudience},
		{"for-crm-no-read", Refuse, WrongAudience},
		{"no-aud", Refuse, WrongAudience},
		{"prefix-only", Refuse, WrongAudience},
	} {
		d := g.Decide(request("GET", "/invoices", tc.token), v)
		if d.Verdict != tc.verdict || d.Reason != tc.reason {
			t.Errorf("%s: %v %v, want %v %v", tc.token, d.Verdict, d.Reason, tc.verdict, tc.reason)
		}
	}
	if WrongAudience.Status() != 401 || WrongAudience.Code() != "invalid_token" {
		t.Errorf("WrongAudience is %d %s, want 401 invalid_token", WrongAudience.Status(), WrongAudience.Code())
	}
}

// The audience check allocates nothing, the token's audience last in the
// list or not.
func TestDecideAudienceAllocations(t *testing.T) {
	g, v := audienceGuard(t), audienceFake()
	for _, tok := range []string{"for-both", "default"} {
		r := request("GET", "/invoices/1", tok)
		if n := testing.AllocsPerRun(100, func() {
			if d := g.Decide(r, v); d.Verdict != Allow {
				t.Fatal(d.Reason)
			}
		}); n != 0 {
			t.Errorf("%s: Decide allocates %v times per request", tok, n)
		}
	}
}

// BenchmarkDecideAudience is the price of the audience check: the same
// allowed request decided without audiences, with the token's audience
// first in the guard's list (a token for the resource) and last (a token
// without resource, which names the default audience).
func BenchmarkDecideAudience(b *testing.B) {
	p, err := policies.Compile([]policies.Rule{{Methods: []string{"GET"}, Path: "/invoices*", Scopes: []string{"read:invoices"}}})
	if err != nil {
		b.Fatal(err)
	}
	v := audienceFake()
	for _, tc := range []struct {
		name, token string
		audiences   []string
	}{
		{"off", "for-accounting", nil},
		{"resource-token", "for-accounting", []string{"https://api.test/accounting", "https://api.test"}},
		{"default-token", "default", []string{"https://api.test/accounting", "https://api.test"}},
	} {
		g := New(Config{Policy: p, Tenancy: policies.Tenancy{Mode: policies.Off}, Audiences: tc.audiences})
		r := request("GET", "/invoices/1", tc.token)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := g.Decide(r, v); d.Verdict != Allow {
					b.Fatal(d.Reason)
				}
			}
		})
	}
}
