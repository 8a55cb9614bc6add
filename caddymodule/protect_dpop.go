package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// requestedPath is the path the client asked for, before an earlier
// handler rewrote it (handle_path, uri strip_prefix, rewrite): the path a
// DPoP proof's htu names (RFC 9449 §4.3: the URI of the request the proof
// was sent with). The rewritten path would refuse every proof behind
// handle_path, and accept one made for the rewritten URL.
func requestedPath(r *http.Request) string {
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.URL != nil {
		return or.URL.Path
	}
	return r.URL.Path
}
