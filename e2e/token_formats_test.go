package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// yAppointment's token formats, as its guide's token response shows them:
// "access_token": "yapp_at_...", "refresh_token": "yapp_rt_...".
var (
	yappAccessRE  = regexp.MustCompile(`^yapp_at_[A-Za-z0-9_-]{43}$`)
	yappRefreshRE = regexp.MustCompile(`^yapp_rt_[A-Za-z0-9_-]{43}$`)
)

// postJSONTo posts body as JSON with headers and decodes the JSON answer.
func postJSONTo(t *testing.T, u string, body any, headers map[string]string) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range headers {
		h[k] = v
	}
	st, m, _ := do(t, "POST", u, h, string(b))
	return st, m
}

// TestYAppointmentTokenFormats: examples/yappointment/Caddyfile hands out
// the guide's token formats for every grant, opaque access tokens work at
// the gateway, at introspection and after a restart (the store keeps them,
// the new process's cache is cold), the rotated refresh token keeps its
// prefix, an unknown token of the right shape is refused, and a revoked
// token is refused at once.
func TestYAppointmentTokenFormats(t *testing.T) {
	dataDir := t.TempDir()
	port := freePort(t)
	n := startNode(t, nodeOptions{Caddyfile: "examples/yappointment/Caddyfile", DataDir: dataDir, Port: port})
	c := n.registerClient(map[string]any{"name": "Scheduler", "scopes": []string{"bookings:read"},
		"businesses": []string{"company_1"}, "grant_types": []string{"client_credentials"}})
	with := func(kv ...string) map[string]string {
		m := map[string]string{"client_id": c.ClientID, "client_secret": c.ClientSecret}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	st, tok := postJSONTo(t, n.URL+"/oauth/token", with("grant_type", "client_credentials"), nil)
	access, _ := tok["access_token"].(string)
	if st != 200 || !yappAccessRE.MatchString(access) || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(3600) {
		t.Fatalf("client_credentials: %d %v", st, tok)
	}
	bearer := map[string]string{"Authorization": "Bearer " + access, "x-business-id": "company_1"}
	if st, b := postJSONTo(t, n.URL+"/api/v1/bookings", map[string]any{}, bearer); st != 200 || b["company"] != "company_1" {
		t.Fatalf("POST /api/v1/bookings with an opaque token: %d %v", st, b)
	}
	st, in := postJSONTo(t, n.URL+"/oauth/introspect", with("token", access), nil)
	if st != 200 || in["active"] != true || in["client_id"] != c.ClientID || in["scope"] != "bookings:read" || in["token_type"] != "Bearer" {
		t.Errorf("introspection: %d %v", st, in)
	}
	// The right shape, but never issued.
	forged := "yapp_at_" + strings.Repeat("A", 43)
	st, _, hdr := do(t, "POST", n.URL+"/api/v1/bookings", map[string]string{"Authorization": "Bearer " + forged, "x-business-id": "company_1"}, "")
	if st != 401 || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("an unknown opaque token: %d %q", st, hdr.Get("WWW-Authenticate"))
	}
	if strings.Contains(n.Logs(), access[8:]) || strings.Contains(n.Logs(), forged[8:]) {
		t.Error("a token appears in the logs")
	}

	// A restart: the token lives in the store, not in the process.
	n.Stop()
	n = startNode(t, nodeOptions{Caddyfile: "examples/yappointment/Caddyfile", DataDir: dataDir, Port: port})
	if st, b := postJSONTo(t, n.URL+"/api/v1/bookings", map[string]any{}, bearer); st != 200 || b["company"] != "company_1" {
		t.Fatalf("the opaque token after a restart: %d %v", st, b)
	}

	// Revocation with the client's credentials (the guide's revokeToken):
	// the very next request is refused.
	if st, e := postJSONTo(t, n.URL+"/oauth/revoke", with("token", access), nil); st != 200 {
		t.Fatalf("revoke: %d %v", st, e)
	}
	if st, _, _ := do(t, "POST", n.URL+"/api/v1/bookings", bearer, "{}"); st != 401 {
		t.Errorf("the revoked opaque token: %d", st)
	}
	if st, in := postJSONTo(t, n.URL+"/oauth/introspect", with("token", access), nil); st != 200 || in["active"] != false {
		t.Errorf("introspection of the revoked token: %d %v", st, in)
	}
}

// TestYAppointmentRefreshTokenFormat: the guide's PKCE flow on
// examples/yappointment/Caddyfile returns both prefixes, and the refresh
// returns a new pair in the same formats.
func TestYAppointmentRefreshTokenFormat(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yappointment/Caddyfile"})
	const callback = "https://myapp.com/callback"
	c := n.registerClient(map[string]any{"name": "Booking Bridge", "scopes": []string{"bookings:read"},
		"redirect_uris": []string{callback}})
	ua := newUserAgent(t)
	q := fmt.Sprintf("%s/oauth/authorize?client_id=%s&redirect_uri=%s&response_type=code&scope=bookings:read&state=s1",
		n.URL, c.ClientID, callback)
	p := ua.toStop(q, yappAdmin, yappPassword, callback)
	if p.StatusCode == http.StatusOK {
		p = ua.submit(p, map[string][]string{"decision": {"allow"}})
	}
	cb := callbackQuery(t, p, callback)
	st, tok := postJSONTo(t, n.URL+"/oauth/token", map[string]string{"grant_type": "authorization_code", "code": cb.Get("code"),
		"client_id": c.ClientID, "client_secret": c.ClientSecret, "redirect_uri": callback}, nil)
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	if st != 200 || !yappAccessRE.MatchString(access) || !yappRefreshRE.MatchString(refresh) {
		t.Fatalf("code exchange: %d %v", st, tok)
	}
	if st, me, _ := do(t, "POST", n.URL+"/api/v1/me", map[string]string{"Authorization": "Bearer " + access}, ""); st != 200 || me["company"] != "company_1" {
		t.Errorf("POST /api/v1/me: %d %v", st, me)
	}
	st, tok = postJSONTo(t, n.URL+"/oauth/token", map[string]string{"grant_type": "refresh_token", "refresh_token": refresh,
		"client_id": c.ClientID, "client_secret": c.ClientSecret}, nil)
	if a, _ := tok["access_token"].(string); st != 200 || !yappAccessRE.MatchString(a) || a == access {
		t.Fatalf("refresh: %d %v", st, tok)
	}
	if r, _ := tok["refresh_token"].(string); !yappRefreshRE.MatchString(r) || r == refresh {
		t.Errorf("rotated refresh token %q", r)
	}
}

// TestClusterOpaqueTokens: on two nodes sharing one PostgreSQL database, an
// opaque token minted on node A works on node B (B has never seen it: it
// looks it up in the store), and a revocation on A, of the token or of its
// client, is refused on B within the cluster's propagation bound, though B
// has the token cached. While PostgreSQL is down, a token B has cached
// still passes and one B has never seen is refused with 503 (fail closed),
// until the database is back.
func TestClusterOpaqueTokens(t *testing.T) {
	pg := startPostgres(t)
	opts := nodeOptions{Caddyfile: "e2e/testdata/opaque.Caddyfile", Env: []string{"OAUTHGATE_DSN=" + pg.CreateDB("oauthgate"),
		fmt.Sprintf("OAUTHGATE_ISSUER=http://localhost:%d", freePort(t))}}
	nodes := startNodes(t, opts, opts)
	a, b := nodes[0], nodes[1]
	c := a.registerClient(map[string]any{"name": "Scheduler", "scopes": []string{"bookings:read"},
		"grant_types": []string{"client_credentials"}})
	mint := func() string {
		t.Helper()
		st, tok := postJSONTo(t, a.URL+"/oauth/token", map[string]string{"grant_type": "client_credentials",
			"client_id": c.ClientID, "client_secret": c.ClientSecret}, nil)
		raw, _ := tok["access_token"].(string)
		if st != 200 || !yappAccessRE.MatchString(raw) {
			t.Fatalf("token on A: %d %v", st, tok)
		}
		return raw
	}
	call := func(n *node, raw string) int {
		t.Helper()
		st, _, _ := do(t, "POST", n.URL+"/api/v1/bookings", map[string]string{"Authorization": "Bearer " + raw}, "")
		return st
	}
	refusedOn := func(n *node, raw, what string) {
		t.Helper()
		deadline := time.Now().Add(propagationBound)
		for call(n, raw) != 401 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still accepted on %s after %v", what, n.URL, propagationBound)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	first := mint()
	if st := call(b, first); st != 200 {
		t.Fatalf("A's opaque token on B: %d\n%s", st, b.Logs())
	}
	if st, in := postJSONTo(t, b.URL+"/oauth/introspect", map[string]string{"token": first,
		"client_id": c.ClientID, "client_secret": c.ClientSecret}, nil); st != 200 || in["active"] != true {
		t.Errorf("introspection on B of A's token: %d %v", st, in)
	}
	if st := call(a, first); st != 200 {
		t.Fatalf("on A: %d", st)
	}

	// Revoked on A, while B has it cached.
	if st, e := postJSONTo(t, a.URL+"/oauth/revoke", map[string]string{"token": first,
		"client_id": c.ClientID, "client_secret": c.ClientSecret}, nil); st != 200 {
		t.Fatalf("revoke on A: %d %v", st, e)
	}
	if st := call(a, first); st != 401 {
		t.Errorf("revoked on A, on A: %d", st)
	}
	refusedOn(b, first, "a token revoked on A")

	// The client deleted on A: its other tokens die on B too.
	second := mint()
	if st := call(b, second); st != 200 {
		t.Fatalf("second token on B: %d", st)
	}
	if st := a.adminJSON(http.MethodDelete, "/oauthgate/clients/"+c.ClientID, nil, nil); st != http.StatusNoContent && st != http.StatusOK {
		t.Fatalf("deleting the client on A: %d", st)
	}
	refusedOn(b, second, "a token of a client deleted on A")

	// The store down: cached tokens pass, an unseen one is a 503.
	c = a.registerClient(map[string]any{"name": "Scheduler 2", "scopes": []string{"bookings:read"},
		"grant_types": []string{"client_credentials"}})
	cached, unseen := mint(), mint()
	if st := call(b, cached); st != 200 {
		t.Fatalf("cached token on B: %d", st)
	}
	pg.Stop()
	if st := call(b, cached); st != 200 {
		t.Errorf("a cached opaque token with the store down: %d", st)
	}
	st, e, hdr := do(t, "POST", b.URL+"/api/v1/bookings", map[string]string{"Authorization": "Bearer " + unseen}, "")
	if st != 503 || e["error"] != "temporarily_unavailable" || hdr.Get("Retry-After") == "" {
		t.Errorf("an uncached opaque token with the store down: %d %v, Retry-After %q", st, e, hdr.Get("Retry-After"))
	}
	pg.Start()
	deadline := time.Now().Add(30 * time.Second)
	for call(b, unseen) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the uncached token is still refused after the store came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
