package gateway

import (
	"errors"
	"net/http"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/dpop"
	"github.com/oauthgate/oauthgate/tokens"
)

// checkProof applies RFC 9449 §7 to a request whose token verified: a
// DPoP-bound token (cnf.jkt) must come with the DPoP scheme and a valid
// proof by its key for this very request; the DPoP scheme with an unbound
// token is refused too. ok is true when the request may go on; nonce, when
// set, is the server nonce to send (the proof used the previous one).
//
// One signature check per request: a proof is new every time, so nothing
// is cached.
func (g *Guard) checkProof(r *http.Request, raw string, scheme bearer.Scheme, claims *tokens.Claims) (d Decision, nonce string, ok bool) {
	d.DPoP = true
	switch {
	case claims.JKT == "":
		// The DPoP scheme promises a binding the token does not have.
		d.Reason = NotBound
		return d, "", false
	case scheme != bearer.SchemeDPoP:
		// §7.2: a stolen bound token sent as a bearer token.
		d.Reason = BoundAsBearer
		return d, "", false
	case g.cfg.DPoP == nil:
		d.Reason = InvalidToken
		return d, "", false
	}
	proof, present, err := dpop.Proof(r.Header)
	if err == nil && !present {
		err = dpop.FailMissing
	}
	var res dpop.Result
	if err == nil {
		urlScheme := "http"
		if r.TLS != nil {
			urlScheme = "https"
		}
		path := r.URL.Path
		if g.cfg.ProofPath != nil {
			path = g.cfg.ProofPath(r)
		}
		res, err = g.cfg.DPoP.Check(proof, dpop.Target{
			Method: r.Method, Scheme: urlScheme, Host: r.Host, Path: path,
			OriginScheme: g.originScheme, OriginHost: g.originHost, OriginOnly: g.cfg.DPoPOriginOnly,
			AccessToken: raw, JKT: claims.JKT,
		})
	}
	if err != nil {
		d.Err = err
		switch {
		case errors.Is(err, dpop.ErrUseNonce):
			d.Reason, d.Nonce = UseNonce, g.cfg.DPoP.Nonce()
		case errors.Is(err, dpop.ErrWrongKey):
			d.Reason = WrongKey
		case errors.Is(err, dpop.ErrReplayFull):
			d.Reason = Unavailable
		default:
			d.Reason = BadProof
		}
		return d, "", false
	}
	if res.StaleNonce {
		nonce = g.cfg.DPoP.Nonce()
	}
	return Decision{}, nonce, true
}
