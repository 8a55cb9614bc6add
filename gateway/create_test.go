package gateway

import (
	"errors"
	"net/http"
	"testing"

	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokens"
)

// creationGuard: POST /companies creates (client tokens only), POST
// /teams creates for any token, the rest is the usual map.
func creationGuard(t *testing.T) *Guard {
	t.Helper()
	p, err := policies.Compile([]policies.Rule{
		{Methods: []string{"GET", "PUT"}, Path: "/companies*", Scopes: []string{"read:invoices"}},
		{Methods: []string{"POST"}, Path: "/companies", Scopes: []string{"write:invoices"}},
		{Methods: []string{"POST"}, Path: "/teams", Scopes: []string{"read:invoices"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Policy: p, Tenancy: policies.Tenancy{Header: "X-Business-Id", Mode: policies.Required},
		CheckOverride: true, Creating: []Creating{NotCreating, ClientsCreate, AnyTokenCreates}})
}

func TestDecideCreation(t *testing.T) {
	v := newFake()
	v.tokens["client-write"] = &tokens.Claims{Subject: "app", ClientID: "app", Scopes: []string{"read:invoices", "write:invoices"}}
	tests := []struct {
		name    string
		r       *http.Request
		verdict Verdict
		reason  Reason
		link    bool
	}{
		{"client token creates without a header", request("POST", "/companies", "client-write"), Allow, 0, true},
		{"a header is not looked at", request("POST", "/companies", "client-write", "X-Business-Id", "b1"), Allow, 0, true},
		{"only the route's scope", request("POST", "/companies", "client"), Refuse, InsufficientScope, false},
		{"user tokens refused by default", request("POST", "/companies", "user-write"), Refuse, UserCreates, false},
		{"user tokens pass where allowed, nothing linked", request("POST", "/teams", "user-read"), Allow, 0, false},
		{"client tokens link where users may create too", request("POST", "/teams", "client"), Allow, 0, true},
		{"no token", request("POST", "/companies", ""), Refuse, NoToken, false},
		{"override on a creation route", request("POST", "/companies", "client-write", "X-Http-Method-Override", "PUT"), Refuse, BadOverride, false},
		{"override onto a creation route", request("PUT", "/companies", "client-write", "X-Http-Method-Override", "POST"), Refuse, BadOverride, false},
		{"ordinary route still needs the header", request("GET", "/companies/c1", "client-write"), Refuse, NoBusiness, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v.lookups = 0
			d := creationGuard(t).Decide(tt.r, v)
			if d.Verdict != tt.verdict || d.Reason != tt.reason || d.Link != tt.link {
				t.Fatalf("Decide = %v %v link %v; want %v %v %v", d.Verdict, d.Reason, d.Link, tt.verdict, tt.reason, tt.link)
			}
			if d.Verdict == Allow && (d.Business != "" || d.SetBusiness || v.lookups != 0) {
				t.Errorf("creation acts for business %q (set %v) after %d lookups", d.Business, d.SetBusiness, v.lookups)
			}
			if d.Verdict == Allow && (!d.Creates || (d.Rule != 1 && d.Rule != 2)) {
				t.Errorf("creates %v, rule %d", d.Creates, d.Rule)
			}
		})
	}
}

func TestIDSourceFind(t *testing.T) {
	loc := func(vals ...string) http.Header { return http.Header{"Location": vals} }
	tests := []struct {
		name   string
		member []string
		h      http.Header
		body   string
		want   string
		err    error
	}{
		{"json member", []string{"id"}, nil, `{"id":"cmp_1","name":"Acme"}`, "cmp_1", nil},
		{"nested member", []string{"data", "id"}, nil, `{"data":{"id":"cmp_2"}}`, "cmp_2", nil},
		{"integer id", []string{"id"}, nil, `{"id":12345}`, "12345", nil},
		{"fraction", []string{"id"}, nil, `{"id":1.5}`, "", ErrBadID},
		{"member missing", []string{"id"}, nil, `{"name":"Acme"}`, "", ErrNoID},
		{"null", []string{"id"}, nil, `{"id":null}`, "", ErrNoID},
		{"object id", []string{"id"}, nil, `{"id":{"x":1}}`, "", ErrBadID},
		{"not json", []string{"id"}, nil, `<html>created</html>`, "", ErrNoID},
		{"empty body", []string{"id"}, nil, ``, "", ErrNoID},
		{"array body", []string{"id"}, nil, `[{"id":"x"}]`, "", ErrNoID},
		{"id with a space", []string{"id"}, nil, `{"id":"cmp 1"}`, "", ErrBadID},
		{"empty id", []string{"id"}, nil, `{"id":""}`, "", ErrBadID},
		{"location, absolute", nil, loc("https://api.example/companies/cmp_3"), ``, "cmp_3", nil},
		{"location, relative with slash", nil, loc("/companies/cmp_4/"), ``, "cmp_4", nil},
		{"location with query", nil, loc("/companies/cmp_5?x=1"), ``, "cmp_5", nil},
		{"location escaped", nil, loc("/companies/cmp%3A6"), ``, "cmp:6", nil},
		{"location escaping a slash", nil, loc("/companies/a%2Fb"), ``, "", ErrBadID},
		{"no location", nil, nil, `{"id":"x"}`, "", ErrNoID},
		{"two locations", nil, loc("/c/a", "/c/b"), ``, "", ErrNoID},
		{"location of the root", nil, loc("/"), ``, "", ErrNoID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IDSource{Member: tt.member}.Find(tt.h, []byte(tt.body))
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("Find = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}
