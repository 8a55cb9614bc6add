package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestSeedYoco replays Yoco's "Obtaining tokens" guide against
// examples/yoco/Caddyfile: a form-encoded code exchange with the client
// credentials in the body, an id_token with the business claims verified
// against /.well-known/jwks.json, and a refresh token only with
// offline_access.
func TestSeedYoco(t *testing.T) {
	n := startNode(t, nodeOptions{Caddyfile: "examples/yoco/Caddyfile"})
	c := n.registerClient(map[string]any{"name": "Till Sync", "scopes": []string{"offline_access", "openid", "business/orders:read"},
		"redirect_uris": []string{"https://till-sync.example/callback"}})
	exchange := func(code string) (int, map[string]any) {
		t.Helper()
		// The guide's request, as is.
		st, raw := postForm(t, n, "/oauth2/token", c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {"https://till-sync.example/callback"}})
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return st, m
	}
	authorize := func(ua *userAgent, scope, state string) string {
		t.Helper()
		cb := ua.authorizeAs(n.URL+"/oauth2/authorize?"+url.Values{"response_type": {"code"}, "client_id": {c.ClientID},
			"redirect_uri": {"https://till-sync.example/callback"}, "scope": {scope}, "state": {state}}.Encode(),
			"merchant@example.com", "merchant-password", "biz_market")
		return codeFrom(t, cb, state, n.URL)
	}
	ua := newUserAgent(t)

	// Without offline_access: tokens, no refresh token.
	st, tok := exchange(authorize(ua, "openid business/orders:read", "s1"))
	if st != 200 || tok["refresh_token"] != nil || tok["id_token"] == nil || tok["expires_in"] != float64(14*24*3600) {
		t.Fatalf("without offline_access: %d %v", st, tok)
	}
	// With it: the guide's response shape.
	st, tok = exchange(authorize(ua, "offline_access openid business/orders:read", "s2"))
	if st != 200 || tok["refresh_token"] == nil || tok["scope"] != "offline_access openid business/orders:read" || tok["token_type"] != "Bearer" {
		t.Fatalf("with offline_access: %d %v", st, tok)
	}

	// The id_token verifies against the JWKS the guide names.
	ks := oidc.NewRemoteKeySet(ctx(t), n.URL+"/.well-known/jwks.json")
	v := oidc.NewVerifier(n.URL, ks, &oidc.Config{ClientID: c.ClientID, SupportedSigningAlgs: []string{"ES256"}})
	idt, err := v.Verify(ctx(t), tok["id_token"].(string))
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	var claims idClaims
	_ = idt.Claims(&claims)
	if claims.Sub == "" || claims.UserID != claims.Sub || claims.UserName != "Thandi Merchant" || claims.UserEmail != "merchant@example.com" ||
		claims.DefaultBusinessID != "biz_cafe" || !slices.Equal(claims.BusinessIDs, []string{"biz_cafe", "biz_market"}) ||
		claims.AuthorizedBusinessID != "biz_market" || claims.Nonce != nil {
		t.Errorf("claims %+v", claims)
	}

	// The API call needs no business header: the token's is injected.
	resp, body := get(t, "GET", n.URL+"/v1/orders", tok["access_token"].(string), "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"business":"biz_market"`) {
		t.Errorf("orders: %d %s", resp.StatusCode, body)
	}

	// Refresh rotates, and the refreshed token keeps offline_access.
	conf := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: n.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	t2, err := conf.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok["refresh_token"].(string)}).Token()
	if err != nil || t2.RefreshToken == "" || t2.RefreshToken == tok["refresh_token"] {
		t.Fatalf("refresh: %v %+v", err, t2)
	}
	if resp, _ := get(t, "GET", n.URL+"/v1/orders", t2.AccessToken, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("refreshed token: %d", resp.StatusCode)
	}
}
