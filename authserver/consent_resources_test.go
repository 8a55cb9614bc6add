package authserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// withResources adds resource parameters to an authorize URL.
func withResources(target string, resources ...string) string {
	for _, v := range resources {
		target += "&resource=" + url.QueryEscape(v)
	}
	return target
}

// TestRememberedConsentResources: a remembered consent skips the consent
// page only for a request within the resources it was given for, one row
// per rule; otherwise the page is shown, and prompt=none answers
// consent_required.
func TestRememberedConsentResources(t *testing.T) {
	r := resourceRig(t)
	session := r.signIn()
	const (
		code    = "code"
		page    = "consent page"
		reqd    = "consent_required"
		unknown = "unknown" // a row from before resources were recorded
	)
	for _, tc := range []struct {
		rule      string
		consented []string // unknown: ResourcesUnknown
		requested []string
		prompt    string
		want      string
	}{
		{"consent for A, request for A: remembered", []string{resCRM}, []string{resCRM}, "", code},
		{"consent for A, request for A under prompt=none: remembered", []string{resCRM}, []string{resCRM}, "none", code},
		{"consent for A and B, request for A: remembered", []string{resCRM, resAcct}, []string{resCRM}, "", code},
		{"consent for A, request for B: consent page", []string{resCRM}, []string{resAcct}, "", page},
		{"consent for A, request for A and B: consent page", []string{resCRM}, []string{resCRM, resAcct}, "", page},
		{"consent for A, request without resource: consent page", []string{resCRM}, nil, "", page},
		{"consent for A, request for B under prompt=none: consent_required", []string{resCRM}, []string{resAcct}, "none", reqd},
		{"consent for A, request without resource under prompt=none: consent_required", []string{resCRM}, nil, "none", reqd},
		{"consent without resource, request for B: remembered", nil, []string{resAcct}, "none", code},
		{"consent without resource, request without resource: remembered", nil, nil, "none", code},
		{"consent from before resources were recorded, request without resource: consent page", []string{unknown}, nil, "", page},
		{"consent from before resources were recorded, under prompt=none: consent_required", []string{unknown}, []string{resCRM}, "none", reqd},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			c := &tokenstore.Consent{UserID: r.user.ID, ClientID: "app", BusinessID: "b1",
				Scopes: []string{"read:invoices"}, Resources: tc.consented, CreatedAt: r.clock.Now()}
			if slices.Equal(tc.consented, []string{unknown}) {
				c.Resources, c.ResourcesUnknown = nil, true
			}
			if err := r.s.store.SaveConsent(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			loc := r.get(withResources(authorizeURL("prompt", tc.prompt), tc.requested...), session).location(t)
			q := loc.Query()
			var got string
			switch {
			case q.Get("code") != "":
				got = code
			case loc.Path == "/oauth/consent":
				got = page
			case q.Get("error") == reqd:
				got = reqd
			default:
				got = loc.String()
			}
			if got != tc.want {
				t.Fatalf("answer %s, want %s", got, tc.want)
			}
		})
	}
}

// TestConsentRemembersResources: Allow on the consent page remembers the
// resources it named, and joins a later consent only where that stays
// true of what the user allowed.
func TestConsentRemembersResources(t *testing.T) {
	r := resourceRig(t)
	session := r.signIn()
	allow := func(t *testing.T, target string) {
		t.Helper()
		loc := r.get(target, session).location(t)
		if loc.Path != "/oauth/consent" {
			t.Fatalf("answer %v, want the consent page", loc)
		}
		resp := r.get(loc.String(), session)
		m := consentForm.FindStringSubmatch(resp.Body.String())
		var csrf *http.Cookie
		for _, c := range resp.Result().Cookies() {
			if c.Name == r.s.cookieName(csrfCookie) {
				csrf = c
			}
		}
		if m == nil || csrf == nil {
			t.Fatal("no consent form")
		}
		form := url.Values{"request": {m[1]}, "csrf_token": {m[2]}, "decision": {"allow"}, "business_id": {"b1"}}
		req := httptest.NewRequest(http.MethodPost, "/oauth/consent", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(session)
		req.AddCookie(csrf)
		if r.do(req).location(t).Query().Get("code") == "" {
			t.Fatal("no code")
		}
	}
	stored := func(t *testing.T) *tokenstore.Consent {
		t.Helper()
		c, err := r.s.store.GetConsent(context.Background(), r.user.ID, "app", "b1")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	answer := func(t *testing.T, target string) url.Values {
		t.Helper()
		return r.get(target, session).location(t).Query()
	}

	allow(t, withResources(authorizeURL(), resCRM))
	if c := stored(t); !slices.Equal(c.Resources, []string{resCRM}) || c.ResourcesUnknown {
		t.Fatalf("stored %+v, want resources [%s]", c, resCRM)
	}
	if q := answer(t, withResources(authorizeURL("prompt", "none"), resCRM)); q.Get("code") == "" {
		t.Fatalf("request for A after consent for A: %v", q)
	}
	if q := answer(t, withResources(authorizeURL("prompt", "none"), resAcct)); q.Get("error") != "consent_required" {
		t.Fatalf("request for B after consent for A: %v", q)
	}
	// The same scopes allowed for B: the consent covers A and B.
	allow(t, withResources(authorizeURL(), resAcct))
	if c := stored(t); !slices.Equal(c.Resources, []string{resAcct, resCRM}) {
		t.Fatalf("stored %+v, want resources [%s %s]", c, resAcct, resCRM)
	}
	if q := answer(t, withResources(authorizeURL("prompt", "none"), resCRM, resAcct)); q.Get("code") == "" {
		t.Fatalf("request for A and B: %v", q)
	}
	// Another scope for A only: not write:invoices on B, so the new
	// consent replaces the old rather than claiming that.
	allow(t, withResources(authorizeURL("scope", "read:invoices write:invoices"), resCRM))
	if c := stored(t); !slices.Equal(c.Resources, []string{resCRM}) || !slices.Equal(c.Scopes, []string{"read:invoices", "write:invoices"}) {
		t.Fatalf("stored %+v", c)
	}
	if q := answer(t, withResources(authorizeURL("prompt", "none", "scope", "write:invoices"), resAcct)); q.Get("error") != "consent_required" {
		t.Fatalf("write:invoices at B: %v", q)
	}
	// Without a resource: no limit, covering every resource.
	allow(t, authorizeURL())
	if c := stored(t); len(c.Resources) != 0 || c.ResourcesUnknown {
		t.Fatalf("stored %+v, want no limit", c)
	}
	if q := answer(t, withResources(authorizeURL("prompt", "none"), resAcct)); q.Get("code") == "" {
		t.Fatalf("request for B after consent without resource: %v", q)
	}
}
