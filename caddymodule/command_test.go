package caddymodule

import (
	"net/http"
	"testing"
)

// TestGrantRevokeRequest: `caddy oauthgate grant revoke` revokes one grant
// by id or every grant of --user (of --client); anything else is refused
// before any request is sent.
func TestGrantRevokeRequest(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		user, client string
		path         string // "" for a refusal
	}{
		{[]string{"g 1"}, "", "", "grants/g%201"},
		{nil, "usr_1", "", "grants?user_id=usr_1"},
		{nil, "usr_1", "demo-app", "grants?client_id=demo-app&user_id=usr_1"},
		{nil, "", "", ""},
		{nil, "", "demo-app", ""},
		{[]string{"g1"}, "usr_1", "", ""},
		{[]string{"g1"}, "", "demo-app", ""},
	} {
		method, path, err := grantRevokeRequest(tc.args, tc.user, tc.client)
		switch {
		case tc.path == "" && err == nil:
			t.Errorf("%v --user %q --client %q: %s %s, want a refusal", tc.args, tc.user, tc.client, method, path)
		case tc.path != "" && (err != nil || method != http.MethodDelete || path != tc.path):
			t.Errorf("%v --user %q --client %q: %s %s %v, want DELETE %s", tc.args, tc.user, tc.client, method, path, err, tc.path)
		}
	}
}
