package tokens

import "slices"

// Audiences of access tokens (RFC 8707, RFC 9068 §3).
//
// A token requested without a resource carries Config.Audience, as before
// resource indicators, and every oauth_protect accepts it. A token
// requested for resources carries their identifiers instead, and only the
// oauth_protect handlers guarding one of them accept it (gateway). Verify
// accepts a token whose aud names Config.Audience or one of
// Config.Resources; which resource a request is for is the gateway's
// question, not the verifier's.

// audienceOK reports whether aud names an audience of this service.
func (s *Service) audienceOK(aud audience) bool {
	if aud.contains(s.cfg.Audience) {
		return true
	}
	for _, r := range s.cfg.Resources {
		if aud.contains(r) {
			return true
		}
	}
	return false
}

// mintAudience is the aud of a new access token: Config.Audience when no
// resource was requested, the one resource as a string (as every token was
// before resource indicators), several as an array (RFC 7519 §4.1.3).
func (s *Service) mintAudience(resources []string) any {
	switch len(resources) {
	case 0:
		return s.cfg.Audience
	case 1:
		return resources[0]
	}
	return slices.Clone(resources)
}

// HasAudience reports whether the claims' aud names one of want. It
// allocates nothing: the gateway calls it on every request.
func (c *Claims) HasAudience(want []string) bool {
	for _, a := range c.Audience {
		for _, w := range want {
			if a == w {
				return true
			}
		}
	}
	return false
}
