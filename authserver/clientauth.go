package authserver

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthgate/oauthgate/tokens"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// dummyHash is compared against when the client is unknown, so that a wrong
// client_id takes as long to reject as a wrong secret.
var dummyHash = tokens.HashSecret("oauthgate-unknown-client")

// authenticatedClient is the outcome of client authentication.
type authenticatedClient struct {
	*tokenstore.Client
	// viaBasic records whether HTTP Basic was used, for the challenge header.
	viaBasic bool
}

// authenticateClient implements RFC 6749 §2.3.1: client_secret_basic, with
// client_id and secret form-urlencoded before base64, or client_secret_post;
// public clients send only client_id. Using two methods at once is refused.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, p params) (*authenticatedClient, *Error) {
	id, secret, basic, e := basicCredentials(r)
	if e != nil {
		return nil, e
	}
	if basic {
		if p.get("client_secret") != "" {
			return nil, errInvalidRequest("client authenticated by more than one method")
		}
		if bodyID := p.get("client_id"); bodyID != "" && bodyID != id {
			return nil, errInvalidRequest("client_id in body differs from HTTP Basic")
		}
	} else {
		id, secret = p.get("client_id"), p.get("client_secret")
		if id == "" {
			return nil, errInvalidClient(false)
		}
	}
	c, err := s.tokens.Client(ctx, id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		tokens.SecretMatches(dummyHash, secret)
		s.observeClientAuth("unknown_client")
		return nil, errInvalidClient(basic)
	case errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, tokens.ErrUnavailable):
		return nil, errUnavailable()
	case err != nil:
		s.logError("loading client", err)
		return nil, errServer()
	}
	if c.Public {
		// A public client has no secret to prove; presenting one is a mistake
		// we refuse rather than ignore.
		if secret != "" {
			s.observeClientAuth("bad_secret")
			return nil, errInvalidClient(basic)
		}
		return &authenticatedClient{Client: c, viaBasic: basic}, nil
	}
	if secret == "" || !tokens.SecretMatches(c.SecretHash, secret) {
		s.observeClientAuth("bad_secret")
		return nil, errInvalidClient(basic)
	}
	return &authenticatedClient{Client: c, viaBasic: basic}, nil
}

// basicCredentials decodes an Authorization: Basic header. Absent header →
// basic=false. A malformed one is invalid_client, not a fall-through to body
// credentials.
func basicCredentials(r *http.Request) (id, secret string, basic bool, e *Error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", "", false, nil
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", false, errInvalidClient(true)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", true, errInvalidClient(true)
	}
	rawID, rawSecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", true, errInvalidClient(true)
	}
	// RFC 6749 §2.3.1: both parts are application/x-www-form-urlencoded.
	if id, err = url.QueryUnescape(rawID); err != nil {
		return "", "", true, errInvalidClient(true)
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", true, errInvalidClient(true)
	}
	if id == "" {
		return "", "", true, errInvalidClient(true)
	}
	return id, secret, true, nil
}
