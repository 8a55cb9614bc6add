package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Server{})
}

// Server serves the authorization-server endpoints of the oauthgate app on
// a site: under the app's base path (default /oauth) authorize, token,
// revoke, introspect, userinfo and jwks, the sign-in and consent pages, plus
// /.well-known/openid-configuration, /.well-known/oauth-authorization-server
// and /.well-known/jwks.json. Other requests go to the next handler.
type Server struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (Server) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.oauth_server",
		New: func() caddy.Module { return new(Server) },
	}
}

// Provision binds the handler to the oauthgate app.
func (s *Server) Provision(ctx caddy.Context) error {
	app, err := ctx.App("oauthgate")
	if err != nil {
		return fmt.Errorf("loading oauthgate app: %w", err)
	}
	s.app = app.(*App)
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if s.app.server.ServeHTTP(w, r) {
		return nil
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Server)(nil)
	_ caddyhttp.MiddlewareHandler = (*Server)(nil)
)
