package authserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/oauthgate/oauthgate/tokens"
)

// The browser's sign-in is a cookie holding an internal token signed with
// the token key set: any node can read it, and nothing is stored.
const (
	sessionTyp        = "oauthgate-session+jwt"
	defaultSessionTTL = 12 * time.Hour
	sessionCookie     = "oauthgate_session"
	csrfCookie        = "oauthgate_csrf"
)

// sessionData is what the session token says.
type sessionData struct {
	// SID identifies this sign-in; CSRF tokens of the consent form are
	// bound to it.
	SID      string `json:"sid"`
	Subject  string `json:"sub"`
	AuthTime int64  `json:"auth_time"`
}

// secureCookies is true when the issuer is https: cookies then carry the
// Secure attribute and the __Secure- prefix.
func (s *Server) secureCookies() bool { return strings.HasPrefix(s.cfg.Issuer, "https://") }

func (s *Server) cookieName(base string) string {
	if s.secureCookies() {
		return "__Secure-" + base
	}
	return base
}

// cookie makes one of oauthgate's cookies: HttpOnly, SameSite=Lax (sent on
// the top-level navigation from the client to /authorize, never on a
// cross-site POST), scoped to the endpoint base path.
func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.cookieName(name),
		Value:    value,
		Path:     s.cfg.BasePath,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secureCookies(),
		SameSite: http.SameSiteLaxMode,
	}
}

// startSession signs the user in on this browser.
func (s *Server) startSession(w http.ResponseWriter, userID string, authTime time.Time) error {
	sid, err := tokens.NewSecret("")
	if err != nil {
		return err
	}
	raw, _, err := s.tokens.SignInternal(sessionTyp, s.cfg.SessionTTL, sessionData{SID: sid, Subject: userID, AuthTime: authTime.Unix()})
	if err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(sessionCookie, raw, int(s.cfg.SessionTTL/time.Second)))
	return nil
}

// session returns the browser's valid session, or nil.
func (s *Server) session(r *http.Request) *sessionData {
	c, err := r.Cookie(s.cookieName(sessionCookie))
	if err != nil || c.Value == "" {
		return nil
	}
	var d sessionData
	if err := s.tokens.VerifyInternal(c.Value, sessionTyp, &d); err != nil || d.SID == "" || d.Subject == "" {
		return nil
	}
	return &d
}

// csrfSecret returns the browser's CSRF secret, setting the cookie that
// holds it when the browser has none yet.
func (s *Server) csrfSecret(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(s.cookieName(csrfCookie)); err == nil && len(c.Value) >= 43 {
		return c.Value, nil
	}
	v, err := tokens.NewSecret("")
	if err != nil {
		return "", err
	}
	// As long as a session, so a form left open keeps working.
	c := s.cookie(csrfCookie, v, int(s.cfg.SessionTTL/time.Second))
	http.SetCookie(w, c)
	// A page with several forms (consent and sign-out) asks again while
	// answering the same request: it must get this secret, not a second
	// one whose cookie would replace the first.
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	return v, nil
}

// csrfToken is the form token for purpose and binding: an HMAC keyed with
// the browser's CSRF secret, so a cross-site page can neither read nor
// compute it, and bound to the sign-in it was shown to.
func csrfToken(secret, purpose, binding string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a posted form token in constant time.
func (s *Server) checkCSRF(r *http.Request, purpose, binding, got string) bool {
	c, err := r.Cookie(s.cookieName(csrfCookie))
	if err != nil || len(c.Value) < 43 || got == "" {
		return false
	}
	return hmac.Equal([]byte(csrfToken(c.Value, purpose, binding)), []byte(got))
}
