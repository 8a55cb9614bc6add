// Command caddy is Caddy with the standard modules and oauthgate compiled in.
//
// It is the binary users run: `go run ./cmd/caddy run` starts the demo from
// the root Caddyfile. It is the same program `xcaddy build --with
// github.com/oauthgate/oauthgate` generates: Caddy's main, its standard
// modules and the plugin package.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/oauthgate/oauthgate"
)

func main() {
	caddycmd.Main()
}
