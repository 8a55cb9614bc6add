package authserver

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthgate/oauthgate/tokens"
)

// TestValidateBrand: only what can be shown safely passes; every rejection
// names the field.
func TestValidateBrand(t *testing.T) {
	ok := []struct {
		name string
		b    Branding
	}{
		{"YionStack", Branding{}},
		{"Yoco Sandbox", Branding{Accent: "#00a9e0", Mark: "Y"}},
		{"Yuvo", Branding{Accent: "#0F0", Logo: "/static/logo.svg"}},
		{"yAppointment", Branding{Accent: "#7c3aed", Logo: "https://cdn.example.com:8443/brand/logo.png?v=3"}},
		{"Ünïcode Café", Branding{Mark: "ÜC"}},
	}
	for _, tc := range ok {
		if err := ValidateBrand(tc.name, tc.b); err != nil {
			t.Errorf("%s %+v: %v", tc.name, tc.b, err)
		}
	}
	bad := []struct {
		name, brand string
		b           Branding
		want        string
	}{
		{"accent name", "X", Branding{Accent: "red"}, "accent"},
		{"accent without #", "X", Branding{Accent: "2563eb"}, "accent"},
		{"accent four digits", "X", Branding{Accent: "#2563"}, "accent"},
		{"accent with alpha", "X", Branding{Accent: "#2563ebff"}, "accent"},
		{"accent not hex", "X", Branding{Accent: "#25g3eb"}, "accent"},
		{"accent CSS injection", "X", Branding{Accent: "#000;background:url(https://evil.example/)"}, "accent"},
		{"accent rgb()", "X", Branding{Accent: "rgb(0,0,0)"}, "accent"},
		{"accent var()", "X", Branding{Accent: "var(--x)"}, "accent"},
		{"logo http", "X", Branding{Logo: "http://cdn.example.com/logo.png"}, "https URL or an absolute path"},
		{"logo javascript", "X", Branding{Logo: "javascript:alert(1)"}, "https URL or an absolute path"},
		{"logo data", "X", Branding{Logo: "data:image/svg+xml,<svg/>"}, "logo"},
		{"logo relative", "X", Branding{Logo: "logo.png"}, "https URL or an absolute path"},
		{"logo protocol-relative", "X", Branding{Logo: "//evil.example/logo.png"}, "https URL or an absolute path"},
		{"logo backslash", "X", Branding{Logo: "/\\evil.example/logo.png"}, "plain URL"},
		{"logo quote", "X", Branding{Logo: `/logo.png" onerror="x`}, "plain URL"},
		{"logo space", "X", Branding{Logo: "/my logo.png"}, "plain URL"},
		{"logo fragment", "X", Branding{Logo: "/logo.svg#mark"}, "fragment"},
		{"logo userinfo", "X", Branding{Logo: "https://user@cdn.example.com/logo.png"}, "https URL or an absolute path"},
		{"logo CSP-breaking host", "X", Branding{Logo: "https://cdn.example.com;script-src/logo.png"}, "logo"},
		{"logo too long", "X", Branding{Logo: "/" + strings.Repeat("a", 2048)}, "too long"},
		{"mark too long", "X", Branding{Mark: "ABCD"}, "mark"},
		{"mark with markup", "X", Branding{Mark: "<b>"}, "mark"},
		{"mark with space", "X", Branding{Mark: "A B"}, "mark"},
		{"name too long", strings.Repeat("n", 65), Branding{}, "brand"},
		{"name with a newline", "Yion\nStack", Branding{}, "control characters"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateBrand(tc.brand, tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestPaletteContrast: text on the accent and the accent as text on white
// are legible (WCAG AA, 4.5:1) whatever the accent.
func TestPaletteContrast(t *testing.T) {
	for r := 0; r < 256; r += 17 {
		for g := 0; g < 256; g += 17 {
			for b := 0; b < 256; b += 17 {
				accent := rgb{float64(r) / 255, float64(g) / 255, float64(b) / 255}.hex()
				p := paletteFor(accent)
				c, _ := parseHexColour(p.Accent)
				on, _ := parseHexColour(p.OnAccent)
				text, _ := parseHexColour(p.Text)
				soft, _ := parseHexColour(p.Soft)
				if got := contrast(c, on); got < 4.5 {
					t.Errorf("%s: text %s on it has contrast %.2f", accent, p.OnAccent, got)
				}
				if got := contrast(text, white); got < 4.5 {
					t.Errorf("%s: as text (%s) on white, contrast %.2f", accent, p.Text, got)
				}
				if got := contrast(text, soft); got < 4.5 {
					t.Errorf("%s: as text (%s) on its soft tint, contrast %.2f", accent, p.Text, got)
				}
			}
		}
	}
	for accent, want := range map[string]string{"#000000": "#ffffff", "#ffffff": "#161a2b", "#ffd400": "#161a2b", "#4338ca": "#ffffff", "#00a9e0": "#161a2b", "#ff0000": "#000000", "#0a7cff": "#000000", "#2563eb": "#ffffff", "#7c3aed": "#ffffff"} {
		if got := paletteFor(accent).OnAccent; got != want {
			t.Errorf("text on %s = %s, want %s", accent, got, want)
		}
	}
}

func TestBrandInitials(t *testing.T) {
	for in, want := range map[string]string{"YionStack": "YS", "yAppointment": "yA", "Yuvo": "Y", "Yoco Sandbox": "YS", "acme cloud": "AC", "": ""} {
		if got := brandInitials(in); got != want {
			t.Errorf("brandInitials(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBrandedPages: the brand's name, mark or logo and colours reach every
// page, the logo's origin its CSP, and nothing else.
func TestBrandedPages(t *testing.T) {
	s := openServer(t, Config{Issuer: testIssuer, Brand: "YionStack", Branding: Branding{Accent: "#0a7cff", Logo: "https://cdn.yionstack.example/logo.svg"}}, tokens.Config{})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/oauth/sign-in?return_to=/oauth/authorize%3Fclient_id%3Dx", nil))
	body := rec.Body.String()
	for _, want := range []string{"<title>Sign in to YionStack</title>", `<span class="brand-name">YionStack</span>`,
		`src="https://cdn.yionstack.example/logo.svg"`, `href="/oauth/assets/brand.css?v=`, "to your YionStack account"} {
		if !strings.Contains(body, want) {
			t.Errorf("sign-in page lacks %q", want)
		}
	}
	if strings.Contains(body, "oauthgate account") {
		t.Error("the sign-in page still names oauthgate")
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.yionstack.example;") || !strings.Contains(csp, "style-src 'self';") {
		t.Errorf("CSP %q", csp)
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/oauth/authorize", nil))
	if !strings.Contains(rec.Body.String(), `<span class="brand-name">YionStack</span>`) {
		t.Errorf("error page is not branded:\n%s", rec.Body.String())
	}
	css := s.pages.brandCSS
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/oauth/assets/"+css, nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(rec.Body.String(), "--primary: #0a7cff;") || !strings.Contains(rec.Body.String(), "--on-primary: #000000;") {
		t.Errorf("brand.css: %d %q\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}

	// No logo: the brand's initials as the mark, and the default CSP.
	m := openServer(t, Config{Issuer: testIssuer, Brand: "Yoco Sandbox"}, tokens.Config{})
	rec = httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("GET", "/oauth/authorize", nil))
	if !strings.Contains(rec.Body.String(), `<span class="logo mark" aria-hidden="true">YS</span>`) {
		t.Errorf("no mark:\n%s", rec.Body.String())
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:;") {
		t.Errorf("CSP %q", csp)
	}
	// An invalid brand does not make a server.
	if _, err := New(Config{Issuer: testIssuer, Branding: Branding{Accent: "red"}}, nil, nil); err == nil || !strings.Contains(err.Error(), "accent") {
		t.Errorf("New with a bad accent: %v", err)
	}
}
