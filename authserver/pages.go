package authserver

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
)

// templates holds the sign-in, consent and error pages and their
// stylesheet. The pages load nothing from elsewhere.
//
//go:embed templates
var templates embed.FS

// pages are the parsed page templates and the static assets.
type pages struct {
	byName map[string]*template.Template
	assets map[string][]byte
	// css is the stylesheet's name with a content hash, so it can be
	// cached and still change with a new release; brandCSS likewise for
	// the brand's colours.
	css, brandCSS string
	// brand is the platform as the layout shows it.
	brand brandView
	// csp is the pages' Content-Security-Policy, with the logo's origin.
	csp string
}

func loadPages() (*pages, error) {
	p := &pages{byName: map[string]*template.Template{}, assets: map[string][]byte{}}
	css, err := templates.ReadFile("templates/oauthgate.css")
	if err != nil {
		return nil, fmt.Errorf("loading stylesheet: %w", err)
	}
	sum := sha256.Sum256(css)
	p.assets["oauthgate.css"] = css
	p.css = "oauthgate.css?v=" + hex.EncodeToString(sum[:6])
	for _, name := range []string{"signin", "consent", "error", "signout", "account", "developer"} {
		t, err := template.ParseFS(templates, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parsing %s page: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// pageData is what every page template receives.
type pageData struct {
	Brand    string
	Title    string
	CSS      string
	BrandCSS string
	// Logo is the platform's logo, mark and name for the header.
	Logo    brandView
	Error   *pageError
	SignIn  *signInView
	Consent *consentView
	// Developer is a developer-portal page.
	Developer *developerView
	// SignOutPage is the sign-out question or its outcome.
	SignOutPage *signOutView
	// SignOut, on pages shown to a signed-in user, is the footer's
	// sign-out form.
	SignOut *signOutForm
	// Nav, on pages shown to a signed-in user, is the footer's links to
	// the self-service pages (accountNav).
	Nav []navLink
	// Wide widens the card, for pages that list things.
	Wide bool
	// Account is the connected-apps page.
	Account *accountView
}

// render executes a page into a buffer first, so a template failure is a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.Brand = s.cfg.Brand
	d.CSS = s.paths.assets + s.pages.css
	d.BrandCSS = s.paths.assets + s.pages.brandCSS
	d.Logo = s.pages.brand
	var buf bytes.Buffer
	if err := s.pages.byName[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		s.logError("rendering "+name+" page", err)
		pageHeaders(w)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pageHeaders(w)
	w.Header().Set("Content-Security-Policy", s.pages.csp)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
