package authserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// admin sends one admin API request and decodes its JSON answer.
func (r *rig) admin(method, path, body string) (int, any) {
	r.t.Helper()
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	rec := httptest.NewRecorder()
	r.s.AdminHandler().ServeHTTP(rec, req)
	var v any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			r.t.Fatalf("%s %s: %q: %v", method, path, rec.Body, err)
		}
	}
	return rec.Code, v
}

func field(v any, k string) any {
	m, _ := v.(map[string]any)
	return m[k]
}

// TestAdminClientRules: the registration rules of POST /oauthgate/clients,
// one row each; every refusal is a 400 whose message names the problem.
func TestAdminClientRules(t *testing.T) {
	r := newRig(t, Config{Scopes: []Scope{{Name: "read:invoices"}, {Name: "write:invoices"}}})
	for _, tc := range []struct {
		rule, body string
		status     int
		msg        string
	}{
		{"a name is required", `{"grant_types":["client_credentials"]}`, 400, "name is required"},
		{"unknown fields are typos", `{"name":"x","grant_type":["client_credentials"]}`, 400, "unknown field"},
		{"only supported grant types", `{"name":"x","grant_types":["password"]}`, 400, `grant type "password" is not supported`},
		{"a public client cannot use client_credentials", `{"name":"x","public":true,"grant_types":["client_credentials"]}`, 400, "public client"},
		{"scopes are scope tokens", `{"name":"x","scopes":["a b"]}`, 400, "not a valid scope token"},
		{"scopes come from the catalogue", `{"name":"x","scopes":["admin"]}`, 400, "not in the scope catalogue"},
		{"business ids are checked", `{"name":"x","businesses":["a/b"]}`, 400, "business id"},
		{"authorization_code needs a redirect URI", `{"name":"x","grant_types":["authorization_code"]}`, 400, "needs at least one redirect_uri"},
		{"RFC 6749 §3.1.2: redirect URIs are absolute", `{"name":"x","redirect_uris":["/cb"]}`, 400, "absolute"},
		{"RFC 6749 §3.1.2: redirect URIs have no fragment", `{"name":"x","redirect_uris":["https://a.example/cb#f"]}`, 400, "fragment"},
		{"RFC 9700 §2.1: http only on loopback", `{"name":"x","redirect_uris":["http://a.example/cb"]}`, 400, "loopback"},
		{"RFC 8252 §7.1: private-use schemes are reverse-domain", `{"name":"x","redirect_uris":["myapp:/cb"]}`, 400, "private-use"},
		{"https needs a host", `{"name":"x","redirect_uris":["https:///cb"]}`, 400, "no host"},
		{"post-logout URIs follow the same rules", `{"name":"x","redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["http://a.example/"]}`, 400, "post_logout_redirect_uris"},
		{"a service client by default", `{"name":"Svc","scopes":["read:invoices","openid"]}`, 201, ""},
		{"a web client by default with redirect URIs", `{"name":"Web","redirect_uris":["https://a.example/cb","http://127.0.0.1:8080/cb","com.example.app:/cb"]}`, 201, ""},
		{"a public client has no secret", `{"name":"SPA","public":true,"redirect_uris":["https://a.example/cb"]}`, 201, ""},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			status, v := r.admin("POST", "/oauthgate/clients", tc.body)
			if status != tc.status {
				t.Fatalf("%d %v, want %d", status, v, tc.status)
			}
			if tc.msg != "" {
				if msg, _ := field(v, "error").(string); !strings.Contains(msg, tc.msg) {
					t.Errorf("error %q does not say %q", msg, tc.msg)
				}
				return
			}
			secret, _ := field(v, "client_secret").(string)
			if public := strings.Contains(tc.body, `"public":true`); public != (secret == "") {
				t.Errorf("public %v, secret %q", public, secret)
			}
		})
	}
}

// TestAdminClientLifecycle: create, read, rotate the secret, link and unlink
// businesses, list and revoke grants, delete; the secret is shown once.
func TestAdminClientLifecycle(t *testing.T) {
	r := newRig(t, Config{ClientIDPrefix: "cl_", SecretPrefix: "sk_"})
	status, v := r.admin("POST", "/oauthgate/clients", `{"name":"Svc","scopes":["read:invoices"],"businesses":["b1"]}`)
	id, _ := field(v, "client_id").(string)
	secret, _ := field(v, "client_secret").(string)
	if status != 201 || !strings.HasPrefix(id, "cl_") || !strings.HasPrefix(secret, "sk_") {
		t.Fatalf("create: %d %v", status, v)
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	if resp := r.token(cc, id+":"+secret); resp.Code != 200 {
		t.Fatalf("token with the new client: %d %v", resp.Code, resp.body)
	}
	if status, v := r.admin("GET", "/oauthgate/clients/"+id, ""); status != 200 || field(v, "client_secret") != nil || field(v, "name") != "Svc" {
		t.Fatalf("get: %d %v", status, v)
	}
	if status, v := r.admin("GET", "/oauthgate/clients", ""); status != 200 || len(v.([]any)) != 1 {
		t.Fatalf("list: %d %v", status, v)
	}
	status, v = r.admin("POST", "/oauthgate/clients/"+id+"/secret", "")
	newSecret, _ := field(v, "client_secret").(string)
	if status != 200 || newSecret == "" || newSecret == secret {
		t.Fatalf("rotate: %d %v", status, v)
	}
	if resp := r.token(cc, id+":"+secret); resp.errorCode() != "invalid_client" {
		t.Fatalf("old secret after rotation: %d %v", resp.Code, resp.body)
	}
	if resp := r.token(cc, id+":"+newSecret); resp.Code != 200 {
		t.Fatalf("new secret: %d %v", resp.Code, resp.body)
	}
	if status, v := r.admin("POST", "/oauthgate/clients/"+id+"/businesses", `{"business_id":"b0"}`); status != 200 || len(field(v, "businesses").([]any)) != 2 {
		t.Fatalf("link: %d %v", status, v)
	}
	if status, v := r.admin("POST", "/oauthgate/clients/"+id+"/businesses", `{"business_id":"b/0"}`); status != 400 {
		t.Fatalf("link a bad id: %d %v", status, v)
	}
	if status, v := r.admin("DELETE", "/oauthgate/clients/"+id+"/businesses/b1", ""); status != 200 || len(field(v, "businesses").([]any)) != 1 {
		t.Fatalf("unlink: %d %v", status, v)
	}

	// Grants of a user client: listed, then revoked by id.
	r.exchange(r.code("app", []string{"read:invoices"}, "", true))
	status, v = r.admin("GET", "/oauthgate/grants?client_id=app", "")
	gs, _ := v.([]any)
	if status != 200 || len(gs) != 1 || field(gs[0], "revoked") != false {
		t.Fatalf("grants: %d %v", status, v)
	}
	if status, _ := r.admin("DELETE", "/oauthgate/grants/"+field(gs[0], "id").(string), ""); status != 204 {
		t.Fatalf("revoke grant: %d", status)
	}
	if _, v := r.admin("GET", "/oauthgate/grants?client_id=app", ""); field(v.([]any)[0], "revoked") != true {
		t.Fatalf("grant not revoked: %v", v)
	}

	if status, _ := r.admin("DELETE", "/oauthgate/clients/"+id, ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	if resp := r.token(cc, id+":"+newSecret); resp.errorCode() != "invalid_client" {
		t.Fatalf("deleted client: %d %v", resp.Code, resp.body)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/oauthgate/clients/" + id, ""},
		{"DELETE", "/oauthgate/clients/" + id, ""},
		{"POST", "/oauthgate/clients/" + id + "/secret", ""},
	} {
		if status, _ := r.admin(tc.method, tc.path, tc.body); status != 404 {
			t.Errorf("%s %s after delete: %d, want 404", tc.method, tc.path, status)
		}
	}
	if status, _ := r.admin("GET", "/oauthgate/nothing", ""); status != 404 {
		t.Errorf("unknown endpoint: %d", status)
	}
}

// TestAdminPublicClientHasNoSecretToRotate: rotating a public client's
// secret is refused.
func TestAdminPublicClientHasNoSecretToRotate(t *testing.T) {
	r := newRig(t, Config{})
	_, v := r.admin("POST", "/oauthgate/clients", `{"name":"SPA","public":true,"redirect_uris":["https://a.example/cb"]}`)
	if status, v := r.admin("POST", "/oauthgate/clients/"+field(v, "client_id").(string)+"/secret", ""); status != 400 {
		t.Fatalf("%d %v", status, v)
	}
}

// TestAdminKeys: the key set is listed and rotated.
func TestAdminKeys(t *testing.T) {
	r := newRig(t, Config{})
	status, v := r.admin("POST", "/oauthgate/keys/rotate", "")
	kid, _ := field(v, "kid").(string)
	if status != 200 || kid == "" {
		t.Fatalf("rotate: %d %v", status, v)
	}
	status, v = r.admin("GET", "/oauthgate/keys", "")
	if status != 200 || !strings.Contains(mustJSON(t, v), kid) {
		t.Fatalf("keys: %d %v", status, v)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAdminDirectory: users and businesses of the built-in directory.
func TestAdminDirectory(t *testing.T) {
	r := newRig(t, Config{})
	for _, tc := range []struct {
		rule, body string
		status     int
	}{
		{"an e-mail is required", `{"password":"long-password","businesses":[{"id":"b1"}]}`, 400},
		{"a password of at least the minimum length", `{"email":"a@example.com","password":"x","businesses":[{"id":"b1"}]}`, 400},
		{"at least one business", `{"email":"a@example.com","password":"long-password"}`, 400},
		{"business ids are checked", `{"email":"a@example.com","password":"long-password","businesses":[{"id":"a/b"}]}`, 400},
		{"the current business is one of the user's", `{"email":"a@example.com","password":"long-password","businesses":[{"id":"b1"}],"current_business":"b2"}`, 400},
		{"an e-mail is unique", `{"email":"u@example.com","password":"long-password","businesses":[{"id":"b1"}]}`, 409},
		{"a user is created", `{"email":"A@Example.com","name":"A","password":"long-password","businesses":[{"id":"b3","name":"B Three"},{"id":"b1"}]}`, 201},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r.t = t
			if status, v := r.admin("POST", "/oauthgate/users", tc.body); status != tc.status {
				t.Fatalf("%d %v, want %d", status, v, tc.status)
			}
		})
	}
	r.t = t
	status, v := r.admin("GET", "/oauthgate/users/a@example.com", "")
	if status != 200 || field(v, "email") != "a@example.com" || field(v, "current_business") != "b3" || field(v, "has_password") != true {
		t.Fatalf("get by e-mail: %d %v", status, v)
	}
	id := field(v, "id").(string)
	if status, v := r.admin("GET", "/oauthgate/users/"+id, ""); status != 200 || field(v, "email") != "a@example.com" {
		t.Fatalf("get by id: %d %v", status, v)
	}
	if status, v := r.admin("GET", "/oauthgate/users", ""); status != 200 || len(v.([]any)) != 2 {
		t.Fatalf("list users: %d %v", status, v)
	}
	if status, v := r.admin("GET", "/oauthgate/businesses", ""); status != 200 || len(v.([]any)) != 3 {
		t.Fatalf("list businesses: %d %v", status, v)
	}
	if status, v := r.admin("POST", "/oauthgate/businesses", `{"id":"b3","name":"Renamed"}`); status != 200 && status != 201 {
		t.Fatalf("upsert business: %d %v", status, v)
	}
	if status, _ := r.admin("POST", "/oauthgate/businesses", `{"id":"b/3","name":"x"}`); status != 400 {
		t.Fatalf("bad business id: %d", status)
	}
	if status, _ := r.admin("POST", "/oauthgate/businesses", `{"id":"b4"}`); status != 400 {
		t.Fatalf("business without a name: %d", status)
	}
	if status, _ := r.admin("DELETE", "/oauthgate/users/"+id, ""); status != 204 {
		t.Fatalf("delete user: %d", status)
	}
	if status, _ := r.admin("GET", "/oauthgate/users/"+id, ""); status != 404 {
		t.Fatalf("deleted user: %d", status)
	}
	if status, _ := r.admin("DELETE", "/oauthgate/users/"+id, ""); status != 404 {
		t.Fatalf("delete again: %d", status)
	}
}
