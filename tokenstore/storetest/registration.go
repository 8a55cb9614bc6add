package storetest

import (
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// testRegistrations: a self-registered client is stored with its
// registration in one step, read, updated with it, and deleted with it;
// an operator's client has none.
func testRegistrations(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	c := sampleClient("dyn1")
	reg := &tokenstore.Registration{ClientID: "dyn1", TokenHash: hash("rat-1"),
		Metadata: []byte(`{"client_uri":"https://app.example"}`), CreatedAt: at(0)}
	check(t, "RegisterClient", s.RegisterClient(ctx, c, reg))
	got, err := s.GetRegistration(ctx, "dyn1")
	check(t, "GetRegistration", err)
	equal(t, "registration", got, reg)
	gc, err := s.GetClient(ctx, "dyn1")
	check(t, "GetClient", err)
	equal(t, "registered client", gc, c)

	wantErr(t, "RegisterClient twice", s.RegisterClient(ctx, sampleClient("dyn1"),
		&tokenstore.Registration{ClientID: "dyn1", TokenHash: hash("x")}), tokenstore.ErrConflict)
	// A failed registration leaves nothing behind: an existing client id
	// with no registration row refuses, and no registration appears.
	check(t, "CreateClient", s.CreateClient(ctx, sampleClient("plain")))
	wantErr(t, "RegisterClient over an operator's client", s.RegisterClient(ctx, sampleClient("plain"),
		&tokenstore.Registration{ClientID: "plain", TokenHash: hash("x")}), tokenstore.ErrConflict)
	_, err = s.GetRegistration(ctx, "plain")
	wantErr(t, "GetRegistration of an operator's client", err, tokenstore.ErrNotFound)

	c.Name, c.UpdatedAt = "Renamed", at(time.Minute)
	reg.TokenHash, reg.Metadata = hash("rat-2"), []byte(`{}`)
	check(t, "UpdateRegisteredClient", s.UpdateRegisteredClient(ctx, c, reg))
	got, err = s.GetRegistration(ctx, "dyn1")
	check(t, "GetRegistration", err)
	equal(t, "updated registration", got, reg)
	gc, err = s.GetClient(ctx, "dyn1")
	check(t, "GetClient", err)
	equal(t, "updated client", gc.Name, "Renamed")
	p := sampleClient("plain")
	wantErr(t, "UpdateRegisteredClient of an operator's client", s.UpdateRegisteredClient(ctx, p,
		&tokenstore.Registration{ClientID: "plain", TokenHash: hash("x")}), tokenstore.ErrNotFound)

	_, err = s.DeleteClient(ctx, "dyn1", at(time.Hour))
	check(t, "DeleteClient", err)
	_, err = s.GetRegistration(ctx, "dyn1")
	wantErr(t, "GetRegistration after DeleteClient", err, tokenstore.ErrNotFound)
	// Registered again under the same id, it inherits nothing.
	check(t, "RegisterClient again", s.RegisterClient(ctx, sampleClient("dyn1"),
		&tokenstore.Registration{ClientID: "dyn1", TokenHash: hash("rat-3")}))
}
