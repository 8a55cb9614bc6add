package authserver

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestValidateRedirectURI: one row per rule of RFC 6749 §3.1.2, RFC 9700
// §2.1/§4.1.3 and RFC 8252 §7, for a confidential (web) and a public
// (native) client.
func TestValidateRedirectURI(t *testing.T) {
	web := RedirectURIRules{}
	native := RedirectURIRules{PrivateUseSchemes: true}
	staging := RedirectURIRules{HTTPHosts: []string{"staging.example"}}
	tests := []struct {
		name  string
		uri   string
		rules RedirectURIRules
		want  string // "" accepted, else a word of the reason
	}{
		{"https with a host", "https://app.example/cb", web, ""},
		{"https with port and query", "https://app.example:8443/cb?x=1", web, ""},
		{"RFC 8252 §7.3: http on 127.0.0.1, any port", "http://127.0.0.1:53117/cb", web, ""},
		{"RFC 8252 §7.3: http on [::1]", "http://[::1]:8080/cb", web, ""},
		{"RFC 8252 §8.3: http on localhost", "http://localhost:3000/callback", web, ""},
		{"http on a loopback host in capitals", "http://LOCALHOST/cb", web, ""},
		{"http on a host allow_http_redirect names", "http://staging.example/cb", staging, ""},
		{"allow_http_redirect compares case-blind", "http://Staging.Example/cb", staging, ""},
		{"RFC 8252 §7.1: private-use scheme for a native app", "com.example.app:/oauth", native, ""},

		{"RFC 6749 §3.1.2: relative", "/cb", web, "absolute"},
		{"RFC 6749 §3.1.2: no scheme", "app.example/cb", web, "absolute"},
		{"empty", "", web, "absolute"},
		{"RFC 6749 §3.1.2: fragment", "https://app.example/cb#x", web, "fragment"},
		{"RFC 6749 §3.1.2: empty fragment", "https://app.example/cb#", web, "fragment"},
		{"RFC 9700 §2.1: http on another host", "http://app.example/cb", web, "https"},
		{"allow_http_redirect names hosts, not their subdomains", "http://x.staging.example/cb", staging, "https"},
		{"http with a loopback-looking name", "http://localhost.evil.example/cb", web, "https"},
		{"https without a host", "https:///cb", web, "no host"},
		{"http without a host", "http:///cb", web, "no host"},
		{"RFC 9700 §4.1.3: wildcard host", "https://*.app.example/cb", web, "wildcard"},
		{"RFC 9700 §4.1.3: wildcard path", "https://app.example/cb/*", web, "wildcard"},
		{"userinfo", "https://user:pass@app.example/cb", web, "user name"},
		{"space", "https://app.example/c b", web, "spaces"},
		{"newline", "https://app.example/cb\n", web, "spaces"},
		{"RFC 8252 §7.1: private-use scheme for a web client", "com.example.app:/oauth", web, "public client"},
		{"RFC 8252 §7.1: private-use scheme without a dot", "myapp:/cb", native, "reverse-domain"},
		{"javascript scheme", "javascript:alert(1)", native, "reverse-domain"},
		{"data scheme", "data:text/html,hi", native, "reverse-domain"},
		{"a no-break space inside the line", "https://app.example/c\u00a0b", web, "ASCII"},
		{"a line separator pasted inside the line", "https://app.example/cb\u2028https://b.example/cb", web, "ASCII"},
		{"a look-alike host (Cyrillic а)", "https://ex\u0430mple.com/cb", web, "ASCII"},
		{"the same host in its xn-- form", "https://xn--exmple-4nf.com/cb", web, ""},
		{"a port out of range", "https://app.example:99999/cb", web, "port"},
		{"port zero", "http://127.0.0.1:0/cb", web, "port"},
		{"loopback-looking name under another domain", "http://127.0.0.1.nip.io/cb", web, "https"},
		{"a trailing dot on localhost", "http://localhost./cb", web, "https"},
		{"a percent-encoded dot in a loopback host", "http://127.0.0.1%2eevil.example/cb", web, "absolute"},
		{"a backslash before userinfo", "https://app.example\\@evil.example/cb", web, "absolute"},
		{"http in capitals on another host", "HTTP://app.example/cb", web, "https"},
		{"over-long", "https://app.example/" + strings.Repeat("a", MaxRedirectURILength), web, "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRedirectURI(tt.uri, tt.rules)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *RedirectURIError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RedirectURIError", err)
			}
			if !strings.Contains(re.Reason, tt.want) {
				t.Fatalf("reason %q does not say %q", re.Reason, tt.want)
			}
		})
	}
}

func TestValidateRedirectURIs(t *testing.T) {
	many := make([]string, MaxRedirectURIs+1)
	for i := range many {
		many[i] = "https://app.example/cb" + strings.Repeat("x", i)
	}
	tests := []struct {
		name string
		uris []string
		want string
	}{
		{"none", nil, ""},
		{"two distinct", []string{"https://a.example/cb", "http://127.0.0.1/cb"}, ""},
		{"as many as allowed", many[:MaxRedirectURIs], ""},
		{"duplicate", []string{"https://a.example/cb", "https://a.example/cb"}, "twice"},
		{"one too many", many, "too many"},
		{"one bad among good", []string{"https://a.example/cb", "http://a.example/cb"}, "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRedirectURIs(tt.uris, RedirectURIRules{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestThirdPartyScopes(t *testing.T) {
	catalogue := []Scope{{Name: "read:invoices"}, {Name: "write:invoices"}, {Name: "admin:all"}}
	tests := []struct {
		name    string
		third   []string
		want    []string
		wantErr string
	}{
		{"default: the whole catalogue with openid and offline_access", nil,
			[]string{"read:invoices", "write:invoices", "admin:all", "openid", "offline_access"}, ""},
		{"a subset", []string{"read:invoices", "openid"}, []string{"read:invoices", "openid"}, ""},
		{"empty: none", []string{}, []string{}, ""},
		{"not in the catalogue", []string{"read:payroll"}, nil, "not in the scope catalogue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{Issuer: testIssuer, Scopes: catalogue, ThirdPartyScopes: tt.third}, nil, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.ThirdPartyScopes(); !slices.Equal(got, tt.want) {
				t.Fatalf("ThirdPartyScopes = %v, want %v", got, tt.want)
			}
			if s.IsThirdPartyScope("read:payroll") {
				t.Fatal("a scope outside the catalogue counts as third-party")
			}
		})
	}
}

func TestAllowHTTPRedirectHosts(t *testing.T) {
	s, err := New(Config{Issuer: testIssuer, AllowHTTPRedirectHosts: []string{"Staging.Example", "[fd00::1]"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://staging.example/cb", "http://[fd00::1]:8080/cb"} {
		if err := ValidateRedirectURI(u, s.RedirectURIRules(false)); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	if err := ValidateRedirectURI("com.example.app:/cb", s.RedirectURIRules(false)); err == nil {
		t.Error("a confidential client's rules allow a private-use scheme")
	}
	if err := ValidateRedirectURI("com.example.app:/cb", s.RedirectURIRules(true)); err != nil {
		t.Errorf("a public client's rules refuse a private-use scheme: %v", err)
	}
	for _, h := range []string{"http://staging.example", "staging.example/cb", "*.example", "", "staging.example:8080", "[fd00::1]:8080", "[]", "a%2eb"} {
		if _, err := New(Config{Issuer: testIssuer, AllowHTTPRedirectHosts: []string{h}}, nil, nil); err == nil {
			t.Errorf("allow_http_redirect %q accepted", h)
		}
	}
}
