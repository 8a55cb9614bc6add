package policies

// Outcome is the verdict on one request. Allow is deliberately not the zero
// value: an Outcome left unset denies.
type Outcome int

// Outcomes. Only Allow lets a request through.
const (
	Allow           Outcome = iota + 1 // the request may proceed
	NoRoute                            // no rule governs the method and path
	MissingScope                       // the token lacks a scope the rule requires
	NoBusiness                         // the business header is required but absent or empty
	BadBusiness                        // the business id is malformed
	ForeignBusiness                    // the token may not act for that business
)

var outcomeNames = [...]string{
	Allow:           "allow",
	NoRoute:         "no_route",
	MissingScope:    "missing_scope",
	NoBusiness:      "no_business",
	BadBusiness:     "bad_business",
	ForeignBusiness: "foreign_business",
}

// String returns a fixed lower_snake name, suitable as a metrics label;
// "invalid" for the zero value and anything unknown.
func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "invalid"
}
