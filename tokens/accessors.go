package tokens

// Audience is the aud claim access tokens carry and Verify requires.
func (s *Service) Audience() string { return s.cfg.Audience }

// Alg is the JWS algorithm new tokens are signed with.
func (s *Service) Alg() string { return s.cfg.Alg }

// ForgetClient drops a client from this node's cache at once, for the node
// that just changed it; other nodes hear of the change through the feed.
func (s *Service) ForgetClient(id string) { s.clients.invalidate(id) }
