package policies

// TenancyMode says what happens when a request does not name its business.
type TenancyMode int

// Tenancy modes. Required is the zero value so that an unconfigured mode is
// the strict one; an unknown mode behaves as Required.
const (
	// Required: the request must name its business in the header.
	Required TenancyMode = iota
	// Inject: without the header, act for the token's bound business, if it
	// has one. A token bound to no business (client credentials) must
	// still name one, however many its client owns.
	Inject
	// Off: no tenancy check; a well-formed header is still passed on.
	Off
)

// String returns the mode's configuration name: "required", "inject" or
// "off".
func (m TenancyMode) String() string {
	switch m {
	case Required:
		return "required"
	case Inject:
		return "inject"
	case Off:
		return "off"
	}
	return "invalid"
}

// Tenancy is the oauth_protect tenancy rule. Its zero value (and a nil
// *Tenancy) requires a header.
type Tenancy struct {
	// Header names the request header carrying the business id, usually
	// x-business-id. The caller reads it; Resolve only sees its value.
	Header string
	// Mode defaults to Required.
	Mode TenancyMode
}

// maxBusinessID bounds ids so a header cannot smuggle an arbitrary blob
// upstream.
const maxBusinessID = 128

// ValidBusinessID reports whether s is an acceptable business id: 1 to 128
// bytes of ASCII letters, digits, '.', '_', ':' and '-', and neither "." nor
// "..". Anything else (lists such as "a,b", spaces, control characters,
// non-ASCII) is refused rather than interpreted, and "." and ".." are refused
// because upstreams may put the id in a path.
func ValidBusinessID(s string) bool {
	if len(s) == 0 || len(s) > maxBusinessID || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// Resolve decides which business a request acts for and returns the id to
// forward upstream. header is the request header's value ("" when absent;
// the caller must refuse or join repeated headers so that they fail
// validation). bound is the one business the token is bound to, "" for none
// (as with client-credentials tokens). owns reports whether the token's
// client owns a business; a nil owns owns nothing.
//
// A present header must be well formed and equal bound, or, without bound,
// be owned by the client. An absent header is NoBusiness unless the mode is
// Inject and the token is bound. An unbound token must name its business
// even when its client owns exactly one: which business a request acts for
// must not depend on how many the client owns at that moment (the next one
// it creates or is linked to would turn the same request into a refusal,
// and nodes whose client caches differ for a moment would disagree), so
// owns is never called for an absent header. Off checks only the header's
// form. The business is "" unless the outcome is Allow.
func (t *Tenancy) Resolve(header, bound string, owns func(string) bool) (business string, out Outcome) {
	mode := Required
	if t != nil {
		mode = t.Mode
	}
	if header == "" {
		switch {
		case mode == Off:
			return "", Allow
		case mode == Inject && bound != "":
			if !ValidBusinessID(bound) {
				return "", BadBusiness
			}
			return bound, Allow
		}
		return "", NoBusiness
	}
	if !ValidBusinessID(header) {
		return "", BadBusiness
	}
	switch {
	case mode == Off:
	case bound != "":
		if header != bound {
			return "", ForeignBusiness
		}
	case owns == nil || !owns(header):
		return "", ForeignBusiness
	}
	return header, Allow
}
