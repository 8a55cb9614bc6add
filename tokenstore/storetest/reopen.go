package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// RunReopen checks what only survives a restart: nodes migrating one fresh
// database together, data outliving Close, and re-opening an up-to-date
// database. cfg must name a fresh, empty database.
func RunReopen(t *testing.T, cfg tokenstore.Config) {
	ctx := t.Context()

	// Nodes starting together all open the new database.
	const nodes = 4
	stores := make([]tokenstore.Store, nodes)
	errs := race(nodes, func(i int) error {
		var err error
		stores[i], err = tokenstore.Open(ctx, cfg)
		return err
	})
	for i, err := range errs {
		check(t, fmt.Sprint("Open node ", i), err)
	}
	for _, s := range stores {
		check(t, "Close", s.Close())
	}

	s, err := tokenstore.Open(ctx, cfg)
	check(t, "Open", err)
	client := sampleClient("c1")
	key := sampleKey("k1", at(0))
	grant := sampleGrant("g1", "c1", "u1", at(0))
	rt := sampleRefresh("rt", "g1", time.Hour)
	user := sampleUser("u1", "u1@example.com")
	check(t, "CreateClient", s.CreateClient(ctx, client))
	_, err = s.InitKey(ctx, key)
	check(t, "InitKey", err)
	check(t, "CreateGrant", s.CreateGrant(ctx, grant, rt))
	check(t, "CreateUser", s.CreateUser(ctx, user))
	seq := last(t, s)
	check(t, "Close", s.Close())
	check(t, "Close twice", s.Close())

	for range 2 {
		s, err := tokenstore.Open(ctx, cfg)
		check(t, "re-Open", err)
		got, err := s.GetClient(ctx, "c1")
		check(t, "GetClient", err)
		equal(t, "client after re-open", got, client)
		keys, err := s.ListKeys(ctx)
		check(t, "ListKeys", err)
		equal(t, "keys after re-open", keys, []*tokenstore.Key{key})
		g, err := s.GetGrant(ctx, "g1")
		check(t, "GetGrant", err)
		equal(t, "grant after re-open", g, grant)
		r, err := s.GetRefreshToken(ctx, rt.Hash)
		check(t, "GetRefreshToken", err)
		equal(t, "refresh token after re-open", r, rt)
		u, err := s.GetUser(ctx, "u1")
		check(t, "GetUser", err)
		equal(t, "user after re-open", u, user)
		equal(t, "LastChange after re-open", last(t, s), seq)
		check(t, "Close", s.Close())
	}
}
