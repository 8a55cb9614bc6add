package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// benchScope is what every bench token carries: the demo's read scopes.
const benchScope = "read:invoices read:contacts"

// benchBusiness is the business every bench client owns.
const benchBusiness = "biz_bench"

func basicAuth(c client) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ID)+":"+url.QueryEscape(c.Secret)))
}

// tokenRequest is a client_credentials request of client c, authenticated
// with HTTP Basic (the secret is checked on every request).
func tokenRequest(host string, c client) []byte {
	body := "grant_type=client_credentials&scope=" + url.QueryEscape(benchScope)
	return []byte("POST /oauth/token HTTP/1.1\r\nHost: " + host +
		"\r\nAuthorization: " + basicAuth(c) +
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(body)) +
		"\r\nUser-Agent: oauthgate-bench\r\n\r\n" + body)
}

// issuedToken is the part of the token response the bench reads.
type issuedToken struct {
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
}

// mintViaEndpoint gets n client-credentials tokens from the token endpoint
// over conns connections, spread evenly over the clients, within limit.
// byClient[i] holds the tokens of clients[i].
func mintViaEndpoint(host string, clients []client, n, conns int, limit time.Duration) (byClient [][]string, res runResult, err error) {
	reqs := make([][]byte, len(clients))
	for i, c := range clients {
		reqs[i] = tokenRequest(host, c)
	}
	byClient = make([][]string, len(clients))
	var mu sync.Mutex
	var firstErr error
	// Requests go to the clients round robin by sequence number, and the
	// check learns the number of the request it answers.
	res = run(loadSpec{
		addr: host, conns: conns, dur: limit, max: int64(n), status: 200,
		gen: func(seq uint64, buf []byte) []byte { return append(buf, reqs[seq%uint64(len(reqs))]...) },
		check: func(seq uint64, body []byte) bool {
			var t issuedToken
			if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" || t.Scope != benchScope {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("token response %.200q: %v", body, err)
				}
				mu.Unlock()
				return false
			}
			mu.Lock()
			i := seq % uint64(len(clients))
			byClient[i] = append(byClient[i], t.AccessToken)
			mu.Unlock()
			return true
		},
	})
	total := 0
	for _, l := range byClient {
		total += len(l)
	}
	if total < n {
		return byClient, res, fmt.Errorf("minted %d of %d tokens (errors %d, bad %d %s): %v", total, n, res.Errors, res.Bad, res.Statuses, firstErr)
	}
	return byClient, res, nil
}

// signer signs access tokens with a node's own key, as its token endpoint
// would, so the memory test can present a million distinct valid tokens
// without a million token requests.
type signer struct {
	alg, kid string
	key      crypto.Signer
	issuer   string
	client   string
	now      int64
	nonce    string
}

// loadSigner reads the active signing key from the node's SQLite store
// (the same file the node uses; SQLite allows the concurrent read).
func loadSigner(dataDir, issuer, clientID string) (*signer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := tokenstore.Open(ctx, tokenstore.Config{Driver: "sqlite", DSN: filepath.Join(dataDir, "caddy", "oauthgate", "oauthgate.db")})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if !k.RetiredAt.IsZero() {
			continue
		}
		jk, err := jwk.ParseKey(k.PrivateJWK)
		if err != nil {
			return nil, err
		}
		var raw any
		if err := jk.Raw(&raw); err != nil {
			return nil, err
		}
		s := &signer{alg: k.Alg, kid: k.ID, issuer: issuer, client: clientID, now: time.Now().Unix()}
		switch key := raw.(type) {
		case *ecdsa.PrivateKey:
			s.key = key
		case ed25519.PrivateKey:
			s.key = key
		default:
			return nil, fmt.Errorf("signing key %s (%s): the bench signs ES256 and EdDSA only", k.ID, k.Alg)
		}
		var nb [6]byte
		rand.Read(nb[:])
		s.nonce = base64.RawURLEncoding.EncodeToString(nb[:])
		return s, nil
	}
	return nil, errors.New("no active signing key in the store")
}

// sign returns the i-th distinct token: the claims of a client-credentials
// token (RFC 9068 with oauthgate's gid), unique by jti and gid.
func (s *signer) sign(i int) (string, error) {
	id := s.nonce + strconv.Itoa(i)
	hdr, _ := json.Marshal(map[string]string{"alg": s.alg, "kid": s.kid, "typ": "at+jwt"})
	claims, _ := json.Marshal(map[string]any{
		"iss": s.issuer, "sub": s.client, "aud": s.issuer, "client_id": s.client, "scope": benchScope,
		"iat": s.now, "exp": s.now + 3600, "jti": "bench-" + id, "gid": "cc_bench" + id,
	})
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(claims)
	var sig []byte
	switch key := s.key.(type) {
	case *ecdsa.PrivateKey:
		h := sha256.Sum256([]byte(input))
		r, ss, err := ecdsa.Sign(rand.Reader, key, h[:])
		if err != nil {
			return "", err
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		ss.FillBytes(sig[32:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(key, []byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
