package caddymodule

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestProvisionErrors: configurations that adapt but must not start, each
// with a message that names the mistake. caddy.Validate provisions every
// module for real (a SQLite store in a temp dir) and cleans up.
func TestProvisionErrors(t *testing.T) {
	cases := []struct {
		name, options, want string
	}{
		{"no issuer", "", "issuer is required"},
		{"issuer not a URL", "issuer localhost", "must be an http(s) URL"},
		{"static client with a fragment redirect", "issuer http://localhost\nclient c {\n secret s\n grant_types authorization_code\n redirect_uris https://app.example/cb#x\n}", "must not have a fragment"},
		{"static client http redirect off loopback", "issuer http://localhost\nclient c {\n secret s\n grant_types authorization_code\n redirect_uris http://app.example/cb\n}", "http is allowed only for loopback"},
		{"static public client with a secret", "issuer http://localhost\nclient c {\n secret s\n public\n}", "a public one must not have one"},
		{"static confidential client without a secret", "issuer http://localhost\nclient c {\n name x\n}", "a confidential client needs a secret"},
		{"static client scope outside catalogue", "issuer http://localhost\nscope read:a A\nclient c {\n secret s\n scopes read:b\n}", `scope "read:b" is not in the scope catalogue`},
		// Allowed values are Provision's to check; the adapter passes them on.
		{"bad signing alg", "issuer http://localhost\nsigning_alg HS256", `signing algorithm "HS256" (want ES256, EdDSA or RS256)`},
		{"bad refresh policy", "issuer http://localhost\nrefresh_tokens sometimes", `refresh_tokens: "sometimes" is not one of always, offline_access`},
		{"static client grant type unknown", "issuer http://localhost\nclient c {\n secret s\n grant_types password\n}", `client "c": grant type "password" is not supported`},
		{"static public client with client_credentials", "issuer http://localhost\nclient c {\n public\n}", `client "c": a public client cannot use client_credentials`},
		{"static client scope not a scope token", "issuer http://localhost\nclient c {\n secret s\n scopes \"a\\\\b\"\n}", "is not a valid scope token"},
		{"static client bad business id", "issuer http://localhost\nclient c {\n secret s\n businesses a/b\n}", `business id "a/b"`},
		{"static code client without redirect URI", "issuer http://localhost\nclient c {\n secret s\n grant_types authorization_code\n}", "authorization_code needs at least one redirect_uri"},
		{"static client twice", "issuer http://localhost\nclient c {\n secret s\n}\nclient c {\n secret t\n}", "declared twice"},
		{"brand accent a colour name", "issuer http://localhost\nbrand Y {\n accent red\n}", `brand accent "red": want a CSS hex colour`},
		{"brand accent CSS injection", "issuer http://localhost\nbrand Y {\n accent \"#000;background:url(x)\"\n}", "want a CSS hex colour"},
		{"brand accent eight digits", "issuer http://localhost\nbrand Y {\n accent \"#2563ebff\"\n}", "want a CSS hex colour"},
		{"brand logo over http", "issuer http://localhost\nbrand Y {\n logo http://cdn.example/logo.svg\n}", "must be an https URL or an absolute path"},
		{"brand logo javascript", "issuer http://localhost\nbrand Y {\n logo javascript:alert(1)\n}", "must be an https URL or an absolute path"},
		{"brand logo relative", "issuer http://localhost\nbrand Y {\n logo logo.svg\n}", "must be an https URL or an absolute path"},
		{"brand logo protocol-relative", "issuer http://localhost\nbrand Y {\n logo //evil.example/x.svg\n}", "must be an https URL or an absolute path"},
		{"brand logo with a quote", "issuer http://localhost\nbrand Y {\n logo `/x.svg\"onerror=\"y`\n}", "plain URL"},
		{"brand mark too long", "issuer http://localhost\nbrand Y {\n mark ABCD\n}", "brand mark"},
		{"static client post-logout URI over http", "issuer http://localhost\nclient c {\n secret s\n grant_types authorization_code\n redirect_uris https://app.example/cb\n post_logout_redirect_uris http://app.example/bye\n}", "post_logout_redirect_uris: redirect_uri \"http://app.example/bye\": http is allowed only for loopback"},
		{"bad base path", "issuer http://localhost\nbase_path /a?b", "must be a plain URL path"},
		{"dpop symmetric alg", "issuer http://localhost\ndpop {\n algs ES256 HS256\n}", `dpop algs: "HS256" is not an asymmetric JWS algorithm`},
		{"dpop alg none", "issuer http://localhost\ndpop {\n algs none\n}", `dpop algs: "none" is not an asymmetric JWS algorithm`},
		{"static client with a secret and its hash", "issuer http://localhost\nclient c {\n secret s\n secret_hash " + demoSecretHash + "\n}", "a secret or a secret_hash, not both"},
		{"static public client with a secret hash", "issuer http://localhost\nclient c {\n secret_hash " + demoSecretHash + "\n public\n}", "a public one must not have one"},
		{"static client hash not sha256", "issuer http://localhost\nclient c {\n secret_hash $2a$12$abcdefghijklmnopqrstuv\n}", `secret_hash: want "sha256:" and 64 hex digits`},
		{"static client hash too short", "issuer http://localhost\nclient c {\n secret_hash " + demoSecretHash[:40] + "\n}", `secret_hash: want "sha256:" and 64 hex digits`},
		{"static client secret in secret_hash", "issuer http://localhost\nclient c {\n secret_hash my-clear-secret\n}", `secret_hash: want "sha256:"`},
		{"static client hash placeholder unset", "issuer http://localhost\nclient c {\n secret_hash {env.OAUTHGATE_TEST_UNSET_HASH}\n}", "a confidential client needs a secret or secret_hash"},
		{"throttle sub-second lock", "issuer http://localhost\nthrottle {\n lock 10ms\n}", "must be at least 1s"},
		{"throttle longest lock shorter than first", "issuer http://localhost\nthrottle {\n lock 10m 1m\n}", "shorter than the first"},
		{"throttle forgets during a lock", "issuer http://localhost\nthrottle {\n lock 1m 2h\n forget 1h\n}", "before the longest lock"},
		{"throttle negative count", "issuer http://localhost\nthrottle {\n accounts -5\n}", "account_failures -5"},
		{"throttle negative duration", "issuer http://localhost\nthrottle {\n forget -1h\n}", "durations must be positive"},
		{"static client id_token alg none", "issuer http://localhost\nclient c {\n secret s\n id_token_signed_response_alg none\n}", `id_token_signed_response_alg "none": want one of ES256, RS256`},
		{"static client id_token alg HS256", "issuer http://localhost\nclient c {\n secret s\n id_token_signed_response_alg HS256\n}", `id_token_signed_response_alg "HS256": want one of ES256, RS256`},
		{"static client id_token alg not the signing alg", "issuer http://localhost\nclient c {\n secret s\n id_token_signed_response_alg EdDSA\n}", `id_token_signed_response_alg "EdDSA": want one of ES256, RS256`},
		{"registration token without a token", "issuer http://localhost\nregistration token", "mode token needs an initial_access_token"},
		{"registration open with a token", "issuer http://localhost\nregistration open {\n initial_access_token_hash " + demoSecretHash + "\n}", "mode open takes no initial access token"},
		{"registration short token", "issuer http://localhost\nregistration token {\n initial_access_token short\n}", "at least 32 characters"},
		{"registration bad token hash", "issuer http://localhost\nregistration token {\n initial_access_token_hash abc\n}", `initial_access_token_hash: want "sha256:"`},
		{"registration bad client type", "issuer http://localhost\nregistration open {\n client_types native\n}", `client type "native"`},
		{"registration bad grant type", "issuer http://localhost\nregistration open {\n grant_types password\n}", `grant type "password" is not supported`},
		{"registration scope outside third_party_scopes", "issuer http://localhost\nscope read:a A\nscope admin:a B\nthird_party_scopes read:a\nregistration open {\n scopes admin:a\n}", `scope "admin:a" is not among the third-party scopes`},
		{"key rotation 1ns", "issuer http://localhost\nkey_rotation 1ns", "key_rotation: key rotation period 1ns is shorter than the minimum 1h0m0s"},
		{"key rotation negative", "issuer http://localhost\nkey_rotation -24h", "key_rotation: key rotation period -24h0m0s is negative"},
		{"key rotation under the access TTL", "issuer http://localhost\naccess_ttl 24h\nkey_rotation 12h", "shorter than the access-token lifetime 24h0m0s"},
	}
	validate := func(t *testing.T, options string) error {
		t.Helper()
		db := filepath.Join(t.TempDir(), "og.db")
		src := "{\n oauthgate {\n store sqlite " + db + "\n" + options + "\n }\n}\n:0 {\n oauth_server\n}\n"
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
	// The control: a correct configuration provisions.
	if err := validate(t, "issuer http://localhost\nbrand Y {\n logo /logo.svg\n mark Y\n accent \"#07f\"\n}\nscope read:a A\nclient c {\n secret s\n scopes read:a\n grant_types authorization_code client_credentials\n redirect_uris https://app.example/cb\n}"); err != nil {
		t.Fatalf("valid configuration: %v", err)
	}
	// So does a static client given by its secret's hash.
	if err := validate(t, "issuer http://localhost\nclient c {\n secret_hash "+demoSecretHash+"\n}"); err != nil {
		t.Fatalf("client with secret_hash: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(t, tc.options)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "my-clear-secret") {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
}

// TestProtectProvisionErrors: oauth_protect values the adapter passes on
// but Provision refuses.
func TestProtectProvisionErrors(t *testing.T) {
	validate := func(t *testing.T, options string) error {
		t.Helper()
		db := filepath.Join(t.TempDir(), "og.db")
		src := "{\n oauthgate {\n issuer http://localhost\n store sqlite " + db + "\n }\n}\n:0 {\n oauth_protect {\n" + options + "\n GET /x\n }\n}\n"
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
	for _, ok := range []string{"", "rejections json", "rejections handle_errors", "method_override delete", "method_override check",
		"POST /c w {\n creates json data.id\n user_tokens pass\n }", "POST /c w {\n creates location\n }"} {
		if err := validate(t, ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for options, want := range map[string]string{
		"rejections html":      `rejections: "html" is not one of json, handle_errors`,
		"method_override keep": `method_override: "keep" is not one of delete, check`,
		`realm "a\"b"`:         "must not contain quotes",
		"POST /c w {\n creates json\n user_tokens maybe\n }": `route /c: user_tokens "maybe" is not one of refuse, pass`,
		"POST /c w {\n creates json a..b\n }":                `route /c: creates member "a..b" has an empty part`,
	} {
		if err := validate(t, options); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to contain %q", options, err, want)
		}
	}
}

// demoSecretHash is `caddy oauthgate hash-secret` of the demo's
// "demo-app-secret".
const demoSecretHash = "sha256:81ba29a3c94c9cf43ff329391ab198559a0418b4a17436642403a88478987654"
