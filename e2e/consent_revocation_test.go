package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestConsentEndsWithTheGrant: a remembered consent lasts as long as the
// grant it produced. Whichever way the grant ends — the app revoking its
// access or refresh token (RFC 7009), an operator revoking the grant on the
// admin API or all of the user's with the CLI, a replayed refresh token or
// code, the user disconnecting the app on the connected-apps page — the
// next interactive authorization request shows the consent page again and
// prompt=none answers consent_required. Allowing again is remembered again. A first-party client
// skips consent regardless.
func TestConsentEndsWithTheGrant(t *testing.T) {
	n := startNode(t, nodeOptions{})
	ua := newUserAgent(t)
	const redirect = "http://127.0.0.1/callback"

	type flow struct {
		c    registeredClient
		conf oauth2.Config
	}
	newFlow := func(t *testing.T, name string, firstParty bool) *flow {
		c := n.registerClient(map[string]any{
			"name": name, "grant_types": []string{"authorization_code", "refresh_token"}, "first_party": firstParty,
			"scopes": []string{"openid", "offline_access", "read:invoices"}, "redirect_uris": []string{redirect},
		})
		return &flow{c: c, conf: oauth2.Config{
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirect,
			Endpoint: oauth2.Endpoint{AuthURL: n.URL + "/oauth/authorize", TokenURL: n.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
			Scopes:   []string{"openid", "offline_access", "read:invoices"},
		}}
	}
	// authURL is a fresh authorization request, with prompt=none if asked.
	authURL := func(f *flow, state, verifier string, none bool) string {
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
		if none {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", "none"))
		}
		return f.conf.AuthCodeURL(state, opts...)
	}
	// consentAndToken runs the flow through the consent page (signing in the
	// first time) and returns the tokens of the new grant.
	consentAndToken := func(t *testing.T, f *flow) *oauth2.Token {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		cb := ua.authorize(authURL(f, "first", verifier, false), "biz_acme")
		tok, err := f.conf.Exchange(ctx(t), codeFrom(t, cb, "first", n.URL), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token")
		}
		return tok
	}
	// remembered checks that prompt=none is answered with a code.
	remembered := func(t *testing.T, f *flow, when string) {
		t.Helper()
		p := ua.get(authURL(f, "silent", oauth2.GenerateVerifier(), true))
		if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasPrefix(p.Location.String(), redirect+"?") {
			t.Fatalf("%s: prompt=none: %d %v, want a redirect to the client", when, p.StatusCode, p.Location)
		}
		codeFrom(t, p.Location, "silent", n.URL)
	}
	// forgotten checks that the consent must be given again.
	forgotten := func(t *testing.T, f *flow, when string) {
		t.Helper()
		p := ua.get(authURL(f, "silent", oauth2.GenerateVerifier(), true))
		if p.StatusCode != http.StatusSeeOther || p.Location == nil || !strings.HasPrefix(p.Location.String(), redirect+"?") {
			t.Fatalf("%s: prompt=none: %d %v, want an error redirect to the client", when, p.StatusCode, p.Location)
		}
		if q := p.Location.Query(); q.Get("error") != "consent_required" || q.Get("code") != "" || q.Get("state") != "silent" || q.Get("iss") != n.URL {
			t.Errorf("%s: prompt=none answered %s, want error=consent_required with state and iss and no code", when, p.Location)
		}
		p = ua.get(authURL(f, "again", oauth2.GenerateVerifier(), false))
		if p.StatusCode != http.StatusSeeOther || p.Location == nil || p.Location.Path != "/oauth/consent" {
			t.Errorf("%s: interactive request: %d %v, want 303 to the consent page", when, p.StatusCode, p.Location)
		}
	}
	// ended checks that the grant's tokens are dead, then that its consent
	// is forgotten, then that allowing again is remembered again.
	ended := func(t *testing.T, f *flow, tok *oauth2.Token, how string) {
		t.Helper()
		if st, body := postForm(t, n, "/oauth/token", f.c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}); st != 400 ||
			decodeError(t, body).Error != "invalid_grant" {
			t.Errorf("after %s: refresh: %d %s, want invalid_grant", how, st, body)
		}
		forgotten(t, f, "after "+how)
		consentAndToken(t, f)
		remembered(t, f, "after allowing again")
	}

	t.Run("app revokes its access token", func(t *testing.T) {
		f := newFlow(t, "Revokes Access", false)
		tok := consentAndToken(t, f)
		remembered(t, f, "before revocation")
		if st, body := postForm(t, n, "/oauth/revoke", f.c, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}); st != 200 {
			t.Fatalf("revoke: %d %s", st, body)
		}
		ended(t, f, tok, "revoking the access token")
	})
	t.Run("app revokes its refresh token", func(t *testing.T) {
		f := newFlow(t, "Revokes Refresh", false)
		tok := consentAndToken(t, f)
		remembered(t, f, "before revocation")
		if st, body := postForm(t, n, "/oauth/revoke", f.c, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}); st != 200 {
			t.Fatalf("revoke: %d %s", st, body)
		}
		ended(t, f, tok, "revoking the refresh token")
	})
	t.Run("operator revokes the grant", func(t *testing.T) {
		f := newFlow(t, "Operator Revokes", false)
		tok := consentAndToken(t, f)
		remembered(t, f, "before revocation")
		gid, _ := tokenClaims(t, tok.AccessToken)["gid"].(string)
		if gid == "" {
			t.Fatal("access token without gid")
		}
		if st := n.adminJSON(http.MethodDelete, "/oauthgate/grants/"+url.PathEscape(gid), nil, nil); st != http.StatusNoContent {
			t.Fatalf("admin revoke: %d", st)
		}
		ended(t, f, tok, "the operator revoked the grant")
	})
	t.Run("operator revokes all of the user's grants with the CLI", func(t *testing.T) {
		f := newFlow(t, "Operator Revokes All", false)
		tok := consentAndToken(t, f)
		remembered(t, f, "before revocation")
		sub, _ := tokenClaims(t, tok.AccessToken)["sub"].(string)
		cmd := exec.Command(caddyBin, "oauthgate", "grant", "revoke", "--user", sub, "--client", f.c.ClientID,
			"--address", strings.TrimPrefix(n.Admin, "http://"))
		out, err := cmd.Output()
		var res struct{ Revoked []string }
		if err != nil || json.Unmarshal(out, &res) != nil || len(res.Revoked) != 1 || res.Revoked[0] != tokenClaims(t, tok.AccessToken)["gid"] {
			t.Fatalf("caddy oauthgate grant revoke --user: %v\n%s", err, out)
		}
		ended(t, f, tok, "the operator revoked the user's grants")
	})
	t.Run("user disconnects the app", func(t *testing.T) {
		f := newFlow(t, "Disconnected", false)
		tok := consentAndToken(t, f)
		remembered(t, f, "before disconnecting")
		gid, _ := tokenClaims(t, tok.AccessToken)["gid"].(string)
		p := ua.get(n.URL + "/oauth/account")
		if p.StatusCode != http.StatusOK || !strings.Contains(p.Body, `value="`+gid+`"`) {
			t.Fatalf("connected apps: %d, the app's grant %s not listed:\n%s", p.StatusCode, gid, p.Body)
		}
		if st := gateway(n, tok.AccessToken); st == http.StatusUnauthorized {
			t.Fatalf("gateway before Disconnect: %d", st)
		}
		csrf := parseForm(t, p.Body).Fields.Get("csrf_token")
		d := ua.post(n.URL+"/oauth/account", url.Values{"csrf_token": {csrf}, "grant_id": {gid}})
		if d.StatusCode != http.StatusSeeOther || d.Location == nil || d.Location.Path != "/oauth/account" {
			t.Fatalf("Disconnect: %d %v\n%s", d.StatusCode, d.Location, d.Body)
		}
		if st := gateway(n, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("gateway after Disconnect: %d, want 401", st)
		}
		ended(t, f, tok, "the user disconnected the app")
	})
	t.Run("refresh token replayed", func(t *testing.T) {
		f := newFlow(t, "Replayed", false)
		tok := consentAndToken(t, f)
		remembered(t, f, "before the replay")
		if _, err := f.conf.TokenSource(ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		// tok.RefreshToken is spent: presenting it again revokes the grant.
		ended(t, f, tok, "replaying a spent refresh token")
	})
	t.Run("code replayed", func(t *testing.T) {
		f := newFlow(t, "Code Replayed", false)
		verifier := oauth2.GenerateVerifier()
		cb := ua.authorize(authURL(f, "first", verifier, false), "biz_acme")
		code := codeFrom(t, cb, "first", n.URL)
		tok, err := f.conf.Exchange(ctx(t), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		remembered(t, f, "before the replay")
		// Past the leeway within which an identical exchange counts as a
		// racing duplicate (authserver codeRaceLeeway), it is a replay.
		time.Sleep(time.Second)
		if st, body := postForm(t, n, "/oauth/token", f.c, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirect}, "code_verifier": {verifier}}); st != 400 || decodeError(t, body).Error != "invalid_grant" {
			t.Fatalf("replayed code: %d %s", st, body)
		}
		ended(t, f, tok, "replaying a spent code")
	})
	t.Run("first-party client skips consent regardless", func(t *testing.T) {
		f := newFlow(t, "First Party", true)
		verifier := oauth2.GenerateVerifier()
		cb := ua.authorize(authURL(f, "first", verifier, false), "")
		tok, err := f.conf.Exchange(ctx(t), codeFrom(t, cb, "first", n.URL), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if st, body := postForm(t, n, "/oauth/revoke", f.c, url.Values{"token": {tok.RefreshToken}}); st != 200 {
			t.Fatalf("revoke: %d %s", st, body)
		}
		remembered(t, f, "after revoking a first-party grant")
	})
}
