package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokens"
)

// fakeVerifier knows a few tokens and which businesses clients own; a set
// ownErr makes every ownership lookup fail, and lookups are counted.
type fakeVerifier struct {
	tokens  map[string]*tokens.Claims
	owns    map[string]bool // "client/business"
	ownErr  error
	lookups int
}

func (f *fakeVerifier) Verify(raw string) (*tokens.Claims, error) {
	switch raw {
	case "revoked":
		return nil, fmt.Errorf("wrapped: %w", tokens.ErrRevoked)
	case "stale":
		return nil, tokens.ErrUnavailable
	}
	if c, ok := f.tokens[raw]; ok {
		return c, nil
	}
	return nil, tokens.ErrInvalidToken
}

func (f *fakeVerifier) ClientOwns(_ context.Context, client, business string) (bool, error) {
	f.lookups++
	if f.ownErr != nil {
		return false, f.ownErr
	}
	return f.owns[client+"/"+business], nil
}

func newFake() *fakeVerifier {
	return &fakeVerifier{
		tokens: map[string]*tokens.Claims{
			"user-read":  {Subject: "u1", ClientID: "app", User: true, BusinessID: "b1", Scopes: []string{"read:invoices"}},
			"user-write": {Subject: "u1", ClientID: "app", User: true, BusinessID: "b1", Scopes: []string{"read:invoices", "write:invoices"}},
			"client":     {Subject: "app", ClientID: "app", Scopes: []string{"read:invoices"}},
			"client-one": {Subject: "solo", ClientID: "solo", Scopes: []string{"read:invoices"}},
		},
		owns: map[string]bool{"app/b2": true, "app/b3": true, "solo/b4": true},
	}
}

func guard(t *testing.T, mode policies.TenancyMode, checkOverride bool) *Guard {
	t.Helper()
	p, err := policies.Compile([]policies.Rule{
		{Methods: []string{"GET"}, Path: "/invoices*", Scopes: []string{"read:invoices"}},
		{Methods: []string{"POST", "DELETE"}, Path: "/invoices*", Scopes: []string{"write:invoices"}},
		{Methods: []string{"GET"}, Path: "/health", Public: true},
		{Methods: []string{"GET"}, Path: "/any"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Policy: p, Tenancy: policies.Tenancy{Header: "X-Business-Id", Mode: mode}, CheckOverride: checkOverride})
}

func request(method, target, token string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		mode     policies.TenancyMode
		override bool
		r        *http.Request
		verdict  Verdict
		reason   Reason
		business string
		set      bool
	}{
		{"user token for its business", policies.Required, false, request("GET", "/invoices/1", "user-read", "X-Business-Id", "b1"), Allow, 0, "b1", false},
		{"HEAD is judged as GET", policies.Required, false, request("HEAD", "/invoices", "user-read", "X-Business-Id", "b1"), Allow, 0, "b1", false},
		{"public route needs no token", policies.Required, false, request("GET", "/health", ""), Public, 0, "", false},
		{"path not canonical", policies.Required, false, request("GET", "/health/../invoices", "user-read"), Refuse, BadPath, "", false},
		{"encoded slash", policies.Required, false, request("GET", "/invoices%2F1", "user-read"), Refuse, BadPath, "", false},
		{"no route: unknown path", policies.Required, false, request("GET", "/admin", "user-read"), Refuse, NoRoute, "", false},
		{"no route: unlisted method", policies.Required, false, request("PUT", "/invoices", "user-write"), Refuse, NoRoute, "", false},
		{"no token", policies.Required, false, request("GET", "/invoices", ""), Refuse, NoToken, "", false},
		{"two Authorization headers", policies.Required, false, request("GET", "/invoices", "user-read", "Authorization", "Bearer user-read"), Refuse, Malformed, "", false},
		{"unknown token", policies.Required, false, request("GET", "/invoices", "forged"), Refuse, InvalidToken, "", false},
		{"revoked token", policies.Required, false, request("GET", "/invoices", "revoked"), Refuse, Revoked, "", false},
		{"revocations stale", policies.Required, false, request("GET", "/invoices", "stale"), Refuse, Unavailable, "", false},
		{"read token cannot write", policies.Required, false, request("POST", "/invoices", "user-read", "X-Business-Id", "b1"), Refuse, InsufficientScope, "", false},
		{"route without scopes takes any token", policies.Required, false, request("GET", "/any", "client", "X-Business-Id", "b2"), Allow, 0, "b2", false},
		{"user token, foreign business", policies.Required, false, request("GET", "/invoices", "user-read", "X-Business-Id", "b2"), Refuse, ForeignBusiness, "", false},
		{"repeated business header", policies.Required, false, request("GET", "/invoices", "user-read", "X-Business-Id", "b1", "X-Business-Id", "b1"), Refuse, BadBusiness, "", false},
		{"malformed business", policies.Required, false, request("GET", "/invoices", "client", "X-Business-Id", "b 2"), Refuse, BadBusiness, "", false},
		{"required, absent", policies.Required, false, request("GET", "/invoices", "user-read"), Refuse, NoBusiness, "", false},
		{"client token, owned business", policies.Required, false, request("GET", "/invoices", "client", "X-Business-Id", "b2"), Allow, 0, "b2", false},
		{"client token, business not owned", policies.Required, false, request("GET", "/invoices", "client", "X-Business-Id", "b1"), Refuse, ForeignBusiness, "", false},
		{"inject: bound business is set", policies.Inject, false, request("GET", "/invoices", "user-read"), Allow, 0, "b1", true},
		{"inject: client token cannot be guessed", policies.Inject, false, request("GET", "/invoices", "client"), Refuse, NoBusiness, "", false},
		{"inject: client owning exactly one must still name it", policies.Inject, false, request("GET", "/invoices", "client-one"), Refuse, NoBusiness, "", false},
		{"inject: client token naming its business", policies.Inject, false, request("GET", "/invoices", "client-one", "X-Business-Id", "b4"), Allow, 0, "b4", false},
		{"inject: client token, business not owned", policies.Inject, false, request("GET", "/invoices", "client-one", "X-Business-Id", "b2"), Refuse, ForeignBusiness, "", false},
		{"inject: user token naming its business", policies.Inject, false, request("GET", "/invoices", "user-read", "X-Business-Id", "b1"), Allow, 0, "b1", false},
		{"inject: user token naming another business", policies.Inject, false, request("GET", "/invoices", "user-read", "X-Business-Id", "b2"), Refuse, ForeignBusiness, "", false},
		{"inject: malformed header is not replaced", policies.Inject, false, request("GET", "/invoices", "user-read", "X-Business-Id", "b 1"), Refuse, BadBusiness, "", false},
		{"inject: repeated header is not replaced", policies.Inject, false, request("GET", "/invoices", "user-read", "X-Business-Id", "b1", "X-Business-Id", "b1"), Refuse, BadBusiness, "", false},
		{"inject: empty header is absent", policies.Inject, false, request("GET", "/invoices", "user-read", "X-Business-Id", ""), Allow, 0, "b1", true},
		{"inject: scope still checked first", policies.Inject, false, request("POST", "/invoices", "user-read"), Refuse, InsufficientScope, "", false},
		{"off: no header", policies.Off, false, request("GET", "/invoices", "client"), Allow, 0, "", false},
		{"off: header passed on", policies.Off, false, request("GET", "/invoices", "client", "X-Business-Id", "b9"), Allow, 0, "b9", false},

		// Method override, when checked: both methods must be allowed.
		{"override to a write needs the write scope", policies.Required, true, request("GET", "/invoices", "user-read", "X-Business-Id", "b1", "X-Http-Method-Override", "DELETE"), Refuse, InsufficientScope, "", false},
		{"override with the write scope", policies.Required, true, request("GET", "/invoices", "user-write", "X-Business-Id", "b1", "X-Method-Override", "DELETE"), Allow, 0, "b1", false},
		{"override to an unrouted method", policies.Required, true, request("GET", "/invoices", "user-write", "X-Business-Id", "b1", "X-Http-Method", "PATCH"), Refuse, NoRoute, "", false},
		{"override headers disagree", policies.Required, true, request("POST", "/invoices", "user-write", "X-Business-Id", "b1", "X-Http-Method", "DELETE", "X-Method-Override", "GET"), Refuse, BadOverride, "", false},
		{"override of a public route needs a token", policies.Required, true, request("GET", "/health", "", "X-Http-Method-Override", "DELETE"), Refuse, NoRoute, "", false},
		{"override is case-sensitive, unknown fails closed", policies.Required, true, request("GET", "/invoices", "user-write", "X-Business-Id", "b1", "X-Http-Method-Override", "delete"), Refuse, NoRoute, "", false},
		{"override unchecked: judged by the method alone", policies.Required, false, request("GET", "/invoices", "user-read", "X-Business-Id", "b1", "X-Http-Method-Override", "DELETE"), Allow, 0, "b1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := guard(t, tt.mode, tt.override).Decide(tt.r, newFake())
			if d.Verdict != tt.verdict || d.Reason != tt.reason || d.Business != tt.business || d.SetBusiness != tt.set {
				t.Errorf("Decide = %v %v business %q set %v; want %v %v %q %v", d.Verdict, d.Reason, d.Business, d.SetBusiness, tt.verdict, tt.reason, tt.business, tt.set)
			}
			if d.Verdict == Allow && d.Claims == nil {
				t.Error("allowed without claims")
			}
			if d.Reason == InsufficientScope && d.Scope == "" {
				t.Error("insufficient_scope without the scope")
			}
		})
	}
}

// With tenancy off the ownership of the business is never looked up, so a
// store outage cannot refuse a route that needs no tenant.
func TestDecideTenancyOffLooksNothingUp(t *testing.T) {
	v := newFake()
	v.ownErr = errors.New("store down")
	d := guard(t, policies.Off, false).Decide(request("GET", "/invoices", "client", "X-Business-Id", "b2"), v)
	if d.Verdict != Allow || v.lookups != 0 {
		t.Errorf("tenancy off: verdict %v reason %v after %d ownership lookups; want allow after none", d.Verdict, d.Reason, v.lookups)
	}
	// The same outage with tenancy required fails closed with 503.
	v.lookups = 0
	d = guard(t, policies.Required, false).Decide(request("GET", "/invoices", "client", "X-Business-Id", "b2"), v)
	if d.Verdict != Refuse || d.Reason != Unavailable || v.lookups != 1 {
		t.Errorf("tenancy required, store down: %v %v after %d lookups; want refuse unavailable after 1", d.Verdict, d.Reason, v.lookups)
	}
	// A user token is bound: its business needs no lookup either.
	v.lookups = 0
	if d = guard(t, policies.Required, false).Decide(request("GET", "/invoices", "user-read", "X-Business-Id", "b1"), v); d.Verdict != Allow || v.lookups != 0 {
		t.Errorf("bound user token: %v %v after %d lookups", d.Verdict, d.Reason, v.lookups)
	}
}

func TestReasonTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if r.Status() < 400 || r.String() == "" || seen[r.String()] {
			t.Errorf("reason %d: status %d label %q", r, r.Status(), r.String())
		}
		seen[r.String()] = true
		if (r.Code() == "") != (r == NoToken) {
			t.Errorf("reason %v: code %q", r, r.Code())
		}
	}
	if Reason(0).Status() != http.StatusForbidden || Reason(99).Status() != http.StatusForbidden {
		t.Error("an unknown reason does not refuse")
	}
}

func TestDecideAllocations(t *testing.T) {
	v := newFake()
	for _, tc := range []struct {
		name string
		mode policies.TenancyMode
		r    *http.Request
	}{
		{"client token naming its business", policies.Required, request("GET", "/invoices/1", "client", "X-Business-Id", "b2")},
		{"inject: bound token without the header", policies.Inject, request("GET", "/invoices/1", "user-read")},
	} {
		g := guard(t, tc.mode, false)
		if n := testing.AllocsPerRun(100, func() {
			if d := g.Decide(tc.r, v); d.Verdict != Allow {
				t.Fatal(d.Reason)
			}
		}); n != 0 {
			t.Errorf("%s: Decide allocates %v times per request", tc.name, n)
		}
	}
}

// Under inject, a client token without the header is refused without
// asking who owns what, even when its client owns exactly one business.
func TestDecideInjectClientLooksNothingUp(t *testing.T) {
	v := newFake()
	d := guard(t, policies.Inject, false).Decide(request("GET", "/invoices", "client-one"), v)
	if d.Verdict != Refuse || d.Reason != NoBusiness || v.lookups != 0 {
		t.Errorf("inject, client token, no header: %v %v after %d lookups; want refuse no_business after none", d.Verdict, d.Reason, v.lookups)
	}
}
