package authserver

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Branding is how the sign-in, consent and error pages show the platform
// beyond its name. Every field is optional; Validate checks them once, when
// the configuration loads, because they end up in the pages.
type Branding struct {
	// Logo is an image shown beside the platform's name: an https URL or
	// an absolute path on this site ("/static/logo.svg"). Its origin is
	// added to the pages' img-src.
	Logo string
	// Mark is the inline mark drawn in the accent colour when there is no
	// logo: one to three letters or digits, such as "YS". Default: the
	// initials of the brand name, or oauthgate's shield when no brand is set.
	Mark string
	// Accent is the accent colour of buttons, links and the mark: a CSS hex
	// colour, #rgb or #rrggbb. Text on it is black or white, whichever
	// contrasts more. Default #4338ca.
	Accent string
}

// defaultAccent is oauthgate's own indigo.
const defaultAccent = "#4338ca"

// maxBrandName bounds the platform name shown in titles and headings.
const maxBrandName = 64

// ValidateBrand checks the platform name and its branding: only what can
// be shown safely and legibly passes. The accent colour goes into a
// stylesheet and the logo into an img src and the CSP, so both are held
// to a strict grammar rather than escaped.
func ValidateBrand(name string, b Branding) error {
	if utf8.RuneCountInString(name) > maxBrandName || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("brand %q: at most %d characters, no control characters", name, maxBrandName)
	}
	if b.Accent != "" {
		if _, ok := parseHexColour(b.Accent); !ok {
			return fmt.Errorf("brand accent %q: want a CSS hex colour such as #0a7cff or #07f", b.Accent)
		}
	}
	if b.Mark != "" {
		n := utf8.RuneCountInString(b.Mark)
		if n < 1 || n > 3 || strings.IndexFunc(b.Mark, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 {
			return fmt.Errorf("brand mark %q: want one to three letters or digits", b.Mark)
		}
	}
	if b.Logo != "" {
		if _, err := logoSource(b.Logo); err != nil {
			return fmt.Errorf("brand logo %q: %w", b.Logo, err)
		}
	}
	return nil
}

// logoSource checks a logo address and returns the CSP source it needs:
// "" for a path on this site, the https origin otherwise.
func logoSource(raw string) (string, error) {
	if len(raw) > 2048 {
		return "", errors.New("too long")
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7f || r == '\\' || r == '"' || r == '\'' || r == '<' || r == '>' || r == '`' || r > 0x7e {
			return "", errors.New("must be a plain URL: no spaces, quotes, backslashes or non-ASCII characters")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", errors.New("must not have a fragment")
	}
	switch {
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//"):
		return "", nil
	case u.Scheme == "https" && u.Host != "" && u.User == nil && u.Opaque == "":
		host := u.Hostname()
		if host == "" || strings.IndexFunc(host, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-')
		}) >= 0 {
			return "", errors.New("host must be a DNS name or IPv4 address")
		}
		origin := "https://" + host
		if p := u.Port(); p != "" {
			origin += ":" + p
		}
		return origin, nil
	}
	return "", errors.New("must be an https URL or an absolute path on this site")
}

// rgb is a colour with channels in [0, 1].
type rgb struct{ r, g, b float64 }

// parseHexColour accepts exactly #rgb or #rrggbb.
func parseHexColour(s string) (rgb, bool) {
	if len(s) != 4 && len(s) != 7 || s[0] != '#' {
		return rgb{}, false
	}
	h := s[1:]
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 3 {
		return rgb{}, false
	}
	return rgb{float64(b[0]) / 255, float64(b[1]) / 255, float64(b[2]) / 255}, true
}

func (c rgb) hex() string {
	ch := func(v float64) byte { return byte(math.Round(math.Max(0, math.Min(1, v)) * 255)) }
	return "#" + hex.EncodeToString([]byte{ch(c.r), ch(c.g), ch(c.b)})
}

// luminance is WCAG 2's relative luminance.
func (c rgb) luminance() float64 {
	lin := func(v float64) float64 {
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.r) + 0.7152*lin(c.g) + 0.0722*lin(c.b)
}

// contrast is WCAG 2's contrast ratio of two colours.
func contrast(a, b rgb) float64 {
	la, lb := a.luminance(), b.luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// mix moves c toward to by t in [0, 1].
func (c rgb) mix(to rgb, t float64) rgb {
	return rgb{c.r + (to.r-c.r)*t, c.g + (to.g-c.g)*t, c.b + (to.b-c.b)*t}
}

var (
	white = rgb{1, 1, 1}
	black = rgb{0, 0, 0}
	// ink is the pages' text colour, used on light accents.
	ink = rgb{0x16 / 255.0, 0x1a / 255.0, 0x2b / 255.0}
)

// palette is what the pages derive from the accent colour.
type palette struct {
	Accent, Hover, Soft, OnAccent, Text, Ring string
	// Backdrop tints the page's background glow.
	Backdrop string
}

// paletteFor derives a legible palette from accent: text on the accent is
// black or white by contrast; the accent used as text on white (links,
// initials) is darkened until it reaches 4.5:1 (WCAG AA).
func paletteFor(accent string) palette {
	c, ok := parseHexColour(accent)
	if !ok {
		c, _ = parseHexColour(defaultAccent)
	}
	// The pages' ink where it is legible, else pure black; white when it
	// contrasts more. One of black and white always reaches 4.58:1.
	on := white
	switch {
	case contrast(c, white) >= contrast(c, black):
	case contrast(c, ink) >= 4.5:
		on = ink
	default:
		on = black
	}
	round := func(c rgb) rgb { r, _ := parseHexColour(c.hex()); return r }
	c = round(c)
	soft := round(c.mix(white, 0.9))
	text := c
	for i := 0; i < 40 && (contrast(text, white) < 4.5 || contrast(text, soft) < 4.5); i++ {
		text = round(text.mix(black, 0.06))
	}
	ch := func(v float64) int { return int(math.Round(v * 255)) }
	return palette{
		Accent:   c.hex(),
		Hover:    c.mix(black, 0.14).hex(),
		Soft:     soft.hex(),
		OnAccent: on.hex(),
		Text:     text.hex(),
		Ring:     fmt.Sprintf("rgba(%d, %d, %d, .28)", ch(c.r), ch(c.g), ch(c.b)),
		Backdrop: c.mix(rgb{0xf3 / 255.0, 0xf4 / 255.0, 0xf8 / 255.0}, 0.84).hex(),
	}
}

// brandCSS is the stylesheet that sets the pages' accent variables. Every
// value in it is computed here from a validated colour, so nothing the
// configuration says reaches the CSS as text.
func brandCSS(accent string) []byte {
	p := paletteFor(accent)
	return []byte(":root {\n" +
		"  --primary: " + p.Accent + ";\n" +
		"  --primary-hover: " + p.Hover + ";\n" +
		"  --primary-soft: " + p.Soft + ";\n" +
		"  --on-primary: " + p.OnAccent + ";\n" +
		"  --primary-text: " + p.Text + ";\n" +
		"  --ring: " + p.Ring + ";\n" +
		"  --bg-accent: " + p.Backdrop + ";\n" +
		"}\n")
}

// brandView is what the layout shows of the platform.
type brandView struct {
	Name string
	// Logo, when set, is shown instead of the mark.
	Logo string
	// Mark is drawn in the accent colour; empty means oauthgate's shield.
	Mark string
}

// initBrand prepares the brand's stylesheet and view, and the CSP the pages
// need for the logo.
func (s *Server) initBrand() error {
	b := s.cfg.Branding
	if err := ValidateBrand(s.cfg.Brand, b); err != nil {
		return err
	}
	src, _ := logoSource(b.Logo)
	imgSrc := "img-src 'self' data:"
	if src != "" {
		imgSrc += " " + src
	}
	s.pages.csp = "default-src 'none'; style-src 'self'; " + imgSrc + "; base-uri 'none'; frame-ancestors 'none'"
	css := brandCSS(b.Accent)
	sum := sha256.Sum256(css)
	s.pages.assets["brand.css"] = css
	s.pages.brandCSS = "brand.css?v=" + hex.EncodeToString(sum[:6])
	s.pages.brand = brandView{Name: s.cfg.Brand, Logo: b.Logo, Mark: b.Mark}
	if b.Logo == "" && b.Mark == "" && s.cfg.Brand != "oauthgate" {
		s.pages.brand.Mark = brandInitials(s.cfg.Brand)
	}
	return nil
}

// brandInitials makes a mark of a brand name: the first letters of its
// first two words, or of a single word and its next capital ("YionStack"
// is YS, "yAppointment" yA).
func brandInitials(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	var out []rune
	switch len(words) {
	case 0:
		return ""
	case 1:
		rs := []rune(words[0])
		out = append(out, rs[0])
		for _, r := range rs[1:] {
			if unicode.IsUpper(r) {
				// The brand's own capitals, as written.
				return string(append(out, r))
			}
		}
	default:
		out = append(out, []rune(words[0])[0], []rune(words[1])[0])
	}
	return strings.ToUpper(string(out))
}
