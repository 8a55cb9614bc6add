package authserver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// A self-registered client cannot turn /authorize into an open redirector
// (RFC 9700 §4.11.2): a request that fails before anyone signs in is
// answered on a page, not sent to its redirect URI. The operator's client
// still gets the RFC 6749 §4.1.2.1 redirect; a signed-in user's denial of
// the unverified app still goes back to it.
func TestUnverifiedClientIsNoOpenRedirector(t *testing.T) {
	r := regRig(t, RegistrationPolicy{RateLimit: -1})
	const phish = "https://phish.example/landing"
	resp := r.send(http.MethodPost, "/oauth/register", with(publicMetadata(), "redirect_uris", []string{phish}), "", "")
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	self := resp.body["client_id"].(string)
	authorize := func(client, redirect string, extra url.Values) string {
		q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"},
			"code_challenge": {rigChallenge}, "code_challenge_method": {"S256"}, "scope": {"read:invoices"}, "state": {"s"}}
		for k, v := range extra {
			q[k] = v
		}
		return "/oauth/authorize?" + q.Encode()
	}
	for _, tc := range []struct {
		name  string
		extra url.Values
		code  string
	}{
		{"an implicit response type", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		{"a scope it may not have", url.Values{"scope": {"admin:all"}}, "invalid_scope"},
		{"a plain PKCE challenge", url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
		{"prompt=none without a session", url.Values{"prompt": {"none"}}, "login_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.get(authorize(self, phish, tc.extra))
			if got.Code != http.StatusBadRequest || got.Header().Get("Location") != "" {
				t.Fatalf("self-registered: %d Location %q, want a 400 page", got.Code, got.Header().Get("Location"))
			}
			if page := got.Body.String(); !strings.Contains(page, "registered itself") || !strings.Contains(page, tc.code) {
				t.Fatalf("the page does not explain: %s", page)
			}
			op := r.get(authorize("app", rigRedirect, tc.extra))
			if loc := op.Header().Get("Location"); !strings.HasPrefix(loc, rigRedirect+"?") || !strings.Contains(loc, "error="+tc.code) {
				t.Fatalf("operator's client: %d Location %q, want the error redirect", op.Code, loc)
			}
		})
	}
	// A valid request still goes to sign-in.
	if got := r.get(authorize(self, phish, nil)); got.Code != http.StatusSeeOther || strings.HasPrefix(got.Header().Get("Location"), phish) {
		t.Fatalf("a valid request: %d %q", got.Code, got.Header().Get("Location"))
	}
	// Signed in, but the user never agreed to the app: prompt=none's
	// consent_required is a page too; the operator's client is redirected.
	cookie := r.signIn()
	none := url.Values{"prompt": {"none"}}
	if got := r.get(authorize(self, phish, none), cookie); got.Code != http.StatusBadRequest || got.Header().Get("Location") != "" ||
		!strings.Contains(got.Body.String(), "consent_required") {
		t.Fatalf("signed in, no consent: %d %q", got.Code, got.Header().Get("Location"))
	}
	if loc := r.get(authorize("app", rigRedirect, none), cookie).Header().Get("Location"); !strings.Contains(loc, "error=consent_required") {
		t.Fatalf("operator's client, signed in, no consent: %q", loc)
	}
}

// A body sent chunked (no Content-Length) is bounded as it is read, like
// one that declares its length: 413, nothing stored.
func TestRegisterChunkedBodyTooLarge(t *testing.T) {
	r := regRig(t, RegistrationPolicy{RateLimit: -1})
	body := io.MultiReader(strings.NewReader(`{"client_name": "`), strings.NewReader(strings.Repeat("x", 2*maxRegistrationBody)), strings.NewReader(`"}`))
	req := httptest.NewRequest(http.MethodPost, "/oauth/register", body)
	req.Header.Set("Content-Type", "application/json")
	req.TransferEncoding = []string{"chunked"}
	if req.ContentLength != -1 {
		t.Fatalf("the request declares a length: %d", req.ContentLength)
	}
	resp := r.do(req)
	if resp.Code != http.StatusRequestEntityTooLarge || resp.errorCode() != "invalid_client_metadata" {
		t.Fatalf("got %d %s", resp.Code, resp.Body)
	}
	if cs, _ := r.s.store.ListClients(context.Background()); len(cs) != 0 {
		t.Fatalf("stored %d clients", len(cs))
	}
}

// Nor is RP-initiated logout an open redirector for a self-registered
// client: with nobody signed in, its post_logout_redirect_uri is not
// followed (the signed-out page is shown); the operator's client's is.
func TestUnverifiedClientLogoutIsNoOpenRedirector(t *testing.T) {
	r := regRig(t, RegistrationPolicy{RateLimit: -1})
	const phish = "https://phish.example/bye"
	resp := r.send(http.MethodPost, "/oauth/register", with(publicMetadata(), "post_logout_redirect_uris", []string{phish}), "", "")
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	self := resp.body["client_id"].(string)
	got := r.get("/oauth/sign-out?" + url.Values{"client_id": {self}, "post_logout_redirect_uri": {phish}, "state": {"s"}}.Encode())
	if got.Code != http.StatusOK || got.Header().Get("Location") != "" || !strings.Contains(got.Body.String(), "You are signed out") {
		t.Fatalf("self-registered, nobody signed in: %d Location %q", got.Code, got.Header().Get("Location"))
	}

	// The operator's client, with a post-logout URI of its own.
	st, op := r.admin(http.MethodPost, "/oauthgate/clients", `{"name":"Ops","redirect_uris":["https://ops.example/cb"],"post_logout_redirect_uris":["https://ops.example/bye"]}`)
	if st != http.StatusCreated {
		t.Fatalf("admin create: %d %v", st, op)
	}
	got = r.get("/oauth/sign-out?" + url.Values{"client_id": {op.(map[string]any)["client_id"].(string)}, "post_logout_redirect_uri": {"https://ops.example/bye"}}.Encode())
	if loc := got.Header().Get("Location"); got.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "https://ops.example/bye") {
		t.Fatalf("operator's client: %d Location %q", got.Code, loc)
	}
}

// goneStore deletes the client just after the configuration endpoint has
// authenticated the request: a DELETE (the app's own on another node, or
// the operator's) that commits in between.
type goneStore struct {
	Store
	del func(id string)
}

func (g goneStore) GetClient(ctx context.Context, id string) (*tokenstore.Client, error) {
	c, err := g.Store.GetClient(ctx, id)
	if err == nil {
		g.del(id)
	}
	return c, err
}

// An update or delete that loses the race with a deletion is RFC 7592's
// 401 invalid_token, not a 500 with an error logged.
func TestRegistrationManagementAfterConcurrentDelete(t *testing.T) {
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			r := regRig(t, RegistrationPolicy{RateLimit: -1})
			resp := r.send(http.MethodPost, "/oauth/register", publicMetadata(), "", "")
			if resp.Code != http.StatusCreated {
				t.Fatalf("register: %d %s", resp.Code, resp.Body)
			}
			id, rat := resp.body["client_id"].(string), resp.body["registration_access_token"].(string)
			r.s.store = goneStore{Store: r.s.store, del: func(id string) {
				if err := r.s.tokens.DeleteClient(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}}
			var body any
			if method == http.MethodPut {
				body = with(publicMetadata(), "client_id", id)
			}
			got := r.send(method, "/oauth/register/"+id, body, rat, "")
			if got.Code != http.StatusUnauthorized || got.errorCode() != "invalid_token" || !strings.HasPrefix(got.Header().Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("got %d %v %s", got.Code, got.Header(), got.Body)
			}
		})
	}
}

// The app's own update cannot keep a trust the platform gave it for other
// metadata: first-party status (consent skipped) and linked businesses
// are dropped by a PUT that may have changed its redirect URIs.
func TestRegistrationUpdateDropsOperatorTrust(t *testing.T) {
	r := regRig(t, RegistrationPolicy{RateLimit: -1})
	resp := r.send(http.MethodPost, "/oauth/register", publicMetadata(), "", "")
	if resp.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Code, resp.Body)
	}
	id, rat := resp.body["client_id"].(string), resp.body["registration_access_token"].(string)
	ctx := context.Background()
	if st, v := r.admin(http.MethodPost, "/oauthgate/clients/"+id+"/businesses", `{"business_id":"b1"}`); st >= 300 {
		t.Fatalf("link: %d %v", st, v)
	}
	c, err := r.s.store.GetClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	c.FirstParty = true
	if err := r.s.store.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	got := r.send(http.MethodPut, "/oauth/register/"+id, with(publicMetadata(), "client_id", id, "redirect_uris", []string{"https://elsewhere.example/cb"}), rat, "")
	if got.Code != http.StatusOK {
		t.Fatalf("update: %d %s", got.Code, got.Body)
	}
	c, err = r.s.store.GetClient(ctx, id)
	if err != nil || c.FirstParty || len(c.Businesses) != 0 {
		t.Fatalf("after the app's update: %+v, %v", c, err)
	}
}
