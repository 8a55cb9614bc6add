package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// tokenRow is one rule of the token endpoint: a request built on a fresh
// rig, and the status and error code (empty: success) it must get.
type tokenRow struct {
	rule   string
	req    func(r *rig) *http.Request
	status int
	code   string
}

func tokenPost(form url.Values, basic string) func(*rig) *http.Request {
	return func(*rig) *http.Request { return formRequest(form, basic) }
}

func formRequest(form url.Values, basic string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		id, secret, _ := strings.Cut(basic, ":")
		req.SetBasicAuth(id, secret)
	}
	return req
}

// withCode is a code exchange of "app" whose form edit changes.
func withCode(scopes []string, challenge string, edit func(r *rig, f url.Values) string) func(*rig) *http.Request {
	return func(r *rig) *http.Request {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {r.code("app", scopes, challenge, true)}, "redirect_uri": {rigRedirect}}
		basic := "app:app-secret"
		if edit != nil {
			basic = edit(r, f)
		}
		return formRequest(f, basic)
	}
}

// withRefresh is a refresh of a fresh grant of "app" whose form edit changes.
func withRefresh(edit func(r *rig, f url.Values) string) func(*rig) *http.Request {
	return func(r *rig) *http.Request {
		resp := r.exchange(r.code("app", []string{"read:invoices", "write:invoices"}, "", true))
		rt, _ := resp.body["refresh_token"].(string)
		if rt == "" {
			r.t.Fatalf("no refresh token: %v", resp.body)
		}
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		basic := "app:app-secret"
		if edit != nil {
			basic = edit(r, f)
		}
		return formRequest(f, basic)
	}
}

func TestTokenEndpointRules(t *testing.T) {
	cc := func(extra ...string) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(extra); i += 2 {
			f.Set(extra[i], extra[i+1])
		}
		return f
	}
	rows := []tokenRow{
		// Requests (RFC 6749 §3.2, §5.2 invalid_request).
		{"§3.2: the token endpoint takes POST only", func(*rig) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/oauth/token?grant_type=client_credentials", nil)
		}, 405, "invalid_request"},
		{"§3.2: a body neither form nor JSON is invalid_request", func(*rig) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "text/plain")
			return req
		}, 400, "invalid_request"},
		{"§3.2: a missing Content-Type is invalid_request", func(*rig) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials"))
		}, 400, "invalid_request"},
		{"§3.2: a repeated parameter is invalid_request", func(*rig) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials&grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("svc", "svc-secret")
			return req
		}, 400, "invalid_request"},
		{"a body over 64 KiB is refused with 413", func(*rig) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=client_credentials&x="+strings.Repeat("a", maxBodyBytes)))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}, 413, "invalid_request"},
		{"a malformed form body is invalid_request", func(*rig) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader("grant_type=%zz"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}, 400, "invalid_request"},
		{"a JSON body must be an object", func(*rig) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(`["client_credentials"]`))
			req.Header.Set("Content-Type", "application/json")
			return req
		}, 400, "invalid_request"},
		{"a JSON parameter must be a string", func(*rig) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(`{"grant_type":{"x":1}}`))
			req.Header.Set("Content-Type", "application/json")
			return req
		}, 400, "invalid_request"},
		{"§4.4.2: grant_type is required", tokenPost(url.Values{}, "svc:svc-secret"), 400, "invalid_request"},
		{"§5.2: an unknown grant_type is unsupported_grant_type", tokenPost(url.Values{"grant_type": {"password"}}, "svc:svc-secret"), 400, "unsupported_grant_type"},

		// Client authentication (§2.3.1, §5.2 invalid_client).
		{"§2.3.1: no client credentials is invalid_client", tokenPost(cc(), ""), 401, "invalid_client"},
		{"§2.3.1: a wrong secret by Basic is invalid_client", tokenPost(cc(), "svc:wrong"), 401, "invalid_client"},
		{"§2.3.1: a wrong secret in the body is invalid_client", tokenPost(cc("client_id", "svc", "client_secret", "wrong"), ""), 401, "invalid_client"},
		{"§2.3.1: a confidential client without its secret is invalid_client", tokenPost(cc("client_id", "svc"), ""), 401, "invalid_client"},
		{"§2.3.1: an unknown client is invalid_client", tokenPost(cc(), "nobody:x"), 401, "invalid_client"},
		{"§2.3: two authentication methods at once are invalid_request", tokenPost(cc("client_secret", "svc-secret"), "svc:svc-secret"), 400, "invalid_request"},
		{"§2.3.1: a body client_id differing from Basic is invalid_request", tokenPost(cc("client_id", "app"), "svc:svc-secret"), 400, "invalid_request"},
		{"§2.3.1: a non-Basic Authorization scheme is invalid_client", func(*rig) *http.Request {
			req := formRequest(cc(), "")
			req.Header.Set("Authorization", "Bearer x")
			return req
		}, 401, "invalid_client"},
		{"§2.3.1: Basic credentials that are not base64 are invalid_client", func(*rig) *http.Request {
			req := formRequest(cc(), "")
			req.Header.Set("Authorization", "Basic !!!")
			return req
		}, 401, "invalid_client"},
		{"§2.3.1: Basic credentials without a colon are invalid_client", func(*rig) *http.Request {
			req := formRequest(cc(), "")
			req.Header.Set("Authorization", "Basic c3Zj")
			return req
		}, 401, "invalid_client"},
		{"§2.3.1: Basic credentials are form-encoded (bad escape)", func(*rig) *http.Request {
			req := formRequest(cc(), "")
			req.Header.Set("Authorization", "Basic JXp6OnNlY3JldA==") // %zz:secret
			return req
		}, 401, "invalid_client"},
		{"§2.3.1: Basic credentials with an empty client id are invalid_client", tokenPost(cc(), ":svc-secret"), 401, "invalid_client"},
		{"§2.1: a public client presenting a secret is invalid_client", tokenPost(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, "spa:secret"), 401, "invalid_client"},

		// Grant type authorization (§5.2 unauthorized_client).
		{"§5.2: a client not registered for the grant is unauthorized_client", tokenPost(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, "svc:svc-secret"), 400, "unauthorized_client"},

		// Client credentials (§4.4).
		{"§4.4: client_credentials issues a token", tokenPost(cc(), "svc:svc-secret"), 200, ""},
		{"§4.4: client_credentials with client_secret_post", tokenPost(cc("client_id", "svc", "client_secret", "svc-secret"), ""), 200, ""},
		{"§4.4: a JSON body is accepted", func(*rig) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(`{"grant_type":"client_credentials","client_id":"svc","client_secret":"svc-secret","scope":"read:invoices","n":1,"b":true,"z":null}`))
			req.Header.Set("Content-Type", "application/json")
			return req
		}, 200, ""},
		{"§3.3: a scope beyond the client's is invalid_scope", tokenPost(cc("scope", "admin"), "svc:svc-secret"), 400, "invalid_scope"},
		{"§3.3: a malformed scope is invalid_scope", tokenPost(cc("scope", "read:invoices \"x"), "svc:svc-secret"), 400, "invalid_scope"},
		{"§3.3: an OpenID scope without a user is invalid_scope", tokenPost(cc("scope", "openid"), "svc:svc-secret"), 400, "invalid_scope"},

		// Authorization code (§4.1.3, RFC 7636 §4.6).
		{"§4.1.3: a code exchange issues tokens", withCode([]string{"read:invoices"}, "", nil), 200, ""},
		{"§4.1.3: code is required", tokenPost(url.Values{"grant_type": {"authorization_code"}}, "app:app-secret"), 400, "invalid_request"},
		{"§5.2: an unknown code is invalid_grant", tokenPost(url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}}, "app:app-secret"), 400, "invalid_grant"},
		{"§5.2: a code of another client is invalid_grant", withCode([]string{"read:invoices"}, "", func(r *rig, f url.Values) string {
			return "multi:multi-secret"
		}), 400, "invalid_grant"},
		{"§4.1.3: redirect_uri must repeat the authorization request's", withCode([]string{"read:invoices"}, "", func(r *rig, f url.Values) string {
			f.Set("redirect_uri", rigRedirect+"/")
			return "app:app-secret"
		}), 400, "invalid_grant"},
		{"§4.1.3: redirect_uri is required when the request sent one", withCode([]string{"read:invoices"}, "", func(r *rig, f url.Values) string {
			f.Del("redirect_uri")
			return "app:app-secret"
		}), 400, "invalid_grant"},
		{"RFC 7636 §4.6: code_verifier is required for a PKCE code", withCode([]string{"read:invoices"}, rigChallenge, nil), 400, "invalid_grant"},
		{"RFC 7636 §4.6: a wrong code_verifier is invalid_grant", withCode([]string{"read:invoices"}, rigChallenge, func(r *rig, f url.Values) string {
			f.Set("code_verifier", strings.Repeat("a", 43))
			return "app:app-secret"
		}), 400, "invalid_grant"},
		{"RFC 7636 §4.6: the right code_verifier issues tokens", withCode([]string{"read:invoices"}, rigChallenge, func(r *rig, f url.Values) string {
			f.Set("code_verifier", rigVerifier)
			return "app:app-secret"
		}), 200, ""},
		{"RFC 7636 §4.1: a malformed code_verifier is invalid_request", withCode([]string{"read:invoices"}, rigChallenge, func(r *rig, f url.Values) string {
			f.Set("code_verifier", "short")
			return "app:app-secret"
		}), 400, "invalid_request"},
		{"RFC 9700 §4.8.2: a verifier for a code without challenge is invalid_grant", withCode([]string{"read:invoices"}, "", func(r *rig, f url.Values) string {
			f.Set("code_verifier", rigVerifier)
			return "app:app-secret"
		}), 400, "invalid_grant"},
		{"§4.1.2: a code is single-use", withCode([]string{"read:invoices"}, "", func(r *rig, f url.Values) string {
			if resp := r.exchange(f.Get("code")); resp.Code != 200 {
				r.t.Fatalf("first exchange: %d %v", resp.Code, resp.body)
			}
			return "app:app-secret"
		}), 400, "invalid_grant"},
		{"§4.1.2: an expired code is invalid_grant", withCode([]string{"read:invoices"}, "", func(r *rig, f url.Values) string {
			// The store judges expiry by the wall clock: mint it in the past.
			r.clock.Advance(-11 * time.Minute)
			f.Set("code", r.code("app", []string{"read:invoices"}, "", true))
			r.clock.Advance(11 * time.Minute)
			return "app:app-secret"
		}), 400, "invalid_grant"},

		// Refresh (§6).
		{"§6: a refresh issues a new access and refresh token", withRefresh(nil), 200, ""},
		{"§6: a refresh may narrow the scope", withRefresh(func(r *rig, f url.Values) string {
			f.Set("scope", "read:invoices")
			return "app:app-secret"
		}), 200, ""},
		{"§6: a refresh may not widen the scope", withRefresh(func(r *rig, f url.Values) string {
			f.Set("scope", "read:invoices openid")
			return "app:app-secret"
		}), 400, "invalid_scope"},
		{"§6: refresh_token is required", tokenPost(url.Values{"grant_type": {"refresh_token"}}, "app:app-secret"), 400, "invalid_request"},
		{"§5.2: an unknown refresh token is invalid_grant", tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, "app:app-secret"), 400, "invalid_grant"},
		{"§6: a refresh token of another client is invalid_grant", withRefresh(func(r *rig, f url.Values) string {
			return "spa:"
		}), 400, "invalid_grant"},
		{"RFC 9700 §4.14.2: a spent refresh token is invalid_grant", withRefresh(func(r *rig, f url.Values) string {
			if resp := r.token(f, "app:app-secret"); resp.Code != 200 {
				r.t.Fatalf("first refresh: %d %v", resp.Code, resp.body)
			}
			return "app:app-secret"
		}), 400, "invalid_grant"},
	}
	r := newRig(t, Config{})
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			r.t = t
			req := row.req(r)
			resp := r.do(req)
			if resp.Code != row.status || resp.errorCode() != row.code {
				t.Fatalf("got %d %v, want %d %q", resp.Code, resp.body, row.status, row.code)
			}
			if h := resp.Header(); h.Get("Cache-Control") != "no-store" || h.Get("Pragma") != "no-cache" {
				t.Errorf("§5.1: Cache-Control %q, Pragma %q", h.Get("Cache-Control"), h.Get("Pragma"))
			}
			switch {
			case row.code == "invalid_client" && req.Header.Get("Authorization") != "":
				if got := resp.Header().Get("WWW-Authenticate"); got != basicChallenge {
					t.Errorf("§5.2: invalid_client after Basic: WWW-Authenticate %q", got)
				}
			case row.code == "invalid_client":
				if got := resp.Header().Get("WWW-Authenticate"); got != "" {
					t.Errorf("invalid_client without Basic: WWW-Authenticate %q", got)
				}
			case row.status == 405:
				if got := resp.Header().Get("Allow"); got != "POST" {
					t.Errorf("405: Allow %q", got)
				}
			case row.code == "":
				if resp.body["access_token"] == nil || resp.body["token_type"] != "Bearer" || resp.body["expires_in"] != float64(3600) {
					t.Errorf("§5.1: success body %v", resp.body)
				}
			}
			if row.code != "" {
				if d, _ := resp.body["error_description"].(string); d == "" {
					t.Errorf("no error_description: %v", resp.body)
				}
			}
		})
	}
}

// TestCodeExchangeResponse: what a code exchange answers (RFC 6749 §5.1,
// OIDC Core §3.1.3.3) and that the access token is usable at userinfo.
func TestCodeExchangeResponse(t *testing.T) {
	r := newRig(t, Config{})
	resp := r.exchange(r.code("app", []string{"openid", "read:invoices"}, "", true))
	if resp.Code != 200 {
		t.Fatalf("%d %v", resp.Code, resp.body)
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if s, _ := resp.body[k].(string); s == "" {
			t.Errorf("no %s: %v", k, resp.body)
		}
	}
	if resp.body["scope"] != "openid read:invoices" {
		t.Errorf("scope %v", resp.body["scope"])
	}
	// The refresh keeps the id_token (a user grant with openid).
	ref := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {resp.body["refresh_token"].(string)}}, "app:app-secret")
	if ref.Code != 200 || ref.body["id_token"] == nil || ref.body["refresh_token"] == resp.body["refresh_token"] {
		t.Fatalf("refresh: %d %v", ref.Code, ref.body)
	}
}

// TestRefreshReuseRevokesGrant: RFC 9700 §4.14.2: presenting a spent refresh
// token revokes the grant, so the rotated one stops working too.
func TestRefreshReuseRevokesGrant(t *testing.T) {
	r := newRig(t, Config{})
	first := r.exchange(r.code("app", []string{"read:invoices"}, "", true))
	rt1 := first.body["refresh_token"].(string)
	second := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}, "app:app-secret")
	if second.Code != 200 {
		t.Fatalf("refresh: %d %v", second.Code, second.body)
	}
	if again := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}, "app:app-secret"); again.errorCode() != "invalid_grant" {
		t.Fatalf("reuse: %d %v", again.Code, again.body)
	}
	rt2 := second.body["refresh_token"].(string)
	if next := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}, "app:app-secret"); next.errorCode() != "invalid_grant" {
		t.Fatalf("rotated token after reuse: %d %v", next.Code, next.body)
	}
}

// TestRefreshEndsWithTenancy: a refresh fails once the user no longer
// administers the grant's business.
func TestRefreshEndsWithTenancy(t *testing.T) {
	r := newRig(t, Config{})
	first := r.exchange(r.code("app", []string{"read:invoices"}, "", true))
	if err := r.s.store.SetMemberships(context.Background(), r.user.ID, []string{"b2"}); err != nil {
		t.Fatal(err)
	}
	resp := r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.body["refresh_token"].(string)}}, "app:app-secret")
	if resp.errorCode() != "invalid_grant" {
		t.Fatalf("%d %v", resp.Code, resp.body)
	}
}

// TestRefreshRequiresOfflineAccess: with the option on, a code grant without
// offline_access gets no refresh token.
func TestRefreshRequiresOfflineAccess(t *testing.T) {
	r := newRig(t, Config{RefreshRequiresOfflineAccess: true})
	resp := r.exchange(r.code("app", []string{"read:invoices"}, "", true))
	if resp.Code != 200 || resp.body["refresh_token"] != nil {
		t.Fatalf("%d %v", resp.Code, resp.body)
	}
}

// failingStore is the real store with one method failing: the small fake the
// Store interface makes possible.
type failingStore struct {
	Store
	getCode func() error
}

func (f failingStore) GetCode(ctx context.Context, hash []byte) (*tokenstore.AuthCode, error) {
	if f.getCode != nil {
		return nil, f.getCode()
	}
	return f.Store.GetCode(ctx, hash)
}

// TestTokenStoreFailures: a store outage is 503 temporarily_unavailable with
// Retry-After; any other store failure is 500 server_error, and neither
// says what failed.
func TestTokenStoreFailures(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{tokenstore.ErrUnavailable, 503, "temporarily_unavailable"},
		{errors.New("disk on fire"), 500, "server_error"},
	} {
		r := newRig(t, Config{})
		code := r.code("app", []string{"read:invoices"}, "", true)
		r.s.store = failingStore{Store: r.s.store, getCode: func() error { return tc.err }}
		resp := r.exchange(code)
		if resp.Code != tc.status || resp.errorCode() != tc.code {
			t.Fatalf("%v: %d %v", tc.err, resp.Code, resp.body)
		}
		if (tc.status == 503) != (resp.Header().Get("Retry-After") == bearer.RetryAfter) {
			t.Errorf("%v: Retry-After %q", tc.err, resp.Header().Get("Retry-After"))
		}
		if strings.Contains(resp.Body.String(), "fire") {
			t.Errorf("the store's error leaked: %s", resp.Body)
		}
	}
}
