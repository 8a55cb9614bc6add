package authserver

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthgate/oauthgate/internal/oautherr"
)

// initBrowser prepares what the browser-facing endpoints need: the pages
// and the identity source.
func (s *Server) initBrowser() error {
	if s.cfg.Brand == "" {
		s.cfg.Brand = "oauthgate"
	}
	if s.cfg.SessionTTL <= 0 {
		s.cfg.SessionTTL = defaultSessionTTL
	}
	p, err := loadPages()
	if err != nil {
		return err
	}
	s.pages = p
	if err := s.initBrand(); err != nil {
		return err
	}
	if s.cfg.Delegated != nil {
		d, err := newDelegatedIdentity(s, *s.cfg.Delegated)
		if err != nil {
			return err
		}
		s.identity = d
	} else {
		s.identity = builtinIdentity{s}
	}
	return nil
}

// serveBrowser serves the browser-facing endpoints: authorize, the sign-in
// and consent pages with their stylesheet, and userinfo. It reports whether
// path was one of them.
func (s *Server) serveBrowser(w http.ResponseWriter, r *http.Request, path string) bool {
	switch {
	case path == s.paths.authorize:
		s.serveAuthorize(w, r)
	case path == s.paths.consent:
		s.serveConsent(w, r)
	case path == s.paths.signIn:
		if _, builtin := s.identity.(builtinIdentity); !builtin {
			// The platform signs its users in; oauthgate has no page.
			return false
		}
		s.serveSignIn(w, r)
	case path == s.paths.signOut:
		if _, builtin := s.identity.(builtinIdentity); !builtin {
			return false
		}
		s.serveSignOut(w, r)
	case path == s.paths.account:
		s.serveAccount(w, r)
	case path == s.paths.userinfo:
		s.serveUserinfo(w, r)
	case path == s.paths.developer || strings.HasPrefix(path, s.paths.developer+"/"):
		return s.serveDeveloper(w, r, strings.TrimPrefix(path, s.paths.developer))
	case strings.HasPrefix(path, s.paths.assets):
		s.serveAsset(w, r, strings.TrimPrefix(path, s.paths.assets))
	default:
		return false
	}
	return true
}

// pageHeaders are sent with every page and every redirect of the browser
// flow: nothing is cached (a redirect carries a code), nothing may frame the
// pages (clickjacking the Allow button), no referrer leaks the request, and
// the pages load nothing but their own stylesheet.
//
// There is deliberately no form-action directive: browsers apply it to the
// redirect that follows a form post, which here leads to the client's
// redirect URI on another origin.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}

// seeOther answers 303 to location, as the YionStack guide documents for
// /authorize; 303 also turns the consent form's POST into a GET.
func seeOther(w http.ResponseWriter, location string) {
	pageHeaders(w)
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

// redirectResponse sends an authorization response to the client's
// redirect URI (validated before): params plus iss (RFC 9207) and the
// client's state, appended to whatever query the URI already has
// (RFC 6749 §3.1.2).
func (s *Server) redirectResponse(w http.ResponseWriter, redirectURI, state string, params url.Values) {
	if state != "" {
		params.Set("state", state)
	}
	params.Set("iss", s.cfg.Issuer)
	loc := redirectURI
	switch {
	case !strings.Contains(loc, "?"):
		loc += "?"
	case !strings.HasSuffix(loc, "?") && !strings.HasSuffix(loc, "&"):
		loc += "&"
	}
	seeOther(w, loc+params.Encode())
}

// redirectError sends an RFC 6749 §4.1.2.1 error to the client.
func (s *Server) redirectError(w http.ResponseWriter, req *authzRequest, e *Error) {
	s.observeAuthorization(outcomeFor(e.Code))
	v := url.Values{"error": {e.Code}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	s.redirectResponse(w, req.redirectURI, req.state, v)
}

// pageError is a failure the browser is told about on a page, because there
// is nowhere trustworthy to redirect it (RFC 6749 §4.1.2.1), or because the
// request came from oauthgate's own forms.
type pageError struct {
	Status  int
	Title   string
	Message string
	// Code is the RFC 6749 error code shown small, for developers.
	Code string
	// Back, when set, is a link back to the page the form came from.
	Back *navLink
}

func (s *Server) renderError(w http.ResponseWriter, e *pageError) {
	s.observeAuthorization(outcomeErrorPage)
	s.render(w, e.Status, "error", pageData{Title: e.Title, Error: e})
}

// serveAsset serves the pages' stylesheet.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	body, ok := s.pages.assets[name]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

func methodNotAllowed(s *Server, w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	s.renderError(w, &pageError{Status: http.StatusMethodNotAllowed, Title: "Method not allowed",
		Message: "This page cannot be used that way.", Code: oautherr.InvalidRequest.Code})
}
