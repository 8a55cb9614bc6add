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
//
// Caddy builds a new admin endpoint for each configuration it loads, before
// that configuration's apps start, and provisions this router with it: the
// router serves the oauthgate app of that configuration, waiting for it to
// start if a request comes first.
type adminAPI struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.oauthgate",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Provision binds the router to the configuration's oauthgate app, if it
// has one. An app that fails to provision is reported by Caddy when it
// loads the apps, so that error is not repeated here.
func (a *adminAPI) Provision(ctx caddy.Context) error {
	if app, err := ctx.AppIfConfigured("oauthgate"); err == nil {
		a.app = app.(*App)
	}
	return nil
}

// Routes implements caddy.AdminRouter.
func (a *adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: authserver.AdminPrefix, Handler: caddy.AdminHandlerFunc(a.serveAdmin)}}
}

// serveAdmin serves the request with the running app of the router's
// configuration, or, when that configuration never started (Caddy keeps a
// new admin endpoint even when the rest of its configuration fails to
// load), with the app of the configuration that is running.
func (a *adminAPI) serveAdmin(w http.ResponseWriter, r *http.Request) error {
	var rt *running
	if a.app != nil {
		rt = a.app.acquire(r.Context())
	}
	if rt == nil {
		if app, err := caddy.ActiveContext().AppIfConfigured("oauthgate"); err == nil {
			rt = app.(*App).acquire(r.Context())
		}
	}
	if rt == nil {
		return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the oauthgate app is not running: add an `oauthgate` global option")}
	}
	defer rt.release()
	rt.server.AdminHandler().ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ caddy.Provisioner = (*adminAPI)(nil)
)
