package authserver

import (
	"slices"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// Remembered consent and RFC 8707 resources.
//
// A consent is remembered as scopes and resources. A request may skip the
// consent page only if the consent covers both:
//
//   - a consent given without a resource (Resources empty) has no limit: it
//     covers a request for any resources, or for none;
//   - a consent limited to resources covers a request for some of them only;
//     a request without a resource is not covered, since its tokens carry
//     the default audience, which every oauth_protect accepts, which is
//     more than the user was shown ("limited to …");
//   - a consent remembered before resources were recorded
//     (ResourcesUnknown) covers nothing: the user consents once more.

// consentCovers reports whether the remembered consent c covers the scopes
// and resources of req.
func consentCovers(c *tokenstore.Consent, req *authzRequest) bool {
	if c.ResourcesUnknown || !covers(c.Scopes, req.scopes) {
		return false
	}
	if len(c.Resources) == 0 {
		return true
	}
	return len(req.resources) > 0 && covers(c.Resources, req.resources)
}

// mergeConsent combines a remembered consent old with the one just given
// (scopes, resources) into what is remembered next. A consent stands for
// every scope of it on every resource of it, so the two are joined only
// where that stays true of what the user allowed: one containing the
// other, the same resources (scopes joined), or the same scopes
// (resources joined). Otherwise the new consent replaces the old: asking
// again later is safe, claiming more than was allowed is not.
func mergeConsent(old *tokenstore.Consent, scopes, resources []string) ([]string, []string) {
	if old == nil || old.ResourcesUnknown {
		return scopes, resources
	}
	sameScopes := covers(old.Scopes, scopes) && covers(scopes, old.Scopes)
	sameResources := resourcesWithin(old.Resources, resources) && resourcesWithin(resources, old.Resources)
	switch {
	case covers(old.Scopes, scopes) && resourcesWithin(old.Resources, resources):
		return slices.Clone(old.Scopes), slices.Clone(old.Resources)
	case covers(scopes, old.Scopes) && resourcesWithin(resources, old.Resources):
		return scopes, resources
	case sameResources:
		return union(scopes, old.Scopes), resources
	case sameScopes:
		return scopes, union(resources, old.Resources)
	}
	return scopes, resources
}

// resourcesWithin reports whether a consent limited to granted (empty: no
// limit) covers a request for wanted (empty: no resource).
func resourcesWithin(granted, wanted []string) bool {
	if len(granted) == 0 {
		return true
	}
	return len(wanted) > 0 && covers(granted, wanted)
}

// union returns a followed by the values of b not in a.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
