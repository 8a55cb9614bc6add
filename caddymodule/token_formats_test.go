package caddymodule

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestTokenFormatOptions: the token-format options are checked when the
// app provisions, each mistake with a clear message; the guide's own
// settings provision.
func TestTokenFormatOptions(t *testing.T) {
	validate := func(t *testing.T, options string) error {
		t.Helper()
		db := filepath.Join(t.TempDir(), "og.db")
		src := "{\n oauthgate {\n store sqlite " + db + "\n issuer http://localhost\n" + options + "\n }\n}\n:0 {\n oauth_server\n}\n"
		cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
		if err != nil {
			t.Fatalf("adapt: %v", err)
		}
		var cfg caddy.Config
		if err := caddy.StrictUnmarshalJSON(cfgJSON, &cfg); err != nil {
			t.Fatal(err)
		}
		return caddy.Validate(&cfg)
	}
	for _, ok := range []string{
		"refresh_token_prefix yapp_rt_\naccess_token_format opaque\naccess_token_prefix yapp_at_",
		"access_token_format opaque",
		"access_token_format jwt\nrefresh_token_prefix rt-",
	} {
		if err := validate(t, ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, tc := range []struct{ name, options, want string }{
		{"unknown format", "access_token_format reference", `access-token format "reference": want "jwt" or "opaque"`},
		{"access prefix on JWTs", "access_token_prefix yapp_at_", "an access-token prefix needs the opaque access-token format"},
		{"access prefix with a dot", "access_token_format opaque\naccess_token_prefix yapp.at.", "only letters, digits, '_' and '-'"},
		{"refresh prefix with a slash", "refresh_token_prefix yapp/rt", "refresh_token_prefix: token prefix \"yapp/rt\": only letters"},
		{"refresh prefix too long", "refresh_token_prefix " + strings.Repeat("r", 33), "longer than 32 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := validate(t, tc.options); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
