// Package policies decides, for every proxied request, which rule of the
// oauth_protect route map governs it, whether the token's scopes satisfy that
// rule, and which business the request acts for.
//
// Rules are compiled once at config load into a Policy. Match, Route.Missing,
// CleanPath, ValidBusinessID and Tenancy.Resolve then run on the hot path:
// they do no I/O and no allocation of their own. Every decision fails closed: no matching
// rule, a nil Route, a nil ownership check or an unknown mode denies.
//
// # Path patterns
//
// A pattern is compared byte for byte, case-sensitively, with the raw path
// handed to Match: no decoding and no cleaning happen here, so "%2e" is three
// literal characters. Callers reject non-canonical paths with CleanPath first,
// so that "/public/../admin" cannot reach a more permissive rule than
// "/admin". A pattern has one of these forms, or combines them:
//
//	/api/v1/me                       exact: that path only.
//	/api/v1/accounting/invoices*     prefix: a final "*" matches any suffix,
//	                                 including the empty one and one that does
//	                                 not start with "/". This pattern matches
//	                                 /api/v1/accounting/invoices,
//	                                 /api/v1/accounting/invoices/42 and also
//	                                 /api/v1/accounting/invoices-archive.
//	/api/v1/accounting/invoices/*    prefix that requires the slash: matches
//	                                 /api/v1/accounting/invoices/ and every path
//	                                 below it, not /api/v1/accounting/invoices.
//	/api/v1/businesses/*/invoices    a "*" forming a whole segment before the
//	                                 end matches exactly one non-empty segment.
//
// Any other "*" (as in /a*b, /a/*b or /a/**) is a compile error, as is a pattern that
// does not start with "/", is not canonical in the sense of CleanPath, or holds
// a space, a control character, '?' or '#' (which can never be part of a path).
//
// # Methods
//
// Methods are case-sensitive tokens, written in upper case; "*" alone means
// every method, including ones no other rule names. A rule listing GET also
// governs HEAD for the same pattern unless another rule lists HEAD for that
// exact pattern, so HEAD sees what GET sees. Two rules may not both govern one
// method of one pattern ("*" overlaps every method): Compile rejects that
// rather than letting rule order decide silently.
//
// # Selection
//
// Only rules whose methods include the request method are considered; a rule
// whose pattern matches but whose methods do not is ignored, never a reason to
// deny by itself. Among the rest the most specific pattern wins: an exact
// pattern beats every wildcard; then the pattern with more literal (non-"*")
// bytes; then the rule that comes first. When no rule is left, Match returns
// nil and the caller denies.
package policies
