package authserver

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/throttle"
)

// clientAddress is the address failed authentications are counted
// against: Config.ClientAddress's answer (the HTTP server's notion of the
// client, behind trusted proxies), else the connection's peer.
func (s *Server) clientAddress(r *http.Request) string {
	if s.cfg.ClientAddress != nil {
		if a := s.cfg.ClientAddress(r); a != "" {
			return a
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientEndpoint names the endpoint a client authenticates at, for the
// throttle's metrics.
func (s *Server) clientEndpoint(r *http.Request) string {
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case s.paths.revoke:
		return throttle.EndpointRevoke
	case s.paths.introspect:
		return throttle.EndpointIntrospect
	}
	return throttle.EndpointToken
}

// retryAfter is d in whole seconds, rounded up, for a Retry-After header
// (RFC 9110 §10.2.3).
func retryAfter(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// waitText says how long d is, in words, for the sign-in page.
func waitText(d time.Duration) string {
	n := retryAfter(d)
	switch {
	case n < 60:
		return plural(n, "second")
	default:
		return plural((n+59)/60, "minute")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// errThrottled refuses a client authentication while the client id or the
// address is locked: invalid_client (RFC 6749 §5.2: the server declines to
// authenticate the client) with 429 and Retry-After (RFC 6585 §4). Neither
// RFC 8628's slow_down (device-flow polling only) nor
// temporarily_unavailable (an authorization-endpoint code that this server
// sends, with 503, when its store is down) describes it; see
// docs/deployment.md.
func errThrottled(d time.Duration) *Error {
	n := retryAfter(d)
	return oautherr.InvalidClient.WithStatus(http.StatusTooManyRequests).WithRetryAfter(n).
		WithDescription("too many failed client authentications; retry after " + strconv.Itoa(n) + " seconds")
}
