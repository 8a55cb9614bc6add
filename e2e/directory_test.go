package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

// adminRaw calls the admin API and returns the status and raw body.
func adminRaw(t *testing.T, n *node, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, n.Admin+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDirectoryAdmin: users and businesses of the built-in directory
// through the admin API and the CLI; a user's grants end with the user.
func TestDirectoryAdmin(t *testing.T) {
	n := startNode(t, nodeOptions{})
	st, body := adminRaw(t, n, "POST", "/oauthgate/users", `{"email": "Ada@Example.com", "password": "analytical-engine",
		"name": "Ada Lovelace", "businesses": [{"id": "biz_ae", "name": "Analytical Engines"}, {"id": "biz_acme"}],
		"current_business": "biz_ae"}`)
	if st != http.StatusCreated {
		t.Fatalf("create user: %d %s", st, body)
	}
	var ada struct {
		ID              string            `json:"id"`
		Email           string            `json:"email"`
		Name            string            `json:"name"`
		CurrentBusiness string            `json:"current_business"`
		Businesses      []json.RawMessage `json:"businesses"`
		HasPassword     bool              `json:"has_password"`
	}
	_ = json.Unmarshal([]byte(body), &ada)
	if !strings.HasPrefix(ada.ID, "usr_") || ada.Email != "ada@example.com" || ada.CurrentBusiness != "biz_ae" || !ada.HasPassword ||
		!strings.Contains(body, `"name": "Acme Ltd"`) || len(ada.Businesses) != 2 {
		t.Errorf("created user %s", body)
	}
	if strings.Contains(body, "analytical-engine") || strings.Contains(body, "$2") || strings.Contains(body, `"password"`) {
		t.Errorf("the answer shows the password or its hash: %s", body)
	}

	for _, tc := range []struct{ name, body string }{
		{"short password", `{"email": "b@example.com", "password": "short", "businesses": [{"id": "b1"}]}`},
		{"password longer than bcrypt reads", `{"email": "b@example.com", "password": "` + strings.Repeat("x", 73) + `", "businesses": [{"id": "b1"}]}`},
		{"no business", `{"email": "b@example.com", "password": "long-enough", "businesses": []}`},
		{"current business not the user's", `{"email": "b@example.com", "password": "long-enough", "businesses": [{"id": "b1"}], "current_business": "b2"}`},
		{"invalid e-mail", `{"email": "not an email", "password": "long-enough", "businesses": [{"id": "b1"}]}`},
		{"invalid business id", `{"email": "b@example.com", "password": "long-enough", "businesses": [{"id": "b 1"}]}`},
		{"a hash instead of a password", `{"email": "b@example.com", "password_hash": "$2a$10$abc", "businesses": [{"id": "b1"}]}`},
	} {
		if st, body := adminRaw(t, n, "POST", "/oauthgate/users", tc.body); st != 400 {
			t.Errorf("%s: %d %s", tc.name, st, body)
		}
	}
	if st, _ := adminRaw(t, n, "POST", "/oauthgate/users", `{"email": "ADA@example.com", "password": "another-one", "businesses": [{"id": "b1"}]}`); st != 409 {
		t.Errorf("duplicate e-mail: %d", st)
	}
	st, body = adminRaw(t, n, "GET", "/oauthgate/users", "")
	if st != 200 || !strings.Contains(body, demoEmail) || !strings.Contains(body, "ada@example.com") || strings.Contains(body, "$2") {
		t.Errorf("list users: %d %s", st, body)
	}
	if st, body := adminRaw(t, n, "GET", "/oauthgate/users/ada@example.com", ""); st != 200 || !strings.Contains(body, ada.ID) {
		t.Errorf("get by e-mail: %d %s", st, body)
	}
	if st, _ := adminRaw(t, n, "GET", "/oauthgate/users/usr_nobody", ""); st != 404 {
		t.Errorf("unknown user: %d", st)
	}
	if st, body := adminRaw(t, n, "POST", "/oauthgate/businesses", `{"id": "biz_new", "name": "New Co"}`); st != 200 || !strings.Contains(body, "New Co") {
		t.Errorf("create business: %d %s", st, body)
	}
	st, body = adminRaw(t, n, "GET", "/oauthgate/businesses", "")
	for _, want := range []string{"biz_acme", "biz_globex", "biz_ae", "Analytical Engines", "biz_new"} {
		if st != 200 || !strings.Contains(body, want) {
			t.Errorf("businesses lack %s: %d %s", want, st, body)
		}
	}

	// Ada signs in and connects an app for her current business.
	c := n.registerClient(map[string]any{"name": "Ada's App", "scopes": []string{"read:invoices"}, "redirect_uris": []string{"http://127.0.0.1/cb"}})
	ua := newUserAgent(t)
	authURL := ua.authorizeURL(n, c.ClientID, "http://127.0.0.1/cb", "read:invoices", "s")
	cp := consentPage(t, ua, authURL, "ada@example.com", "analytical-engine")
	if f := parseForm(t, cp.Body); f.Fields.Get("business_id") != "biz_ae" || len(f.Options["business_id"]) != 2 {
		t.Errorf("Ada's business picker: %+v", f)
	}
	p := ua.submit(cp, url.Values{"decision": {"allow"}})
	st, raw := postForm(t, n, "/oauth/token", c, url.Values{"grant_type": {"authorization_code"}, "code": {codeFrom(t, p.Location, "s", n.URL)},
		"redirect_uri": {"http://127.0.0.1/cb"}})
	var tok map[string]any
	_ = json.Unmarshal(raw, &tok)
	if st != 200 {
		t.Fatalf("Ada's token: %d %s", st, raw)
	}
	at := tok["access_token"].(string)
	if resp, _ := get(t, "GET", n.URL+"/api/v1/accounting/invoices", at, "biz_ae"); resp.StatusCode != 200 {
		t.Errorf("Ada's token: %d", resp.StatusCode)
	}

	// The CLI wraps the same API.
	addr := strings.TrimPrefix(n.Admin, "http://")
	cli := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(caddyBin, append([]string{"oauthgate"}, append(args, "--address", addr)...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("caddy oauthgate %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := cli("hopper-compiler\n", "user", "create", "--email", "grace@example.com", "--name", "Grace Hopper",
		"--business", "biz_navy=US Navy", "--business", "biz_acme")
	if !strings.Contains(out, `"email": "grace@example.com"`) || !strings.Contains(out, "US Navy") || strings.Contains(out, "hopper-compiler") {
		t.Errorf("user create: %s", out)
	}
	if out := cli("", "user", "list"); !strings.Contains(out, "grace@example.com") || !strings.Contains(out, demoEmail) {
		t.Errorf("user list: %s", out)
	}
	if out := cli("", "user", "get", "grace@example.com"); !strings.Contains(out, `"current_business": "biz_navy"`) {
		t.Errorf("user get: %s", out)
	}
	if out := cli("", "business", "create", "biz_lab", "Research Lab"); !strings.Contains(out, "Research Lab") {
		t.Errorf("business create: %s", out)
	}
	if out := cli("", "business", "list"); !strings.Contains(out, "biz_navy") || !strings.Contains(out, "biz_lab") {
		t.Errorf("business list: %s", out)
	}
	cli("", "user", "delete", "grace@example.com")
	if st, _ := adminRaw(t, n, "GET", "/oauthgate/users/grace@example.com", ""); st != 404 {
		t.Errorf("deleted by the CLI: %d", st)
	}

	// Deleting Ada revokes what she granted and ends her sign-ins.
	if st, body := adminRaw(t, n, "DELETE", "/oauthgate/users/"+ada.ID, ""); st != 204 {
		t.Fatalf("delete user: %d %s", st, body)
	}
	resp, b := get(t, "GET", n.URL+"/api/v1/accounting/invoices", at, "biz_ae")
	if e := decodeError(t, b); resp.StatusCode != 401 || e.Error != "invalid_token" {
		t.Errorf("token of a deleted user: %d %+v", resp.StatusCode, e)
	}
	st, raw = postForm(t, n, "/oauth/token", c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if e := decodeError(t, raw); st != 400 || e.Error != "invalid_grant" {
		t.Errorf("refresh of a deleted user: %d %s", st, raw)
	}
	// Her browser session ends with her: the next request asks to sign in.
	if p := ua.get(authURL); p.Location == nil || p.Location.Path != "/oauth/sign-in" {
		t.Errorf("session of a deleted user: %d %v", p.StatusCode, p.Location)
	}
}

// TestUserCreateKeepsBusinessNames: creating a user never renames a
// business other users share. A name that differs from the business's is
// refused with 409 by the admin API and by the CLI, before anything is
// written; the same name, or the id alone, is accepted.
func TestUserCreateKeepsBusinessNames(t *testing.T) {
	n := startNode(t, nodeOptions{})
	acmeName := func() string {
		t.Helper()
		st, body := adminRaw(t, n, "GET", "/oauthgate/businesses", "")
		var bs []struct{ ID, Name string }
		if err := json.Unmarshal([]byte(body), &bs); st != 200 || err != nil {
			t.Fatalf("list businesses: %d %s", st, body)
		}
		for _, b := range bs {
			if b.ID == "biz_acme" {
				return b.Name
			}
		}
		t.Fatalf("biz_acme is gone: %s", body)
		return ""
	}
	if got := acmeName(); got != "Acme Ltd" {
		t.Fatalf("the demo business is named %q", got)
	}
	st, body := adminRaw(t, n, "POST", "/oauthgate/users", `{"email": "eve@example.com", "password": "long-enough",
		"businesses": [{"id": "biz_new", "name": "New Co"}, {"id": "biz_acme", "name": "Acme"}]}`)
	if st != http.StatusConflict || !strings.Contains(body, "Acme Ltd") {
		t.Errorf("a user naming biz_acme otherwise: %d %s", st, body)
	}
	if got := acmeName(); got != "Acme Ltd" {
		t.Errorf("creating a user renamed biz_acme to %q", got)
	}
	if st, _ := adminRaw(t, n, "GET", "/oauthgate/users/eve@example.com", ""); st != 404 {
		t.Errorf("the refused user exists: %d", st)
	}
	if st, body := adminRaw(t, n, "GET", "/oauthgate/businesses", ""); st != 200 || strings.Contains(body, "biz_new") {
		t.Errorf("the refused request created a business: %s", body)
	}

	addr := strings.TrimPrefix(n.Admin, "http://")
	cmd := exec.Command(caddyBin, "oauthgate", "user", "create", "--email", "eve@example.com", "--business", "biz_acme=Acme", "--address", addr)
	cmd.Stdin = strings.NewReader("long-enough\n")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "409") {
		t.Errorf("CLI user create --business biz_acme=Acme: %v\n%s", err, out)
	}
	if got := acmeName(); got != "Acme Ltd" {
		t.Errorf("the CLI renamed biz_acme to %q", got)
	}

	// The same name, or the id alone, joins the business as it is.
	if st, body := adminRaw(t, n, "POST", "/oauthgate/users", `{"email": "eve@example.com", "password": "long-enough",
		"businesses": [{"id": "biz_acme", "name": "Acme Ltd"}]}`); st != 201 {
		t.Errorf("the business's own name: %d %s", st, body)
	}
	cmd = exec.Command(caddyBin, "oauthgate", "user", "create", "--email", "mallory@example.com", "--business", "biz_acme",
		"--business", "biz_lab=Research Lab", "--address", addr)
	cmd.Stdin = strings.NewReader("long-enough\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Research Lab") || !strings.Contains(string(out), "Acme Ltd") {
		t.Errorf("CLI user create with the id alone: %v\n%s", err, out)
	}
	if got := acmeName(); got != "Acme Ltd" {
		t.Errorf("biz_acme is now %q", got)
	}
}
