package authserver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// RegistrationPolicy turns on dynamic client registration (RFC 7591) at
// <base>/register and its management (RFC 7592) at
// <base>/register/<client_id>, and bounds what a client registering
// itself may get. Zero values are the documented defaults. A
// self-registered client is never first-party, owns no business and is
// shown to users as unverified.
type RegistrationPolicy struct {
	// InitialAccessTokenHashes, when not empty, gate registration: the
	// request must carry one of these tokens as a bearer credential
	// (RFC 7591 §3). They are SHA-256 hashes (tokens.HashSecret), compared
	// in constant time. Empty: registration is open to anyone.
	InitialAccessTokenHashes [][]byte
	// ClientTypes a self-registered client may be: "public"
	// (token_endpoint_auth_method none, PKCE) and "confidential"
	// (client_secret_basic or client_secret_post). Default both.
	ClientTypes []string
	// GrantTypes a self-registered client may use. Default
	// authorization_code and refresh_token; client_credentials only when
	// listed (such a client owns no business, so its tokens act for none).
	GrantTypes []string
	// Scopes a self-registered client may request, within the server's
	// third-party scopes. Default: all of those.
	Scopes []string
	// RateLimit is how many registration attempts one client address (an
	// IPv6 address as its /64) may make per RateWindow, on each node.
	// Default 10; negative: no limit.
	RateLimit int
	// RateWindow defaults to one hour.
	RateWindow time.Duration
}

// Client types of RegistrationPolicy.ClientTypes.
const (
	ClientTypePublic       = "public"
	ClientTypeConfidential = "confidential"
)

// maxRegistrationBody bounds a registration request's body: metadata is a
// few hundred bytes, and 20 redirect URIs of 2000 characters fit.
const maxRegistrationBody = 64 << 10

// registrar is the checked policy the registration endpoint applies.
type registrar struct {
	policy       RegistrationPolicy
	public, conf bool
	limiter      *registrationLimiter
}

// initRegistration checks Config.Registration against the third-party
// scopes and fills its defaults.
func (s *Server) initRegistration() error {
	p := s.cfg.Registration
	if p == nil {
		return nil
	}
	reg := &registrar{policy: *p}
	for _, h := range p.InitialAccessTokenHashes {
		if len(h) != 32 {
			return errors.New("registration: an initial access token hash must be a SHA-256 (caddy oauthgate hash-secret)")
		}
	}
	if len(p.ClientTypes) == 0 {
		reg.public, reg.conf = true, true
	}
	for _, t := range p.ClientTypes {
		switch t {
		case ClientTypePublic:
			reg.public = true
		case ClientTypeConfidential:
			reg.conf = true
		default:
			return fmt.Errorf("registration: client type %q: want public or confidential", t)
		}
	}
	if len(p.GrantTypes) == 0 {
		reg.policy.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range reg.policy.GrantTypes {
		if !slices.Contains(supportedGrantTypes, g) {
			return fmt.Errorf("registration: grant type %q is not supported (want %s)", g, strings.Join(supportedGrantTypes, ", "))
		}
	}
	if len(p.Scopes) == 0 {
		reg.policy.Scopes = s.ThirdPartyScopes()
	}
	for _, sc := range p.Scopes {
		if !s.IsThirdPartyScope(sc) {
			return fmt.Errorf("registration: scope %q is not among the third-party scopes (third_party_scopes)", sc)
		}
	}
	switch {
	case p.RateLimit == 0:
		reg.policy.RateLimit = 10
	case p.RateLimit < 0:
		reg.policy.RateLimit = 0
	}
	if reg.policy.RateWindow <= 0 {
		reg.policy.RateWindow = time.Hour
	}
	reg.limiter = newRegistrationLimiter(reg.policy.RateLimit, reg.policy.RateWindow, s.now)
	s.registration = reg
	return nil
}

// registrationPath is the registration endpoint's path.
func (s *Server) registrationPath() string { return s.cfg.BasePath + "/register" }

// registrationEndpoint is its URL for the metadata documents, empty when
// registration is off.
func (s *Server) registrationEndpoint() string {
	if s.registration == nil {
		return ""
	}
	return s.endpointURL(s.registrationPath())
}

// serveRegistration serves the registration endpoint and the client
// configuration endpoints under it, and reports whether path was one.
func (s *Server) serveRegistration(w http.ResponseWriter, r *http.Request, path string) bool {
	if s.registration == nil {
		return false
	}
	base := s.registrationPath()
	switch {
	case path == base:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, errInvalidRequest("use POST to register a client").WithStatus(http.StatusMethodNotAllowed))
			return true
		}
		s.register(w, r)
	case strings.HasPrefix(path, base+"/"):
		id := strings.TrimPrefix(path, base+"/")
		if id == "" || strings.Contains(id, "/") {
			return false
		}
		s.manageClient(w, r, id)
	default:
		return false
	}
	return true
}

// clientMetadata is RFC 7591 §2's client metadata as oauthgate reads it
// (with OIDC Registration's post_logout_redirect_uris and
// id_token_signed_response_alg and RFC 9449's dpop_bound_access_tokens).
// Metadata it does not know is ignored (§2: the server MUST ignore it).
type clientMetadata struct {
	RedirectURIs             []string `json:"redirect_uris"`
	TokenEndpointAuthMethod  string   `json:"token_endpoint_auth_method"`
	GrantTypes               []string `json:"grant_types"`
	ResponseTypes            []string `json:"response_types"`
	ClientName               string   `json:"client_name"`
	Scope                    string   `json:"scope"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg"`
	DPoPBoundAccessTokens    bool     `json:"dpop_bound_access_tokens"`
	descriptive
	// ClientID and ClientSecret are sent back in an RFC 7592 update.
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// descriptive is the metadata that only describes the client: kept in the
// registration and given back, never shown to users, who are told the app
// is unverified instead.
type descriptive struct {
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	TOSURI                  string   `json:"tos_uri,omitempty"`
	PolicyURI               string   `json:"policy_uri,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
}

// clientInformation is the RFC 7591 §3.2.1 (and RFC 7592 §3) response.
type clientInformation struct {
	ClientID                 string   `json:"client_id"`
	ClientSecret             string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt         int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt    *int64   `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken  string   `json:"registration_access_token,omitempty"`
	RegistrationClientURI    string   `json:"registration_client_uri"`
	ClientName               string   `json:"client_name"`
	RedirectURIs             []string `json:"redirect_uris"`
	GrantTypes               []string `json:"grant_types"`
	ResponseTypes            []string `json:"response_types"`
	Scope                    string   `json:"scope"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris,omitempty"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg,omitempty"`
	DPoPBoundAccessTokens    bool     `json:"dpop_bound_access_tokens,omitempty"`
	descriptive
}

// Members a client must not send in an RFC 7592 update (§2.2): the server
// issues them.
var serverIssued = []string{"registration_access_token", "registration_client_uri", "client_id_issued_at", "client_secret_expires_at"}

func errMetadata(format string, a ...any) *Error {
	return oautherr.InvalidClientMetadata.WithDescription(fmt.Sprintf(format, a...))
}

// readMetadata reads an RFC 7591 request body: one JSON object, at most
// maxRegistrationBody bytes. It also returns the members present, for
// the update's rules.
func readMetadata(w http.ResponseWriter, r *http.Request) (*clientMetadata, map[string]json.RawMessage, *Error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, nil, oautherr.InvalidClientMetadata.WithStatus(http.StatusUnsupportedMediaType).
			WithDescription("the client metadata must be sent as application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, nil, oautherr.InvalidClientMetadata.WithStatus(http.StatusRequestEntityTooLarge).
				WithDescription(fmt.Sprintf("the client metadata is larger than %d bytes", maxRegistrationBody))
		}
		return nil, nil, errMetadata("the request body could not be read")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return nil, nil, errMetadata("the client metadata must be one JSON object")
	}
	var md clientMetadata
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&md); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, nil, errMetadata("%s has the wrong type: want %s", te.Field, jsonKind(te.Type.Kind().String()))
		}
		return nil, nil, errMetadata("the client metadata must be one JSON object")
	}
	return &md, members, nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice":
		return "an array of strings"
	case "bool":
		return "true or false"
	default:
		return "a string"
	}
}

// admit applies the policy to md and returns the client spec it asks for
// and its descriptive metadata (with the auth method filled in), or the
// RFC 7591 error refusing it.
func (s *Server) admit(md *clientMetadata) (ClientSpec, descriptive, *Error) {
	pol := s.registration
	d := md.descriptive
	var public bool
	switch md.TokenEndpointAuthMethod {
	case "", "client_secret_basic":
		d.TokenEndpointAuthMethod = "client_secret_basic"
	case "client_secret_post":
		d.TokenEndpointAuthMethod = "client_secret_post"
	case "none":
		d.TokenEndpointAuthMethod, public = "none", true
	default:
		return ClientSpec{}, d, errMetadata("token_endpoint_auth_method %q is not supported (want none, client_secret_basic or client_secret_post)", md.TokenEndpointAuthMethod)
	}
	switch {
	case public && !pol.public:
		return ClientSpec{}, d, errMetadata("public clients (token_endpoint_auth_method none) may not register here")
	case !public && !pol.conf:
		return ClientSpec{}, d, errMetadata("confidential clients may not register here: register a public client (token_endpoint_auth_method none) with PKCE")
	}
	grants := md.GrantTypes
	if len(grants) == 0 {
		grants = []string{"authorization_code"} // RFC 7591 §2
	}
	for i, g := range grants {
		if !slices.Contains(pol.policy.GrantTypes, g) {
			return ClientSpec{}, d, errMetadata("grant type %q is not allowed for self-registered clients (allowed: %s)", g, strings.Join(pol.policy.GrantTypes, ", "))
		}
		if slices.Contains(grants[:i], g) {
			return ClientSpec{}, d, errMetadata("grant type %q is listed twice", g)
		}
	}
	responses := md.ResponseTypes
	if len(responses) == 0 && slices.Contains(grants, "authorization_code") {
		responses = []string{"code"}
	}
	for _, rt := range responses {
		if rt != "code" {
			return ClientSpec{}, d, errMetadata("response type %q is not supported (want code)", rt)
		}
	}
	// RFC 7591 §2.1: grant_types and response_types must agree.
	if slices.Contains(grants, "authorization_code") != (len(responses) > 0) {
		return ClientSpec{}, d, errMetadata("grant_types and response_types disagree: authorization_code goes with the response type code")
	}
	if public && slices.Contains(grants, "client_credentials") {
		return ClientSpec{}, d, errMetadata("a public client cannot use client_credentials")
	}
	scopes := pol.policy.Scopes
	if strings.TrimSpace(md.Scope) != "" {
		scopes = nil
		for _, sc := range strings.Fields(md.Scope) {
			if !slices.Contains(pol.policy.Scopes, sc) {
				return ClientSpec{}, d, errMetadata("scope %q may not be requested by a self-registered client", sc)
			}
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	if slices.Contains(grants, "authorization_code") && len(md.RedirectURIs) == 0 {
		return ClientSpec{}, d, oautherr.InvalidRedirectURI.WithDescription("redirect_uris is required for the authorization_code grant")
	}
	rules := s.RedirectURIRules(public)
	if err := ValidateRedirectURIs(md.RedirectURIs, rules); err != nil {
		return ClientSpec{}, d, oautherr.InvalidRedirectURI.WithDescription(err.Error())
	}
	if err := ValidateRedirectURIs(md.PostLogoutRedirectURIs, rules); err != nil {
		return ClientSpec{}, d, errMetadata("post_logout_redirect_uris: %v", err)
	}
	for name, u := range map[string]string{"client_uri": d.ClientURI, "logo_uri": d.LogoURI, "tos_uri": d.TOSURI, "policy_uri": d.PolicyURI} {
		if u != "" && !webURL(u) {
			return ClientSpec{}, d, errMetadata("%s must be an absolute http or https URL without fragment, at most %d characters", name, MaxRedirectURILength)
		}
	}
	if len(d.Contacts) > 10 {
		return ClientSpec{}, d, errMetadata("contacts: at most 10")
	}
	for _, c := range d.Contacts {
		if c == "" || len(c) > 320 || strings.ContainsFunc(c, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return ClientSpec{}, d, errMetadata("contacts: each must be an e-mail address or URL of at most 320 characters")
		}
	}
	if len(d.SoftwareID) > 200 || len(d.SoftwareVersion) > 200 {
		return ClientSpec{}, d, errMetadata("software_id and software_version: at most 200 characters each")
	}
	// The name is shown on the consent and connected-apps pages: no
	// control characters, nor the invisible ones (a right-to-left
	// override, a zero-width space) with which it could pass for another
	// app's, as the developer portal refuses them.
	if strings.ContainsFunc(md.ClientName, invisibleInName) {
		return ClientSpec{}, d, errMetadata("client_name must not contain control characters or invisible formatting characters")
	}
	name := strings.TrimSpace(md.ClientName)
	if name == "" && len(md.RedirectURIs) > 0 {
		// The consent page must name the app somehow: where it sends the
		// user back is what the user can check.
		if u, err := url.Parse(md.RedirectURIs[0]); err == nil && u.Host != "" {
			name = u.Hostname()
		}
	}
	if name == "" {
		name = "Unnamed app"
	}
	spec := ClientSpec{Name: name, GrantTypes: grants, Scopes: scopes, RedirectURIs: md.RedirectURIs,
		PostLogoutRedirectURIs: md.PostLogoutRedirectURIs, IDTokenSignedResponseAlg: md.IDTokenSignedResponseAlg,
		DPoPBoundAccessTokens: md.DPoPBoundAccessTokens, Public: public}
	if err := s.checkSpec(&spec); err != nil {
		return ClientSpec{}, d, errMetadata("%v", err)
	}
	return spec, d, nil
}

// webURL reports whether u is an absolute http(s) URL without fragment.
func webURL(u string) bool {
	if len(u) > MaxRedirectURILength || strings.Contains(u, "#") {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != "" && p.User == nil
}

// register is RFC 7591 §3: the client registration endpoint.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	pol := s.registration
	if ok, wait := pol.limiter.allow(s.clientAddress(r)); !ok {
		n := retryAfter(wait)
		writeError(w, oautherr.InvalidRequest.WithStatus(http.StatusTooManyRequests).WithRetryAfter(n).
			WithDescription("too many registrations from this address; retry after "+strconv.Itoa(n)+" seconds"))
		return
	}
	if len(pol.policy.InitialAccessTokenHashes) > 0 {
		if e := s.checkInitialAccessToken(r); e != nil {
			writeError(w, e)
			return
		}
	}
	md, _, e := readMetadata(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	spec, desc, e := s.admit(md)
	if e != nil {
		writeError(w, e)
		return
	}
	id, err := tokens.NewID(s.cfg.ClientIDPrefix)
	if err != nil {
		writeError(w, errServer())
		return
	}
	rat, err := tokens.NewSecret("")
	if err != nil {
		writeError(w, errServer())
		return
	}
	c, secret, err := s.newClient(spec, id)
	if err != nil {
		writeError(w, errServer())
		return
	}
	meta, _ := json.Marshal(desc)
	reg := &tokenstore.Registration{ClientID: id, TokenHash: tokens.HashSecret(rat), Metadata: meta, CreatedAt: c.CreatedAt}
	if err := s.store.RegisterClient(r.Context(), c, reg); err != nil {
		writeError(w, s.storeError("registering client", err))
		return
	}
	s.log.Info("client registered itself", zap.String("client_id", id))
	info := s.clientInformation(c, desc)
	info.ClientSecret, info.RegistrationAccessToken = secret, rat
	w.Header().Set("Location", info.RegistrationClientURI)
	writeJSON(w, http.StatusCreated, info)
}

// checkInitialAccessToken checks the bearer credential against every
// configured hash, each in constant time, so the answer does not tell
// how far a guess matched.
func (s *Server) checkInitialAccessToken(r *http.Request) *Error {
	tok, present, malformed := bearer.Token(r.Header)
	challenge := bearer.Challenge{Realm: "oauthgate"}
	switch {
	case !present:
		return oautherr.InvalidToken.WithDescription("registration requires an initial access token").WithChallenge(challenge.String())
	case malformed:
		challenge.Error = oautherr.InvalidRequest.Code
		return oautherr.InvalidRequest.WithDescription("the Authorization header must be one Bearer credential").WithChallenge(challenge.String())
	}
	h := tokens.HashSecret(tok)
	match := 0
	for _, want := range s.registration.policy.InitialAccessTokenHashes {
		match |= subtle.ConstantTimeCompare(h, want)
	}
	if match != 1 {
		challenge.Error = oautherr.InvalidToken.Code
		return oautherr.InvalidToken.WithDescription("the initial access token is not valid").WithChallenge(challenge.String())
	}
	return nil
}

// clientInformation is the response describing c.
func (s *Server) clientInformation(c *tokenstore.Client, d descriptive) *clientInformation {
	info := &clientInformation{
		ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(),
		RegistrationClientURI: s.endpointURL(s.registrationPath() + "/" + url.PathEscape(c.ID)),
		ClientName:            c.Name, RedirectURIs: nonNilStrings(c.RedirectURIs), GrantTypes: nonNilStrings(c.GrantTypes),
		ResponseTypes: []string{}, Scope: joinScopes(c.Scopes), PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg, DPoPBoundAccessTokens: c.DPoPBoundAccessTokens,
		descriptive: d,
	}
	if slices.Contains(c.GrantTypes, "authorization_code") {
		info.ResponseTypes = []string{"code"}
	}
	if !c.Public {
		never := int64(0) // RFC 7591 §3.2.1: the secret does not expire
		info.ClientSecretExpiresAt = &never
	}
	return info
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// manageClient is RFC 7592: the client configuration endpoint, where the
// registration access token reads (GET), replaces (PUT) and deletes
// (DELETE) the client it was issued with.
func (s *Server) manageClient(w http.ResponseWriter, r *http.Request, id string) {
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeError(w, errInvalidRequest("use GET, PUT or DELETE on a client configuration endpoint").WithStatus(http.StatusMethodNotAllowed))
		return
	}
	c, reg, e := s.registeredClient(r, id)
	if e != nil {
		writeError(w, e)
		return
	}
	var d descriptive
	_ = json.Unmarshal(reg.Metadata, &d)
	// RFC 7592 §3: the client information response carries the
	// registration access token (REQUIRED). Only its hash is stored, so
	// the answer gives back the one the request presented and was
	// checked against: the caller learns nothing it did not hold.
	rat, _, _ := bearer.Token(r.Header)
	switch r.Method {
	case http.MethodGet:
		info := s.clientInformation(c, d)
		info.RegistrationAccessToken = rat
		writeJSON(w, http.StatusOK, info)
	case http.MethodDelete:
		if err := s.tokens.DeleteClient(r.Context(), id); err != nil {
			writeError(w, s.goneOrStoreError("deleting client", err))
			return
		}
		s.log.Info("self-registered client deleted itself", zap.String("client_id", id))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		s.updateRegistration(w, r, c, reg, rat)
	}
}

// registeredClient authenticates a configuration-endpoint request: the
// bearer token must be the registration access token of client id. An
// unknown client, one that did not register itself, and a wrong token are
// answered alike (RFC 7592 §2: 401 invalid_token), after the same work.
func (s *Server) registeredClient(r *http.Request, id string) (*tokenstore.Client, *tokenstore.Registration, *Error) {
	tok, present, malformed := bearer.Token(r.Header)
	challenge := bearer.Challenge{Realm: "oauthgate"}
	switch {
	case !present:
		return nil, nil, oautherr.InvalidToken.WithDescription("the registration access token is required").WithChallenge(challenge.String())
	case malformed:
		challenge.Error = oautherr.InvalidRequest.Code
		return nil, nil, oautherr.InvalidRequest.WithDescription("the Authorization header must be one Bearer credential").WithChallenge(challenge.String())
	}
	challenge.Error = oautherr.InvalidToken.Code
	refused := oautherr.InvalidToken.WithDescription("the registration access token is not valid for this client").WithChallenge(challenge.String())
	reg, err := s.store.GetRegistration(r.Context(), id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		tokens.SecretMatches(dummyHash, tok)
		return nil, nil, refused
	case err != nil:
		return nil, nil, s.storeError("loading registration", err)
	}
	if !tokens.SecretMatches(reg.TokenHash, tok) {
		return nil, nil, refused
	}
	c, err := s.store.GetClient(r.Context(), id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		return nil, nil, refused
	case err != nil:
		return nil, nil, s.storeError("loading client", err)
	}
	return c, reg, nil
}

// goneOrStoreError answers a store failure of an update or delete: the
// client deleted meanwhile (by a concurrent DELETE, or the operator) is
// RFC 7592 §2.2 and §2.3's 401 invalid_token, as if the request had come
// a moment later; anything else is the store's error.
func (s *Server) goneOrStoreError(op string, err error) *Error {
	if errors.Is(err, tokenstore.ErrNotFound) {
		challenge := bearer.Challenge{Realm: "oauthgate", Error: oautherr.InvalidToken.Code}
		return oautherr.InvalidToken.WithDescription("the registration access token is not valid for this client").WithChallenge(challenge.String())
	}
	return s.storeError(op, err)
}

// updateRegistration is RFC 7592 §2.2: the body replaces every metadata
// value, under the same policy as a registration. Changing from a public
// to a confidential client issues a secret (returned once); the other way
// drops it. The registration access token stays the same.
func (s *Server) updateRegistration(w http.ResponseWriter, r *http.Request, c *tokenstore.Client, reg *tokenstore.Registration, rat string) {
	md, members, e := readMetadata(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	for _, m := range serverIssued {
		if _, ok := members[m]; ok {
			writeError(w, errMetadata("%s is issued by the server and must not be sent in an update (RFC 7592 §2.2)", m))
			return
		}
	}
	if md.ClientID != c.ID {
		writeError(w, errMetadata("client_id must be sent and be this client's (RFC 7592 §2.2)"))
		return
	}
	if md.ClientSecret != "" && (c.Public || !tokens.SecretMatches(c.SecretHash, md.ClientSecret)) {
		writeError(w, errMetadata("client_secret does not match this client's"))
		return
	}
	spec, desc, e := s.admit(md)
	if e != nil {
		writeError(w, e)
		return
	}
	next := spec.Client(c.ID)
	next.CreatedAt, next.UpdatedAt = c.CreatedAt, s.now().UTC()
	next.SecretHash = c.SecretHash
	var secret string
	switch {
	case spec.Public:
		next.SecretHash = nil
	case c.Public:
		var err error
		if secret, err = tokens.NewSecret(s.cfg.SecretPrefix); err != nil {
			writeError(w, errServer())
			return
		}
		next.SecretHash = tokens.HashSecret(secret)
	}
	meta, _ := json.Marshal(desc)
	nextReg := &tokenstore.Registration{ClientID: c.ID, TokenHash: reg.TokenHash, Metadata: meta, CreatedAt: reg.CreatedAt}
	if err := s.store.UpdateRegisteredClient(r.Context(), next, nextReg); err != nil {
		writeError(w, s.goneOrStoreError("updating registered client", err))
		return
	}
	s.tokens.ForgetClient(c.ID)
	info := s.clientInformation(next, desc)
	info.ClientSecret, info.RegistrationAccessToken = secret, rat
	writeJSON(w, http.StatusOK, info)
}

// registeredDynamically reports whether the client registered itself, for
// the admin API.
func (s *Server) registeredDynamically(ctx context.Context, clientID string) (bool, error) {
	_, err := s.store.GetRegistration(ctx, clientID)
	if errors.Is(err, tokenstore.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// dynamicallyRegistered reports whether the client registered itself, for
// the pages that show it as unverified. A store failure counts as
// registered: an app is never shown as vouched for by mistake.
func (s *Server) dynamicallyRegistered(ctx context.Context, clientID string) bool {
	if s.store == nil {
		return false
	}
	_, err := s.store.GetRegistration(ctx, clientID)
	return !errors.Is(err, tokenstore.ErrNotFound)
}

// redirectErrorUntrusted answers an authorization request that failed
// before the user agreed to anything for this app: before sign-in, or
// signed in but without a consent to reuse (prompt=none's
// consent_required). A self-registered client's redirect URI is one
// nobody vouched for: anyone may register https://phish.example/ and send
// a link to <base>/authorize that fails at once (a bad scope, a
// response_type it knows is refused, prompt=none), which would make the
// authorization server an open redirector for that address. RFC 9700
// §4.11.2: the server must authenticate the user before redirecting, and
// should redirect automatically only to URIs it trusts. So such an error
// is shown on a page, with its code for the developer; errors after the
// user's own answer on the consent page (a denial) are redirected as
// usual, and so is every error of the operator's and the portal's clients.
func (s *Server) redirectErrorUntrusted(w http.ResponseWriter, r *http.Request, req *authzRequest, e *Error) {
	if !s.unvettedRedirect(r.Context(), req.client) {
		s.redirectError(w, req, e)
		return
	}
	status := http.StatusBadRequest
	if e.Status >= 500 {
		status = e.Status
	}
	s.renderError(w, &pageError{Status: status, Title: "This request cannot be completed",
		Message: "The app that sent you here registered itself and is not verified by " + s.cfg.Brand +
			". Its request could not be accepted, so you were not sent back to it.", Code: e.Code})
}

// unvettedRedirect reports whether c's redirect URIs are ones nobody
// vouched for: c registered itself and the operator has not made it
// first-party. The browser is sent to them only once someone has signed
// in: not on an authorization error before sign-in, nor at the end of an
// RP-initiated logout when nobody was signed in (where anyone could
// register post_logout_redirect_uris https://phish.example/ and link to
// <base>/sign-out?client_id=…&post_logout_redirect_uri=…), RFC 9700
// §4.11.2; that logout shows the signed-out page instead.
func (s *Server) unvettedRedirect(ctx context.Context, c *tokenstore.Client) bool {
	return c != nil && !c.FirstParty && s.dynamicallyRegistered(ctx, c.ID)
}
