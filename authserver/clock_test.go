package authserver

import "github.com/oauthgate/oauthgate/internal/clocktest"

// fakeClock is shared by a test's Server and token service so lifetimes can
// be crossed without sleeping.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New() }
