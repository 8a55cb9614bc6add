package authserver

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// authzRequest is a validated authorization request (RFC 6749 §4.1.1,
// RFC 7636, OIDC Core §3.1.2.1).
type authzRequest struct {
	client *tokenstore.Client
	// redirectURI is where responses go; redirectSent records whether the
	// client named it, in which case the token request must repeat it.
	redirectURI  string
	redirectSent bool
	scopes       []string
	// resources are the RFC 8707 resources requested (resource.go).
	resources    []string
	state, nonce string
	// challenge is the S256 PKCE code challenge, or empty.
	challenge string
	prompt    []string
	// maxAge is the max_age parameter in seconds, or -1.
	maxAge    int
	loginHint string
	// params are the request's parameters as received.
	params url.Values
}

func (r *authzRequest) hasPrompt(p string) bool { return slices.Contains(r.prompt, p) }

// Length limits keep every URL that carries a request (the sign-in return
// address, the consent handle) well within what browsers and servers take.
const (
	maxStateLen = 2048
	maxNonceLen = 1024
)

// serveAuthorize is the authorization endpoint: GET, or POST with a form
// (OIDC Core §3.1.2.1).
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	var q url.Values
	switch r.Method {
	case http.MethodGet:
		q = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			s.renderError(w, &pageError{Status: http.StatusBadRequest, Title: "Invalid request",
				Message: "The authorization request could not be read.", Code: oautherr.InvalidRequest.Code})
			return
		}
		q = r.PostForm
	default:
		methodNotAllowed(s, w, "GET, POST")
		return
	}
	req, perr, oerr := s.parseAuthorize(r.Context(), q)
	switch {
	case perr != nil:
		s.renderError(w, perr)
	case oerr != nil:
		s.redirectErrorUntrusted(w, r, req, oerr)
	default:
		s.authorize(w, r, req)
	}
}

// parseAuthorize validates an authorization request. Until the client and
// its redirect URI are known good, failures are page errors: the browser
// must not be sent anywhere (RFC 6749 §4.1.2.1). After that they are OAuth
// errors for the redirect URI, and req is set.
func (s *Server) parseAuthorize(ctx context.Context, q url.Values) (*authzRequest, *pageError, *Error) {
	badRequest := func(msg string) *pageError {
		return &pageError{Status: http.StatusBadRequest, Title: "This link is not valid", Message: msg, Code: oautherr.InvalidRequest.Code}
	}
	if len(q["client_id"]) != 1 || q.Get("client_id") == "" {
		return nil, badRequest("The application did not identify itself (the client_id parameter is missing or repeated)."), nil
	}
	c, err := s.tokens.Client(ctx, q.Get("client_id"))
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, &pageError{Status: http.StatusBadRequest, Title: "Unknown application",
			Message: "The application that sent you here is not registered. Contact its developer.", Code: oautherr.InvalidClient.Code}, nil
	case err != nil:
		return nil, s.unavailablePage(err), nil
	}
	req := &authzRequest{client: c, params: q, maxAge: -1}
	switch uris := q["redirect_uri"]; {
	case len(uris) > 1:
		return nil, badRequest("The redirect_uri parameter is repeated."), nil
	case len(uris) == 0 || uris[0] == "":
		if len(c.RedirectURIs) != 1 {
			return nil, badRequest("The application must say where to return (redirect_uri): it has several registered."), nil
		}
		req.redirectURI = c.RedirectURIs[0]
	case !slices.Contains(c.RedirectURIs, uris[0]):
		return nil, &pageError{Status: http.StatusBadRequest, Title: "Unregistered redirect address",
			Message: "The application asked to return you to an address it has not registered, so you were not sent there.",
			Code:    oautherr.InvalidRequest.Code}, nil
	default:
		req.redirectURI, req.redirectSent = uris[0], true
	}
	// From here on, errors go back to the client with its state.
	if st := q["state"]; len(st) > 0 && len(st[0]) <= maxStateLen {
		req.state = st[0]
	}
	return req, nil, s.validateAuthorize(req, q)
}

// validateAuthorize checks everything but the client and redirect URI.
func (s *Server) validateAuthorize(req *authzRequest, q url.Values) *Error {
	c := req.client
	for k, v := range q {
		if len(v) > 1 && k != resourceKey {
			return errInvalidRequest("parameter " + quoteParam(k) + " is repeated")
		}
	}
	if len(q.Get("state")) > maxStateLen {
		return errInvalidRequest("state is longer than " + strconv.Itoa(maxStateLen) + " characters")
	}
	if q.Has("request") {
		return oautherr.RequestNotSupported
	}
	if q.Has("request_uri") {
		return oautherr.RequestURINotSupported
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return errInvalidRequest("response_type is required")
	default:
		return oautherr.UnsupportedResponseType
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return errInvalidRequest("only response_mode=query is supported")
	}
	if !slices.Contains(c.GrantTypes, "authorization_code") {
		return errUnauthorizedClient("the client is not registered for the authorization code grant")
	}

	if strings.TrimSpace(q.Get("scope")) == "" {
		// No scope (as in the Yuvo guide's example): what the client is
		// registered for.
		req.scopes = slices.Clone(c.Scopes)
		if len(req.scopes) == 0 {
			return errInvalidScope("no scope was requested and the client has none registered")
		}
	} else {
		scopes, ok := parseScope(q.Get("scope"))
		if !ok {
			return errInvalidScope("malformed scope")
		}
		for _, sc := range scopes {
			if !slices.Contains(c.Scopes, sc) {
				return errInvalidScope("scope " + quoteParam(sc) + " is not allowed for this client")
			}
		}
		req.scopes = scopes
	}

	var e *Error
	if req.resources, e = s.parseResources(q[resourceKey]); e != nil {
		return e
	}

	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return errInvalidRequest("code_challenge_method sent without code_challenge")
	case challenge == "" && c.Public:
		return errInvalidRequest("PKCE is required for public clients: send code_challenge with code_challenge_method=S256")
	case challenge == "":
	case method != "S256":
		// RFC 7636 makes an absent method mean plain, which offers no
		// protection against a stolen code.
		return errInvalidRequest("code_challenge_method must be S256 (plain is not supported)")
	case !validS256Challenge(challenge):
		return errInvalidRequest("code_challenge must be 43 base64url characters (the S256 of the verifier)")
	default:
		req.challenge = challenge
	}

	if p := q.Get("prompt"); p != "" {
		for _, v := range strings.Fields(p) {
			switch v {
			case "none", "login", "consent":
			default:
				return errInvalidRequest("prompt value " + quoteParam(v) + " is not supported")
			}
			if !slices.Contains(req.prompt, v) {
				req.prompt = append(req.prompt, v)
			}
		}
		if req.hasPrompt("none") && len(req.prompt) > 1 {
			return errInvalidRequest("prompt=none cannot be combined with other values")
		}
	}
	if ma := q.Get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 {
			return errInvalidRequest("max_age must be a non-negative number of seconds")
		}
		req.maxAge = n
	}
	req.nonce = q.Get("nonce")
	if len(req.nonce) > maxNonceLen {
		return errInvalidRequest("nonce is longer than " + strconv.Itoa(maxNonceLen) + " characters")
	}
	if h := q.Get("login_hint"); len(h) <= 254 {
		req.loginHint = h
	}
	return nil
}

// validS256Challenge: BASE64URL(SHA256(verifier)) is 43 characters.
func validS256Challenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// authorize goes on with a valid request: sign-in, then consent, then the
// code, each skipped when it is not needed.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, req *authzRequest) {
	acct, err := s.identity.signedIn(r)
	if err != nil {
		s.redirectErrorUntrusted(w, r, req, s.identityError(err))
		return
	}
	force := req.hasPrompt("login") ||
		(acct != nil && req.maxAge >= 0 && (acct.AuthTime.IsZero() || s.now().Sub(acct.AuthTime) > time.Duration(req.maxAge)*time.Second))
	if acct == nil || force {
		if req.hasPrompt("none") {
			s.redirectErrorUntrusted(w, r, req, oautherr.LoginRequired)
			return
		}
		s.observeAuthorization(outcomeSignIn)
		seeOther(w, s.identity.signInURL(s.returnURL(req, force), force))
		return
	}
	if len(acct.Businesses) == 0 {
		s.redirectErrorUntrusted(w, r, req, oautherr.AccessDenied.WithDescription("the user administers no business"))
		return
	}
	business, ok, err := s.rememberedBusiness(r.Context(), acct, req)
	if err != nil {
		s.redirectErrorUntrusted(w, r, req, s.storeError("reading consents", err))
		return
	}
	if ok && !req.hasPrompt("consent") {
		s.issueCode(w, r.Context(), req, acct, business)
		return
	}
	if req.hasPrompt("none") {
		s.redirectErrorUntrusted(w, r, req, oautherr.ConsentRequired)
		return
	}
	handle, err := s.signPending(req, acct)
	if err != nil {
		s.redirectErrorUntrusted(w, r, req, s.storeError("signing consent request", err))
		return
	}
	s.observeAuthorization(outcomeConsent)
	seeOther(w, s.paths.consent+"?"+url.Values{"request": {handle}}.Encode())
}

// returnURL is the authorize URL to come back to after signing in. When
// the sign-in was forced (prompt=login, max_age), the requirement is met by
// that sign-in, so it is dropped to avoid asking again.
func (s *Server) returnURL(req *authzRequest, force bool) string {
	q := maps.Clone(req.params)
	if force {
		q.Del("max_age")
		rest := slices.DeleteFunc(slices.Clone(req.prompt), func(p string) bool { return p == "login" })
		if len(rest) == 0 {
			q.Del("prompt")
		} else {
			q.Set("prompt", strings.Join(rest, " "))
		}
	}
	return s.paths.authorize + "?" + q.Encode()
}

// rememberedBusiness decides whether the consent screen can be skipped, and
// for which business: first-party clients act for the user's current
// business; otherwise a consent given before that covers these scopes and
// resources (consentCovers) is reused, the current business's first, else
// the most recent one.
func (s *Server) rememberedBusiness(ctx context.Context, acct *account, req *authzRequest) (string, bool, error) {
	if req.client.FirstParty {
		return acct.defaultBusiness(), true, nil
	}
	var best *tokenstore.Consent
	for _, b := range acct.Businesses {
		c, err := s.store.GetConsent(ctx, acct.ID, req.client.ID, b.ID)
		switch {
		case errors.Is(err, tokenstore.ErrNotFound):
			continue
		case err != nil:
			return "", false, err
		}
		if !consentCovers(c, req) {
			continue
		}
		if b.ID == acct.defaultBusiness() {
			return b.ID, true, nil
		}
		if best == nil || c.CreatedAt.After(best.CreatedAt) {
			best = c
		}
	}
	if best == nil {
		return "", false, nil
	}
	return best.BusinessID, true, nil
}

// covers reports whether granted includes every scope of wanted.
func covers(granted, wanted []string) bool {
	for _, w := range wanted {
		if !slices.Contains(granted, w) {
			return false
		}
	}
	return true
}

// issueCode mints the authorization code, bound to everything the token
// request must match, and sends it to the client.
func (s *Server) issueCode(w http.ResponseWriter, ctx context.Context, req *authzRequest, acct *account, business string) {
	raw, err := tokens.NewSecret("")
	if err != nil {
		s.redirectError(w, req, errServer())
		return
	}
	gid, err := tokens.NewID("gr_")
	if err != nil {
		s.redirectError(w, req, errServer())
		return
	}
	now := s.now()
	ac := &tokenstore.AuthCode{
		Hash:          tokens.HashSecret(raw),
		GrantID:       gid,
		ClientID:      req.client.ID,
		UserID:        acct.ID,
		BusinessID:    business,
		Scopes:        req.scopes,
		Resources:     req.resources,
		Nonce:         req.nonce,
		CodeChallenge: req.challenge,
		AuthTime:      acct.AuthTime,
		CreatedAt:     now,
		ExpiresAt:     now.Add(s.cfg.CodeTTL),
	}
	if req.challenge != "" {
		ac.CodeChallengeMethod = "S256"
	}
	if req.redirectSent {
		// RFC 6749 §4.1.3: then the token request must send the same.
		ac.RedirectURI = req.redirectURI
	}
	if err := s.store.CreateCode(ctx, ac); err != nil {
		s.redirectError(w, req, s.storeError("storing authorization code", err))
		return
	}
	s.observeAuthorization(outcomeCode)
	s.redirectResponse(w, req.redirectURI, req.state, url.Values{"code": {raw}})
}

// identityError maps a failure of the identity source.
func (s *Server) identityError(err error) *Error {
	if errors.Is(err, errIdentityUnavailable) {
		s.logError("asking the platform who is signed in", err)
		return errUnavailable()
	}
	return s.storeError("loading the signed-in user", err)
}

func (s *Server) unavailablePage(err error) *pageError {
	e := s.storeError("authorization request", err)
	return &pageError{Status: e.Status, Title: "Temporarily unavailable",
		Message: "Signing in is not possible right now. Please try again in a moment.", Code: e.Code}
}

// pendingTyp is the internal token carrying an authorization request from
// /authorize to the consent form and back; pendingTTL bounds how long the
// consent page may stay open.
const (
	pendingTyp = "oauthgate-authz+jwt"
	pendingTTL = time.Hour
)

// pending is a signed authorization request awaiting consent: the request
// as received (validated again on use, so a client deleted meanwhile is
// noticed) and the user it was shown to.
type pending struct {
	Query   string `json:"q"`
	Subject string `json:"sub"`
}

func (s *Server) signPending(req *authzRequest, acct *account) (string, error) {
	raw, _, err := s.tokens.SignInternal(pendingTyp, pendingTTL, pending{Query: req.params.Encode(), Subject: acct.ID})
	return raw, err
}

func (s *Server) readPending(raw string) (*pending, url.Values, *pageError) {
	expired := &pageError{Status: http.StatusBadRequest, Title: "This request has expired",
		Message: "Go back to the application and start again.", Code: oautherr.InvalidRequest.Code}
	var p pending
	if raw == "" || s.tokens.VerifyInternal(raw, pendingTyp, &p) != nil {
		return nil, nil, expired
	}
	q, err := url.ParseQuery(p.Query)
	if err != nil {
		return nil, nil, expired
	}
	return &p, q, nil
}
