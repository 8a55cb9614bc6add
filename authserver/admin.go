package authserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/policies"
	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// AdminPrefix is where the admin API lives on Caddy's admin endpoint.
const AdminPrefix = "/oauthgate/"

// ClientSpec is a client as an operator specifies it, the one shape of the
// admin API's POST /oauthgate/clients body, the CLI's `client create` and a
// client declared in the configuration (which adds its id and secret).
// CheckClient applies the registration rules to all three.
type ClientSpec struct {
	// Name is shown on the consent screen. Required by the admin API; a
	// static client defaults to its id.
	Name string `json:"name,omitempty"`
	// GrantTypes the client may use: authorization_code, refresh_token,
	// client_credentials. The admin API defaults to authorization_code and
	// refresh_token when RedirectURIs are given, else client_credentials;
	// a static client defaults to client_credentials.
	GrantTypes []string `json:"grant_types,omitempty"`
	// Scopes is the ceiling of what the client may request; with a scope
	// catalogue, each must be in it (or be openid or offline_access).
	Scopes []string `json:"scopes,omitempty"`
	// Businesses the client owns (client-credentials tenancy).
	Businesses []string `json:"businesses,omitempty"`
	// RedirectURIs, compared by exact string match: https, loopback http or
	// a reverse-domain private-use scheme, without fragment.
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser afterwards (exact match), under the same rules as
	// RedirectURIs. Default: none (the signed-out page is shown).
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// IDTokenSignedResponseAlg is the JWS algorithm of the client's
	// id_tokens (OpenID Connect Dynamic Client Registration 1.0 §2): RS256,
	// or the server's signing_alg. Default: the server's signing_alg
	// (ES256 unless configured otherwise), not RS256 as in that spec.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg,omitempty"`
	// FirstParty clients skip the consent screen.
	FirstParty bool `json:"first_party,omitempty"`
	// Public clients have no secret and must use PKCE.
	Public bool `json:"public,omitempty"`
	// DPoPBoundAccessTokens (RFC 9449 §5.2) requires a DPoP proof on
	// every token request of the client: it never gets a bearer token.
	// Default false (a proof is optional).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
}

// Client is the store record of the client spec describes, under id.
func (spec ClientSpec) Client(id string) *tokenstore.Client {
	return &tokenstore.Client{
		ID: id, Name: spec.Name, GrantTypes: spec.GrantTypes, Scopes: spec.Scopes, Businesses: spec.Businesses,
		RedirectURIs: spec.RedirectURIs, PostLogoutRedirectURIs: spec.PostLogoutRedirectURIs,
		IDTokenSignedResponseAlg: spec.IDTokenSignedResponseAlg, FirstParty: spec.FirstParty, Public: spec.Public,
		DPoPBoundAccessTokens: spec.DPoPBoundAccessTokens,
	}
}

// newClient is the store record of a new client of spec under id, created
// now, with a fresh secret for a confidential client: the secret is
// returned to be shown once, and only its hash is kept. The admin API, the
// developer portal and dynamic registration create clients through it.
func (s *Server) newClient(spec ClientSpec, id string) (*tokenstore.Client, string, error) {
	now := s.now().UTC()
	c := spec.Client(id)
	c.CreatedAt, c.UpdatedAt = now, now
	if spec.Public {
		return c, "", nil
	}
	secret, err := tokens.NewSecret(s.cfg.SecretPrefix)
	if err != nil {
		return nil, "", err
	}
	c.SecretHash = tokens.HashSecret(secret)
	return c, secret, nil
}

// specOf is the spec of a stored client.
func specOf(c *tokenstore.Client) ClientSpec {
	return ClientSpec{Name: c.Name, GrantTypes: c.GrantTypes, Scopes: c.Scopes, Businesses: c.Businesses,
		RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg, FirstParty: c.FirstParty, Public: c.Public,
		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens}
}

// clientView is how a client is shown: never with its secret or hash.
type clientView struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Name         string   `json:"name"`
	GrantTypes   []string `json:"grant_types"`
	Scopes       []string `json:"scopes"`
	Businesses   []string `json:"businesses"`
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs, for RP-initiated logout.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	// IDTokenSignedResponseAlg is empty for the server's default.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg,omitempty"`
	FirstParty               bool   `json:"first_party"`
	Public                   bool   `json:"public"`
	// OwnerID and OwnerBusinessID: who registered the client in the
	// developer portal, for which business; empty for the operator's.
	OwnerID               string `json:"owner_id,omitempty"`
	OwnerBusinessID       string `json:"owner_business_id,omitempty"`
	DPoPBoundAccessTokens bool   `json:"dpop_bound_access_tokens"`
	// DynamicallyRegistered: the client registered itself (RFC 7591)
	// and is shown to users as unverified.
	DynamicallyRegistered bool      `json:"dynamically_registered"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

func viewClient(c *tokenstore.Client) clientView {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return clientView{
		ClientID: c.ID, Name: c.Name, GrantTypes: nonNil(c.GrantTypes), Scopes: nonNil(c.Scopes),
		Businesses: nonNil(c.Businesses), RedirectURIs: nonNil(c.RedirectURIs),
		PostLogoutRedirectURIs:   nonNil(c.PostLogoutRedirectURIs),
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		FirstParty:               c.FirstParty, Public: c.Public, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		OwnerID: c.OwnerID, OwnerBusinessID: c.OwnerBusinessID,
		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens,
	}
}

// AdminHandler serves the operator API under AdminPrefix. It trusts its
// caller: mount it only where Caddy's admin endpoint guards it.
func (s *Server) AdminHandler() http.Handler { return s.admin }

func (s *Server) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauthgate/clients", s.adminCreateClient)
	mux.HandleFunc("GET /oauthgate/clients", s.adminListClients)
	mux.HandleFunc("GET /oauthgate/clients/{id}", s.adminGetClient)
	mux.HandleFunc("DELETE /oauthgate/clients/{id}", s.adminDeleteClient)
	mux.HandleFunc("POST /oauthgate/clients/{id}/secret", s.adminRotateSecret)
	mux.HandleFunc("POST /oauthgate/clients/{id}/businesses", s.adminLinkBusiness)
	mux.HandleFunc("DELETE /oauthgate/clients/{id}/businesses/{business}", s.adminUnlinkBusiness)
	s.adminGrantRoutes(mux)
	mux.HandleFunc("GET /oauthgate/keys", s.adminListKeys)
	mux.HandleFunc("POST /oauthgate/keys/rotate", s.adminRotateKeys)
	s.adminDirectoryRoutes(mux)
	mux.HandleFunc("/oauthgate/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "no such admin endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// adminError writes {"error": msg}, the shape Caddy's own admin API uses.
func adminError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decodeAdmin decodes a JSON body strictly: unknown fields are typos.
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		adminError(w, http.StatusBadRequest, "decoding request body: "+err.Error())
		return false
	}
	return true
}

// adminStoreError answers a store failure.
func (s *Server) adminStoreError(w http.ResponseWriter, op string, err error) {
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		adminError(w, http.StatusNotFound, op+": not found")
	case errors.Is(err, tokenstore.ErrConflict):
		adminError(w, http.StatusConflict, op+": already exists")
	case errors.Is(err, tokenstore.ErrUnavailable):
		w.Header().Set("Retry-After", bearer.RetryAfter)
		adminError(w, http.StatusServiceUnavailable, op+": store unavailable")
	default:
		s.logError(op, err)
		adminError(w, http.StatusInternalServerError, op+": internal error")
	}
}

var supportedGrantTypes = []string{"authorization_code", "client_credentials", "refresh_token"}

// validateClient applies the registration rules, the admin API's default
// grant types first.
func (s *Server) validateClient(c *ClientSpec) error {
	if len(c.GrantTypes) == 0 {
		if len(c.RedirectURIs) > 0 {
			c.GrantTypes = []string{"authorization_code", "refresh_token"}
		} else {
			c.GrantTypes = []string{"client_credentials"}
		}
	}
	return s.checkSpec(c)
}

// checkSpec is the registration rules, the one place they are written.
func (s *Server) checkSpec(c *ClientSpec) error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" || len(c.Name) > 200 {
		return fmt.Errorf("name is required (at most 200 characters)")
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(supportedGrantTypes, g) {
			return fmt.Errorf("grant type %q is not supported (want %s)", g, strings.Join(supportedGrantTypes, ", "))
		}
	}
	if c.Public && slices.Contains(c.GrantTypes, "client_credentials") {
		return fmt.Errorf("a public client cannot use client_credentials")
	}
	for _, sc := range c.Scopes {
		if !validScopeToken(sc) {
			return fmt.Errorf("scope %q is not a valid scope token", sc)
		}
		if _, ok := s.scopes[sc]; !ok && len(s.scopes) > 0 && sc != "openid" && sc != "offline_access" {
			return fmt.Errorf("scope %q is not in the scope catalogue", sc)
		}
	}
	for _, b := range c.Businesses {
		if !policies.ValidBusinessID(b) {
			return fmt.Errorf("business id %q: want 1 to 128 characters of A-Z a-z 0-9 . _ : -", b)
		}
	}
	if slices.Contains(c.GrantTypes, "authorization_code") && len(c.RedirectURIs) == 0 {
		return fmt.Errorf("authorization_code needs at least one redirect_uri")
	}
	// The operator may register a private-use scheme for any client.
	rules := RedirectURIRules{PrivateUseSchemes: true, HTTPHosts: s.httpHosts}
	if err := ValidateRedirectURIs(c.RedirectURIs, rules); err != nil {
		return err
	}
	if err := ValidateRedirectURIs(c.PostLogoutRedirectURIs, rules); err != nil {
		return fmt.Errorf("post_logout_redirect_uris: %w", err)
	}
	algs := s.cfg.IDTokenAlgs
	if len(algs) == 0 {
		algs = tokens.IDTokenAlgsFor("")
	}
	if a := c.IDTokenSignedResponseAlg; a != "" && !slices.Contains(algs, a) {
		return fmt.Errorf("id_token_signed_response_alg %q: want one of %s", a, strings.Join(algs, ", "))
	}
	return nil
}

// CheckClient applies the registration rules to a client declared in the
// configuration, so a Caddyfile cannot declare what the admin API refuses.
func (s *Server) CheckClient(c *tokenstore.Client) error {
	spec := specOf(c)
	if err := s.checkSpec(&spec); err != nil {
		return fmt.Errorf("client %q: %w", c.ID, err)
	}
	return nil
}

func (s *Server) adminCreateClient(w http.ResponseWriter, r *http.Request) {
	var spec ClientSpec
	if !decodeAdmin(w, r, &spec) {
		return
	}
	if err := s.validateClient(&spec); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Hex, so an id never starts with "-" and reads safely as a CLI
	// argument; 128 bits is plenty for an identifier.
	id, err := tokens.NewID(s.cfg.ClientIDPrefix)
	if err != nil {
		s.adminStoreError(w, "generating client id", err)
		return
	}
	c, secret, err := s.newClient(spec, id)
	if err != nil {
		s.adminStoreError(w, "generating client secret", err)
		return
	}
	if err := s.store.CreateClient(r.Context(), c); err != nil {
		s.adminStoreError(w, "creating client", err)
		return
	}
	v := viewClient(c)
	v.ClientSecret = secret
	w.Header().Set("Location", AdminPrefix+"clients/"+url.PathEscape(c.ID))
	adminJSON(w, http.StatusCreated, v)
}

func (s *Server) adminListClients(w http.ResponseWriter, r *http.Request) {
	cs, err := s.store.ListClients(r.Context())
	if err != nil {
		s.adminStoreError(w, "listing clients", err)
		return
	}
	out := make([]clientView, 0, len(cs))
	for _, c := range cs {
		v := viewClient(c)
		if v.DynamicallyRegistered, err = s.registeredDynamically(r.Context(), c.ID); err != nil {
			s.adminStoreError(w, "listing clients", err)
			return
		}
		out = append(out, v)
	}
	adminJSON(w, http.StatusOK, out)
}

func (s *Server) adminGetClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.store.GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		s.adminStoreError(w, "loading client", err)
		return
	}
	v := viewClient(c)
	if v.DynamicallyRegistered, err = s.registeredDynamically(r.Context(), c.ID); err != nil {
		s.adminStoreError(w, "loading client", err)
		return
	}
	adminJSON(w, http.StatusOK, v)
}

// adminDeleteClient deletes the client with everything it holds and, in
// the same commit, revokes every access token issued to it: a failure
// leaves the client and its tokens as they were, and no token minted
// before the 204 survives it (see tokens.Service.DeleteClient).
func (s *Server) adminDeleteClient(w http.ResponseWriter, r *http.Request) {
	if err := s.tokens.DeleteClient(r.Context(), r.PathValue("id")); err != nil {
		s.adminStoreError(w, "deleting client", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminRotateSecret replaces the secret; tokens already issued stay valid.
func (s *Server) adminRotateSecret(w http.ResponseWriter, r *http.Request) {
	s.updateClient(w, r, func(c *tokenstore.Client) (string, error) {
		if c.Public {
			return "", fmt.Errorf("a public client has no secret")
		}
		secret, err := tokens.NewSecret(s.cfg.SecretPrefix)
		if err != nil {
			return "", err
		}
		c.SecretHash = tokens.HashSecret(secret)
		return secret, nil
	})
}

func (s *Server) adminLinkBusiness(w http.ResponseWriter, r *http.Request) {
	var body struct {
		BusinessID string `json:"business_id"`
	}
	if !decodeAdmin(w, r, &body) {
		return
	}
	s.updateClient(w, r, func(c *tokenstore.Client) (string, error) {
		if !policies.ValidBusinessID(body.BusinessID) {
			return "", fmt.Errorf("business_id %q: want 1 to 128 characters of A-Z a-z 0-9 . _ : -", body.BusinessID)
		}
		if !slices.Contains(c.Businesses, body.BusinessID) {
			c.Businesses = append(c.Businesses, body.BusinessID)
			slices.Sort(c.Businesses)
		}
		return "", nil
	})
}

func (s *Server) adminUnlinkBusiness(w http.ResponseWriter, r *http.Request) {
	b := r.PathValue("business")
	s.updateClient(w, r, func(c *tokenstore.Client) (string, error) {
		c.Businesses = slices.DeleteFunc(c.Businesses, func(x string) bool { return x == b })
		return "", nil
	})
}

// updateClient loads, edits and stores a client, answering with its view
// (and a new secret when edit returns one).
func (s *Server) updateClient(w http.ResponseWriter, r *http.Request, edit func(*tokenstore.Client) (string, error)) {
	// One transaction: a business an app creates meanwhile
	// (LinkCreatedBusiness) is kept, not overwritten by what was read.
	var secret string
	var editErr error
	c, err := s.store.EditClient(r.Context(), r.PathValue("id"), func(c *tokenstore.Client) error {
		secret, editErr = edit(c)
		c.UpdatedAt = s.now().UTC()
		return editErr
	})
	switch {
	case editErr != nil:
		adminError(w, http.StatusBadRequest, editErr.Error())
		return
	case err != nil:
		s.adminStoreError(w, "updating client", err)
		return
	}
	s.tokens.ForgetClient(c.ID)
	v := viewClient(c)
	v.ClientSecret = secret
	adminJSON(w, http.StatusOK, v)
}

func (s *Server) adminListKeys(w http.ResponseWriter, r *http.Request) {
	adminJSON(w, http.StatusOK, s.tokens.Keys())
}

func (s *Server) adminRotateKeys(w http.ResponseWriter, r *http.Request) {
	kid, err := s.tokens.Rotate(r.Context())
	if err != nil {
		s.adminStoreError(w, "rotating keys", err)
		return
	}
	adminJSON(w, http.StatusOK, map[string]string{"kid": kid})
}
