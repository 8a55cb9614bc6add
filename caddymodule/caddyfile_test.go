package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// TestAdapt checks each testdata/adapt/NAME.caddyfile adapts to exactly
// NAME.json: the Caddyfile grammar is part of the contract users see.
func TestAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no adapt fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".caddyfile") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			caddytest.AssertAdapt(t, string(in), "caddyfile", strings.TrimSpace(string(want)))
		})
	}
}

// TestAdaptErrors: one row per Caddyfile mistake, each with a clear message.
func TestAdaptErrors(t *testing.T) {
	cases := []struct {
		name, global, site, want string
	}{
		{"unknown global option", "oauthgate {\n bogus 1\n}", "respond ok", `unrecognized oauthgate option "bogus"`},
		{"argument on option line", "oauthgate x", "respond ok", "wrong argument count"},
		{"bad duration", "oauthgate {\n access_ttl soon\n}", "respond ok", "access_ttl"},
		{"zero ttl", "oauthgate {\n code_ttl 0s\n}", "respond ok", "code_ttl must be positive"},
		{"bad store driver", "oauthgate {\n store mysql x\n}", "respond ok", `store "mysql"`},
		{"postgres without dsn", "oauthgate {\n store postgres\n}", "respond ok", "connection string is required"},
		{"bad max_conns", "oauthgate {\n store postgres dsn {\n max_conns zero\n }\n}", "respond ok", "max_conns"},
		{"bad cache size", "oauthgate {\n cache_size lots\n}", "respond ok", "cache_size"},
		{"unknown client option", "oauthgate {\n client c {\n colour blue\n }\n}", "respond ok", `unrecognized client option "colour"`},
		{"scope description unquoted", "oauthgate {\n scope read:x View all the x\n}", "respond ok", "quote the description"},
		{"brand without a name", "oauthgate {\n brand\n}", "respond ok", "wrong argument count"},
		{"brand name unquoted", "oauthgate {\n brand Yoco Sandbox\n}", "respond ok", "quote the name"},
		{"unknown brand option", "oauthgate {\n brand Y {\n colour red\n }\n}", "respond ok", `unrecognized brand option "colour"`},
		{"brand accent unquoted", "oauthgate {\n brand Y {\n accent #2563eb\n }\n}", "respond ok", `quote it, as in accent "#0a7cff"`},
		{"brand logo twice", "oauthgate {\n brand Y {\n logo /a.svg /b.svg\n }\n}", "respond ok", "wrong argument count"},
		{"dpop unknown option", "oauthgate {\n dpop {\n ttl 1m\n }\n}", "respond ok", `unrecognized dpop option "ttl"`},
		{"dpop bad max_age", "oauthgate {\n dpop {\n max_age soon\n }\n}", "respond ok", `dpop max_age "soon"`},
		{"dpop bad replay_entries", "oauthgate {\n dpop {\n replay_entries -1\n }\n}", "respond ok", `dpop replay_entries "-1"`},
		{"dpop algs empty", "oauthgate {\n dpop {\n algs\n }\n}", "respond ok", "wrong argument count"},
		{"throttle with a word", "oauthgate {\n throttle on\n}", "respond ok", "want `throttle off` or a block"},
		{"throttle unknown option", "oauthgate {\n throttle {\n captcha yes\n }\n}", "respond ok", `unrecognized throttle option "captcha"`},
		{"throttle count not a number", "oauthgate {\n throttle {\n accounts many\n }\n}", "respond ok", `throttle accounts "many"`},
		{"throttle bad lock", "oauthgate {\n throttle {\n lock soon\n }\n}", "respond ok", "throttle lock"},
		{"throttle forget with two", "oauthgate {\n throttle {\n forget 1h 2h\n }\n}", "respond ok", "wrong argument count"},
		{"developer_portal with a word", "oauthgate {\n developer_portal on\n}", "respond ok", "want `developer_portal off` or a block"},
		{"developer_portal unknown option", "oauthgate {\n developer_portal {\n colour red\n }\n}", "respond ok", `unrecognized developer_portal option "colour"`},
		{"developer_portal register twice", "oauthgate {\n developer_portal {\n register anyone business_admins\n }\n}", "respond ok", "wrong argument count"},
		{"registration without a mode", "oauthgate {\n registration\n}", "respond ok", "want off, open or token"},
		{"registration bad mode", "oauthgate {\n registration maybe\n}", "respond ok", `registration "maybe"`},
		{"registration unknown option", "oauthgate {\n registration open {\n captcha yes\n }\n}", "respond ok", `unrecognized registration option "captcha"`},
		{"registration rate not a number", "oauthgate {\n registration open {\n rate_limit lots\n }\n}", "respond ok", `registration rate_limit "lots"`},
		{"registration rate bad window", "oauthgate {\n registration open {\n rate_limit 5 soon\n }\n}", "respond ok", "registration rate_limit window"},
		{"registration token twice on a line", "oauthgate {\n registration token {\n initial_access_token a b\n }\n}", "respond ok", "wrong argument count"},
		{"third_party_scopes empty", "oauthgate {\n third_party_scopes\n}", "respond ok", "wrong argument count"},
		{"oauth_server with args", "", "oauth_server foo", "takes no arguments"},
		{"oauth_protect without routes", "", "oauth_protect {\n tenant off\n}", "needs at least one route"},
		{"oauth_protect with args", "", "oauth_protect GET", "takes a block"},
		{"route without path", "", "oauth_protect {\n GET POST\n}", "a path is required"},
		{"route path without slash", "", "oauth_protect {\n GET api/x read\n}", "neither an upper-case HTTP method nor a path"},
		{"public with scopes", "", "oauth_protect {\n GET /x public read:x\n}", "public routes take no scopes"},
		{"resource without a URI", "", "oauth_protect {\n resource\n GET /x\n}", "wrong argument count"},
		{"resource twice on a line", "", "oauth_protect {\n resource https://a.test https://b.test\n GET /x\n}", "wrong argument count"},
		{"lower-case method", "", "oauth_protect {\n get /x read:x\n}", `unrecognized oauth_protect option "get"`},
		{"bad tenant", "", "oauth_protect {\n tenant sometimes\n GET /x\n}", "tenant: want"},
		{"bad identity field", "", "oauth_protect {\n identity password X-P\n GET /x\n}", `identity field "password"`},
		{"route block without creates", "", "oauth_protect {\n POST /c w {\n user_tokens pass\n }\n}", "must say `creates json"},
		{"creates what", "", "oauth_protect {\n POST /c w {\n creates header X-Id\n }\n}", "want `creates json [<member>]` or `creates location`"},
		{"creates location member", "", "oauth_protect {\n POST /c w {\n creates location id\n }\n}", "want `creates json"},
		{"unknown route option", "", "oauth_protect {\n POST /c w {\n links yes\n }\n}", `unrecognized route option "links"`},
		{"public route creates", "", "oauth_protect {\n POST /c public {\n creates json\n }\n}", "a public route cannot create"},
		{"user_tokens twice", "", "oauth_protect {\n POST /c w {\n creates json\n user_tokens refuse pass\n }\n}", "wrong argument count"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "{\n" + tc.global + "\n}\n:8080 {\n" + tc.site + "\n}\n"
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestAdaptKeepsSecretsOut: a Caddyfile that gives a client's secret and a
// user's password as hashes, or as runtime placeholders, adapts to JSON
// without them, even with the placeholders' variables set: the JSON is what
// GET /config/ and Caddy's autosave show.
func TestAdaptKeepsSecretsOut(t *testing.T) {
	t.Setenv("ENV_APP_SECRET", "env-app-secret-in-the-environment")
	t.Setenv("BOB_PASSWORD", "bob-password-in-the-environment")
	in, err := os.ReadFile("testdata/adapt/secrets.caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"demo-app-secret", "demo-password", "env-app-secret-in-the-environment", "bob-password-in-the-environment"} {
		if strings.Contains(string(out), clear) {
			t.Errorf("the adapted JSON holds %q:\n%s", clear, out)
		}
	}
	for _, kept := range []string{`"secret_hash":"sha256:`, `"password_hash":"$2a$12$`, `"secret":"{env.ENV_APP_SECRET}"`, `"password":"{env.BOB_PASSWORD}"`} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("the adapted JSON lacks %s:\n%s", kept, out)
		}
	}
}
