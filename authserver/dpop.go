package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/internal/oautherr"
)

// DPoP at the token endpoint (RFC 9449 §5). Every grant accepts a proof;
// with one, the access token is bound to the proof's key (cnf.jkt,
// token_type DPoP) and so is a public client's refresh token, which then
// refreshes only with a proof by that key. A client registered with
// dpop_bound_access_tokens (§5.2) must send a proof every time.

// tokenProofs is the token endpoint's proof checking: the token endpoint's
// checker (its own replay cache), the resources' shared one (UserInfo, as
// oauth_protect) and the token endpoint's URL, the htu every proof must
// name.
type tokenProofs struct {
	c, resource        *dpop.Checker
	scheme, host, path string
}

func (s *Server) initDPoP() error {
	c := s.cfg.DPoP
	if c == nil {
		var err error
		if c, err = dpop.New(dpop.Config{Now: s.now}); err != nil {
			return err
		}
	}
	u, err := url.Parse(s.endpointURL(s.paths.token))
	if err != nil {
		return err
	}
	s.proofs = &tokenProofs{c: c.WithOwnReplay(), resource: c, scheme: u.Scheme, host: u.Host, path: u.Path}
	return nil
}

// DPoPAlgs are the accepted proof algorithms, as discovery documents
// advertise them (dpop_signing_alg_values_supported).
func (s *Server) DPoPAlgs() []string { return s.proofs.c.Algs() }

type proofKeyCtx struct{}

// withProofKey carries the thumbprint of the request's verified proof to
// the grant handlers.
func withProofKey(ctx context.Context, jkt string) context.Context {
	if jkt == "" {
		return ctx
	}
	return context.WithValue(ctx, proofKeyCtx{}, jkt)
}

// proofKey is the thumbprint of the token request's DPoP key, "" without
// a proof.
func proofKey(ctx context.Context) string {
	jkt, _ := ctx.Value(proofKeyCtx{}).(string)
	return jkt
}

// tokenProof checks the DPoP header of a token request from the
// authenticated client c and returns the proof key's thumbprint ("" when
// there is no proof and c does not require one). With server nonces on,
// every answer carries the current nonce in DPoP-Nonce (§8).
func (s *Server) tokenProof(w http.ResponseWriter, r *http.Request, c *authenticatedClient) (string, *Error) {
	p := s.proofs
	if n := p.c.Nonce(); n != "" {
		w.Header().Set(dpop.NonceHeader, n)
	}
	proof, ok, err := dpop.Proof(r.Header)
	switch {
	case err != nil:
		return "", proofError(err)
	case !ok && c.DPoPBoundAccessTokens:
		return "", oautherr.InvalidDPoPProof.WithDescription("this client is registered for DPoP-bound tokens only: send a DPoP proof")
	case !ok:
		return "", nil
	}
	res, err := p.c.Check(proof, dpop.Target{Method: r.Method, Scheme: p.scheme, Host: p.host, Path: p.path})
	if err != nil {
		return "", proofError(err)
	}
	return res.JKT, nil
}

// proofError maps a proof refusal to its token-endpoint error (§5: 400).
func proofError(err error) *Error {
	var f *dpop.Failure
	if !errors.As(err, &f) {
		return oautherr.InvalidDPoPProof
	}
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return oautherr.UseDPoPNonce.WithDescription(f.Reason)
	case errors.Is(err, dpop.ErrReplayFull):
		return errUnavailable()
	}
	return oautherr.InvalidDPoPProof.WithDescription(f.Reason)
}

// refreshProofKey decides the key a refresh binds to: a bound refresh
// token refreshes only with a proof by its own key (§5); an unbound one
// binds the next token of a public client to the proof's key, if any.
func refreshProofKey(ctx context.Context, c *authenticatedClient, bound string) (next string, e *Error) {
	jkt := proofKey(ctx)
	switch {
	case bound != "" && jkt == "":
		return "", oautherr.InvalidDPoPProof.WithDescription("the refresh token is DPoP-bound: send a proof by its key")
	case bound != "" && jkt != bound:
		return "", oautherr.InvalidDPoPProof.WithDescription("the DPoP proof's key is not the key the refresh token is bound to")
	case bound != "":
		return bound, nil
	case c.Public:
		return jkt, nil
	}
	return "", nil
}

// resourceProof applies RFC 9449 §7 at the authorization server's own
// protected resource (UserInfo), as oauth_protect does at the gateway: a
// DPoP-bound token needs the DPoP scheme and a proof by its key for this
// request; the DPoP scheme needs a bound token. nil: go on.
func (s *Server) resourceProof(r *http.Request, path, raw string, scheme bearer.Scheme, jkt string) *Error {
	unauthorized := func(e *Error, desc string) *Error {
		return e.WithDescription(desc).WithStatus(http.StatusUnauthorized)
	}
	switch {
	case jkt == "" && scheme != bearer.SchemeDPoP:
		return nil
	case jkt == "":
		return unauthorized(oautherr.InvalidToken, "the DPoP scheme needs a DPoP-bound access token")
	case scheme != bearer.SchemeDPoP:
		return unauthorized(oautherr.InvalidToken, "the access token is DPoP-bound: send it with the DPoP scheme and a proof")
	}
	proof, ok, err := dpop.Proof(r.Header)
	if err == nil && !ok {
		err = dpop.FailMissing
	}
	if err == nil {
		u, perr := url.Parse(s.endpointURL(path))
		if perr != nil {
			return errServer()
		}
		_, err = s.proofs.resource.Check(proof, dpop.Target{Method: r.Method, Scheme: u.Scheme, Host: u.Host, Path: u.Path, AccessToken: raw, JKT: jkt})
	}
	if err == nil {
		return nil
	}
	var f *dpop.Failure
	desc := "the DPoP proof is invalid"
	if errors.As(err, &f) {
		desc = f.Reason
	}
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return unauthorized(oautherr.UseDPoPNonce, desc)
	case errors.Is(err, dpop.ErrWrongKey):
		return unauthorized(oautherr.InvalidToken, "invalid DPoP key binding")
	case errors.Is(err, dpop.ErrReplayFull):
		return errUnavailable()
	}
	return unauthorized(oautherr.InvalidDPoPProof, desc)
}

// writeDPoPError answers a refused DPoP request at a protected resource
// with the DPoP challenge (RFC 9449 §7.1) and, with nonces on, the nonce.
func (s *Server) writeDPoPError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusServiceUnavailable {
		writeError(w, e)
		return
	}
	if n := s.proofs.c.Nonce(); n != "" {
		w.Header().Set(dpop.NonceHeader, n)
	}
	bearer.SetHeaders(w.Header(), e.Status, bearer.Challenge{Realm: "oauthgate", Error: e.Code, Description: e.Description,
		DPoP: true, Algs: strings.Join(s.proofs.c.Algs(), " ")})
	writeJSON(w, e.Status, e)
}
