package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"

	"github.com/oauthgate/oauthgate/authserver"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI mounts the oauthgate admin API (clients, users, businesses,
// grants, keys) under /oauthgate/ on Caddy's admin endpoint, which is
// where access to it is controlled (localhost by default).
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.oauthgate",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes implements caddy.AdminRouter.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: authserver.AdminPrefix, Handler: caddy.AdminHandlerFunc(serveAdmin)}}
}

// serveAdmin finds the running app at request time, since the admin
// endpoint outlives config reloads.
func serveAdmin(w http.ResponseWriter, r *http.Request) error {
	app, err := caddy.ActiveContext().AppIfConfigured("oauthgate")
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the oauthgate app is not running: add an `oauthgate` global option")}
	}
	a := app.(*App)
	if a.server == nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the oauthgate app is not provisioned")}
	}
	a.server.AdminHandler().ServeHTTP(w, r)
	return nil
}

// Interface guards
var _ caddy.AdminRouter = (*adminAPI)(nil)
