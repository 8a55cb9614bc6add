package authserver

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthgate/oauthgate/internal/oautherr"
)

// maxBodyBytes bounds token, revocation and introspection request bodies.
// The largest legitimate body (a code exchange with a 128-character PKCE
// verifier) is well under 4 KiB.
const maxBodyBytes = 64 << 10

// params are the parameters of a POST to the token, revocation or
// introspection endpoint, whether sent form-encoded (RFC 6749) or as a JSON
// object (as the YionStack and yAppointment guides show).
type params map[string]string

func (p params) get(k string) string { return p[k] }

// parseParams reads the request body. Every parameter may appear once
// (RFC 6749 §3.2); JSON values must be strings, except that numbers and
// booleans are tolerated as their literal text since some SDKs send them.
func parseParams(w http.ResponseWriter, r *http.Request) (params, *Error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, oautherr.InvalidRequest.WithDescription("method must be POST").WithStatus(http.StatusMethodNotAllowed)
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded or application/json")
	}
	body, err := readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, oautherr.InvalidRequest.WithDescription("request body too large").WithStatus(http.StatusRequestEntityTooLarge)
		}
		return nil, errInvalidRequest("reading request body failed")
	}
	switch ct {
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errInvalidRequest("malformed form body")
		}
		p := make(params, len(vals))
		for k, v := range vals {
			if len(v) > 1 && k != resourceKey {
				return nil, errInvalidRequest("parameter " + quoteParam(k) + " is repeated")
			}
			p[k] = v[0]
			if k == resourceKey {
				p[k] = joinResources(v)
			}
		}
		return p, nil
	case "application/json":
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			return nil, errInvalidRequest("malformed JSON body: expected an object")
		}
		// A map keeps the last of two equal keys: count the members, so
		// that a repeated one is refused as a repeated form field is.
		if raw == nil || objectMembers(body) != len(raw) {
			return nil, errInvalidRequest("malformed JSON body: a parameter is repeated or the body is not an object")
		}
		p := make(params, len(raw))
		for k, v := range raw {
			var s string
			if err := json.Unmarshal(v, &s); err == nil {
				p[k] = s
				if k == resourceKey {
					p[k] = joinResources([]string{s})
				}
				continue
			}
			var n json.Number
			var b bool
			var list []string
			switch {
			case k == resourceKey && json.Unmarshal(v, &list) == nil && len(list) > 0:
				// RFC 8707 §2: resource may be repeated; in JSON, an array.
				p[k] = joinResources(list)
			case json.Unmarshal(v, &n) == nil:
				p[k] = n.String()
			case json.Unmarshal(v, &b) == nil:
				p[k] = map[bool]string{true: "true", false: "false"}[b]
			case string(v) == "null":
				// absent
			default:
				return nil, errInvalidRequest("parameter " + quoteParam(k) + " must be a string")
			}
		}
		return p, nil
	default:
		return nil, errInvalidRequest("Content-Type must be application/x-www-form-urlencoded or application/json")
	}
}

// objectMembers counts the members of the JSON object b, which
// json.Unmarshal has already found valid: the colons outside strings at
// depth one. No allocation.
func objectMembers(b []byte) int {
	n, depth, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ':' && depth == 1:
			n++
		}
	}
	return n
}

// readBody reads the body, at most maxBodyBytes of it. When the client
// declared its length, the buffer is allocated once at that size rather
// than grown from 512 bytes by io.ReadAll: a request carrying a JWT (~600
// bytes, as introspection does) otherwise allocates and copies it twice.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	n := r.ContentLength
	if n <= 0 || n > maxBodyBytes {
		return io.ReadAll(rd)
	}
	buf := make([]byte, 0, n+1) // +1: room to see EOF without growing
	for {
		k, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, err
		case len(buf) == cap(buf):
			// Longer than declared (net/http's server frames the body by
			// Content-Length, so only a handler's own reader could do this).
			rest, err := io.ReadAll(rd)
			return append(buf, rest...), err
		}
	}
}

// quoteParam keeps a client-chosen parameter name printable and short in an
// error description.
func quoteParam(k string) string {
	if len(k) > 40 {
		k = k[:40]
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, k) + `"`
}
