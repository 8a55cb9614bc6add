package authserver

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/throttle"
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
	// Throttling (per client_id and per client address) refuses before the
	// client is looked up, so a locked caller costs no store round trip and
	// a registered client_id is refused exactly like an unknown one.
	subjects := [2]throttle.Subject{{Kind: throttle.Client, Value: id}, {Kind: throttle.ClientAddress, Value: s.clientAddress(r)}}
	if d := s.throttle.Locked(subjects[:]...); d > 0 {
		s.throttle.Refused(s.clientEndpoint(r))
		s.observeClientAuth("throttled")
		return nil, errThrottled(d)
	}
	c, err := s.tokens.Client(ctx, id)
	switch {
	case errors.Is(err, tokenstore.ErrNotFound):
		tokens.SecretMatches(dummyHash, secret)
		s.observeClientAuth("unknown_client")
		return nil, s.clientAuthFailed(ctx, r, basic, subjects[:]...)
	case errors.Is(err, tokenstore.ErrUnavailable) || errors.Is(err, tokens.ErrUnavailable):
		return nil, errUnavailable()
	case err != nil:
		s.logError("loading client", err)
		return nil, errServer()
	}
	if c.Public {
		// A public client has no secret to prove; presenting one is a mistake
		// we refuse rather than ignore. It is no guess at a secret, so only
		// the address counts it: anyone could otherwise lock a public app
		// out of the token endpoint.
		if secret != "" {
			s.observeClientAuth("bad_secret")
			return nil, s.clientAuthFailed(ctx, r, basic, subjects[1])
		}
		return &authenticatedClient{Client: c, viaBasic: basic}, nil
	}
	if secret == "" || !tokens.SecretMatches(c.SecretHash, secret) {
		s.observeClientAuth("bad_secret")
		return nil, s.clientAuthFailed(ctx, r, basic, subjects[:]...)
	}
	// Writes only when the client has failures to forget.
	if err := s.throttle.Succeeded(ctx, subjects[:]...); err != nil {
		s.log.Warn("forgetting failed client authentications", zap.Error(err))
	}
	return &authenticatedClient{Client: c, viaBasic: basic}, nil
}

// clientAuthFailed counts a failed client authentication and answers it:
// invalid_client, or 429 once the failure locked the client or address.
// A failure that cannot be counted is 503, not a free guess.
func (s *Server) clientAuthFailed(ctx context.Context, r *http.Request, basic bool, subjects ...throttle.Subject) *Error {
	d, err := s.throttle.Failed(ctx, s.clientEndpoint(r), subjects...)
	switch {
	case err != nil:
		s.logError("counting a failed client authentication", err)
		return errUnavailable()
	case d > 0:
		return errThrottled(d)
	}
	return errInvalidClient(basic)
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
