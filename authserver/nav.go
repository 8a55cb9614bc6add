package authserver

// navLink is a link of the signed-in footer, shared by every page shown to
// a signed-in user (consent, connected apps, and any self-service page):
// the pages a user can manage their account on, next to the sign-out form.
type navLink struct {
	Label, URL string
	// Current marks the page being shown (aria-current="page").
	Current bool
}

// accountNav is the footer's links for acct on the page at path current
// ("" on pages that are not one of them). Nil when nobody is signed in.
func (s *Server) accountNav(acct *account, current string) []navLink {
	if acct == nil {
		return nil
	}
	nav := []navLink{
		{Label: "Connected apps", URL: s.paths.account, Current: current == s.paths.account},
	}
	if s.cfg.DeveloperPortal != nil {
		nav = append(nav, navLink{Label: "Developer portal", URL: s.paths.developer, Current: current == s.paths.developer})
	}
	return nav
}

// returnPages are the self-service pages sign-in may return to, besides
// the authorize endpoint: a signed-out visitor is sent to sign in and back.
func (s *Server) returnPages() []string {
	return []string{s.paths.account}
}
