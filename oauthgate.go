// Package oauthgate is the oauthgate Caddy plugin: importing it registers
// every oauthgate module with Caddy, as importing any Caddy plugin does.
//
//	oauthgate                     the app (global option `oauthgate { … }`)
//	http.handlers.oauth_server    the authorization-server endpoints
//	http.handlers.oauth_protect   the gateway guard in front of an API
//	admin.api.oauthgate           the admin API under /oauthgate/
//
// plus the `caddy oauthgate` command and the Caddyfile adapters of the
// global option and both directives. Build Caddy with it like any plugin:
//
//	xcaddy build --with github.com/oauthgate/oauthgate
//
// The code lives in the packages below this one (caddymodule wires Caddy to
// authserver, tokens, tokenstore and policies); this package only gives the
// module path an importable package, so that `--with` works.
package oauthgate

import (
	// caddymodule's init functions register the modules and the command.
	_ "github.com/oauthgate/oauthgate/caddymodule"
)
