package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsStayOutOfConfig: static clients' secrets and configured users'
// passwords given as hashes (secret_hash, password_hash) or as runtime
// placeholders ({env.…}) work for client authentication and sign-in, and
// appear in clear text neither in the config the admin API serves
// (GET /config/) nor in Caddy's autosave.
func TestSecretsStayOutOfConfig(t *testing.T) {
	const (
		hashedSecret   = "hashed-client-secret-0123456789abcdefghij"
		hashedPassword = "hashed-user-password"
	)
	envSecret, envPassword := "env-client-secret-"+randomHex(t), "env-user-password-"+randomHex(t)
	n := startNode(t, nodeOptions{Caddyfile: "e2e/testdata/secrets.Caddyfile", Env: []string{
		"OAUTHGATE_TEST_CLIENT_SECRET=" + envSecret,
		"OAUTHGATE_TEST_USER_PASSWORD=" + envPassword,
	}})
	clear := []string{hashedSecret, hashedPassword, envSecret, envPassword}

	resp, err := http.Get(n.Admin + "/config/")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(cfg), `"secret_hash":"sha256:`) || !strings.Contains(string(cfg), `{env.OAUTHGATE_TEST_USER_PASSWORD}`) {
		t.Fatalf("GET /config/: %d %s", resp.StatusCode, cfg)
	}
	autosave, err := os.ReadFile(filepath.Join(n.DataDir, "caddy", "autosave.json"))
	if err != nil {
		t.Fatalf("Caddy's autosave: %v", err)
	}
	for _, s := range clear {
		if strings.Contains(string(cfg), s) {
			t.Errorf("GET /config/ holds a secret in clear text")
		}
		if strings.Contains(string(autosave), s) {
			t.Errorf("Caddy's autosave holds a secret in clear text")
		}
		if strings.Contains(n.Logs(), s) {
			t.Errorf("the log holds a secret in clear text")
		}
	}

	// Both clients authenticate with their secrets, and only with them.
	for _, c := range []registeredClient{{ClientID: "hashed-app", ClientSecret: hashedSecret}, {ClientID: "env-app", ClientSecret: envSecret}} {
		if st, body := postForm(t, n, "/oauth/token", c, url.Values{"grant_type": {"client_credentials"}}); st != 200 {
			t.Errorf("%s: %d %s", c.ClientID, st, body)
		}
		c.ClientSecret += "x"
		if st, _ := postForm(t, n, "/oauth/token", c, url.Values{"grant_type": {"client_credentials"}}); st != 401 {
			t.Errorf("%s with a wrong secret: %d", c.ClientID, st)
		}
	}
	// Both users sign in with their passwords.
	web := registeredClient{ClientID: "env-app", ClientSecret: envSecret}
	for _, u := range []struct{ email, password string }{{"hashed@example.com", hashedPassword}, {"env@example.com", envPassword}} {
		authURL := n.URL + "/oauth/authorize?" + url.Values{"response_type": {"code"}, "client_id": {web.ClientID},
			"redirect_uri": {"http://127.0.0.1/cb"}, "scope": {"read:invoices"}, "state": {"s"}}.Encode()
		loc := newUserAgent(t).authorizeAs(authURL, u.email, u.password, "biz_1")
		st, body := postForm(t, n, "/oauth/token", web, url.Values{"grant_type": {"authorization_code"},
			"code": {codeFrom(t, loc, "s", n.URL)}, "redirect_uri": {"http://127.0.0.1/cb"}})
		if st != 200 {
			t.Errorf("%s: code exchange %d %s", u.email, st, body)
		}
	}
}

// randomHex is 64 random bits in hex, to make a value no file holds.
func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
