package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestAdaptIdentityErrors: one row per mistake in the identity and user
// options (the accepted grammar is in testdata/adapt/identity.caddyfile).
func TestAdaptIdentityErrors(t *testing.T) {
	for _, tc := range []struct{ name, global, want string }{
		{"unknown identity source", "identity ldap", `identity "ldap": want builtin or delegated`},
		{"delegated without urls", "identity delegated {\n return_param next\n}", "session_url and sign_in_url are required"},
		{"options on builtin", "identity builtin {\n session_url x\n}", "identity builtin takes no options"},
		{"unknown delegated option", "identity delegated {\n session_url a\n sign_in_url b\n cookie c\n}", `unrecognized identity option "cookie"`},
		{"bad timeout", "identity delegated {\n session_url a\n sign_in_url b\n timeout soon\n}", "timeout"},
		{"user without password", "user a@example.com {\n business b1\n}", "exactly one of password, password_hash"},
		{"user with both", "user a@example.com {\n password p\n password_hash h\n business b1\n}", "exactly one of password, password_hash"},
		{"user without business", "user a@example.com {\n password long-enough\n}", "at least one `business <id> [<name>]`"},
		{"business name unquoted", "user a@example.com {\n password long-enough\n business b1 Acme Ltd\n}", "quote a name with spaces"},
		{"unknown user option", "user a@example.com {\n password long-enough\n business b1\n role admin\n}", `unrecognized user option "role"`},
		{"bad session_ttl", "session_ttl never", "session_ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "{\noauthgate {\n" + tc.global + "\n}\n}\n:8080 {\nrespond ok\n}\n"
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
