package authserver

import "net/http"

// serveBrowser serves the browser-facing endpoints (authorize, sign-in,
// consent, userinfo). The authorization-code flow is not built yet: nothing
// here is recognised, so such requests fall through to the next handler.
func (s *Server) serveBrowser(w http.ResponseWriter, r *http.Request, path string) bool {
	return false
}

func (s *Server) adminDirectoryRoutes(mux *http.ServeMux) {}
