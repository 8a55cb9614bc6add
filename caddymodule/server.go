package caddymodule

import (
	"fmt"
	"io"
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
// and /.well-known/jwks.json, and the RFC 9728 metadata of every resource an
// oauth_protect of the configuration guards
// (/.well-known/oauth-protected-resource[/<path>]). Other requests go to
// the next handler.
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

// ServeHTTP implements caddyhttp.MiddlewareHandler. Requests for other
// paths go on without touching the app's running state; the others are
// answered 503 temporarily_unavailable (RFC 6749 §4.1.2.1) if the app is
// not running.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !s.app.handles(r.URL.Path) {
		return next.ServeHTTP(w, r)
	}
	// RFC 9728 metadata of the configuration's protected resources: static,
	// so it needs no running state.
	if isPRMPath(r.URL.Path) {
		if res := s.app.resources.lookup(r.Host, r.URL.Path); res != nil {
			return serveResourceMetadata(w, r, res)
		}
	}
	rt := s.app.acquire(r.Context())
	if rt == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, err := io.WriteString(w, `{"error":"temporarily_unavailable","error_description":"the authorization server is not running"}`)
		return err
	}
	handled := rt.server.ServeHTTP(w, r)
	rt.release()
	if handled {
		return nil
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Server)(nil)
	_ caddyhttp.MiddlewareHandler = (*Server)(nil)
)
