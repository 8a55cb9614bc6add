package policies

import (
	"strings"
	"testing"
)

func TestValidBusinessID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"biz_1", true},
		{"a", true},
		{"AZaz09._:-", true},
		{"urn:biz:0f3c-77", true},
		{"...", true},
		{strings.Repeat("x", 128), true},
		{"", false},
		{strings.Repeat("x", 129), false},
		{"a,b", false},
		{"a b", false},
		{" a", false},
		{"a\t", false},
		{"ü", false},
		{"\x00", false},
		{"a\r\nX-Injected: 1", false},
		{"../x", false},
		{"a/b", false},
		{".", false},
		{"..", false},
		{`"a"`, false},
		{"a;b", false},
	}
	for _, tt := range tests {
		if got := ValidBusinessID(tt.id); got != tt.want {
			t.Errorf("ValidBusinessID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	owns := func(ids ...string) func(string) bool {
		return func(id string) bool {
			for _, s := range ids {
				if s == id {
					return true
				}
			}
			return false
		}
	}
	tests := []struct {
		name   string
		mode   TenancyMode
		header string
		bound  string
		owns   func(string) bool
		want   string
		out    Outcome
	}{
		// Header present: the same in Required and Inject.
		{"user token acting for its business", Required, "b1", "b1", nil, "b1", Allow},
		{"user token, another business", Required, "b2", "b1", owns("b2"), "", ForeignBusiness},
		{"user token, ids compare exactly", Required, "B1", "b1", nil, "", ForeignBusiness},
		{"client token, owned business", Required, "b2", "", owns("b1", "b2"), "b2", Allow},
		{"client token, business not owned", Required, "b3", "", owns("b1", "b2"), "", ForeignBusiness},
		{"client token, no ownership check", Required, "b1", "", nil, "", ForeignBusiness},
		{"inject mode, header present and bound", Inject, "b1", "b1", nil, "b1", Allow},
		{"inject mode, header disagrees with bound", Inject, "b2", "b1", nil, "", ForeignBusiness},
		{"inject mode, client token, owned", Inject, "b2", "", owns("b2"), "b2", Allow},
		{"malformed header before anything else", Required, "b1,b2", "b1", owns("b1"), "", BadBusiness},
		{"header too long", Required, strings.Repeat("b", 129), "", owns(strings.Repeat("b", 129)), "", BadBusiness},
		{"header with a space", Inject, "b 1", "b 1", nil, "", BadBusiness},
		{"header not ASCII", Required, "ü", "ü", nil, "", BadBusiness},
		{"header with NUL", Required, "\x00", "", nil, "", BadBusiness},
		{"header with a path", Required, "../x", "../x", nil, "", BadBusiness},

		// Header absent.
		{"required, absent", Required, "", "b1", owns("b1"), "", NoBusiness},
		{"inject, bound token", Inject, "", "b1", nil, "b1", Allow},
		{"inject, client token owning several cannot be guessed", Inject, "", "", owns("b1", "b2"), "", NoBusiness},
		{"inject, client token owning exactly one must still name it", Inject, "", "", owns("b1"), "", NoBusiness},
		{"inject, client token owning none", Inject, "", "", owns(), "", NoBusiness},
		{"inject, client token naming its only business", Inject, "b1", "", owns("b1"), "b1", Allow},
		{"inject, header naming the bound business is kept", Inject, "b1", "b1", owns(), "b1", Allow},
		{"inject, malformed bound business", Inject, "", "b,1", nil, "", BadBusiness},

		// Off.
		{"off, absent", Off, "", "b1", nil, "", Allow},
		{"off, present is passed on", Off, "b9", "b1", nil, "b9", Allow},
		{"off, malformed is still refused", Off, "b 9", "", nil, "", BadBusiness},

		// Unknown modes are as strict as Required.
		{"unknown mode, absent", TenancyMode(42), "", "b1", nil, "", NoBusiness},
		{"unknown mode, foreign", TenancyMode(42), "b2", "b1", nil, "", ForeignBusiness},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenancy := &Tenancy{Header: "x-business-id", Mode: tt.mode}
			got, out := tenancy.Resolve(tt.header, tt.bound, tt.owns)
			if got != tt.want || out != tt.out {
				t.Errorf("Resolve(%q, %q) = %q, %v; want %q, %v", tt.header, tt.bound, got, out, tt.want, tt.out)
			}
		})
	}
}

// An absent header never asks who owns what: in no mode does the answer
// depend on the client's businesses, so a store outage cannot change it.
func TestResolveAbsentHeaderLooksNothingUp(t *testing.T) {
	for _, mode := range []TenancyMode{Required, Inject, Off} {
		for _, bound := range []string{"", "b1"} {
			calls := 0
			owns := func(string) bool { calls++; return true }
			(&Tenancy{Mode: mode}).Resolve("", bound, owns)
			if calls != 0 {
				t.Errorf("mode %v, bound %q: %d ownership lookups for an absent header", mode, bound, calls)
			}
		}
	}
}

func TestTenancyZeroValueIsRequired(t *testing.T) {
	var zero Tenancy
	if _, out := zero.Resolve("", "b1", nil); out != NoBusiness {
		t.Errorf("zero Tenancy, absent header: %v, want %v", out, NoBusiness)
	}
	var none *Tenancy
	if _, out := none.Resolve("", "b1", nil); out != NoBusiness {
		t.Errorf("nil Tenancy, absent header: %v, want %v", out, NoBusiness)
	}
	if _, out := none.Resolve("b1", "b1", nil); out != Allow {
		t.Errorf("nil Tenancy, bound header: %v, want %v", out, Allow)
	}
}

func TestOutcomeString(t *testing.T) {
	tests := []struct {
		out  Outcome
		want string
	}{
		{Allow, "allow"},
		{NoRoute, "no_route"},
		{MissingScope, "missing_scope"},
		{NoBusiness, "no_business"},
		{BadBusiness, "bad_business"},
		{ForeignBusiness, "foreign_business"},
		{0, "invalid"},
		{-1, "invalid"},
		{ForeignBusiness + 1, "invalid"},
	}
	for _, tt := range tests {
		if got := tt.out.String(); got != tt.want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(tt.out), got, tt.want)
		}
	}
	var unset Outcome
	if unset == Allow {
		t.Error("the zero Outcome allows")
	}
}

func TestTenancyModeString(t *testing.T) {
	for mode, want := range map[TenancyMode]string{Required: "required", Inject: "inject", Off: "off", 9: "invalid"} {
		if got := mode.String(); got != want {
			t.Errorf("TenancyMode(%d).String() = %q, want %q", int(mode), got, want)
		}
	}
}
