package tokens

// StaticClient reports whether the client is declared in the configuration
// rather than registered in the store: its businesses are the
// configuration's, and nothing can be linked to it at run time.
func (s *Service) StaticClient(id string) bool { return s.clients.static[id] != nil }
