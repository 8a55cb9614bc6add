package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// testLinkCreatedBusiness: one row per rule of LinkCreatedBusiness.
func testLinkCreatedBusiness(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	a, b := sampleClient("a"), sampleClient("b")
	a.Businesses, b.Businesses = nil, []string{"pre_linked"}
	check(t, "CreateClient", s.CreateClient(ctx, a))
	check(t, "CreateClient", s.CreateClient(ctx, b))
	check(t, "UpsertBusiness", s.UpsertBusiness(ctx, &tokenstore.Business{ID: "acme", Name: "Acme"}))

	seq := last(t, s)
	out, err := s.LinkCreatedBusiness(ctx, "a", "cmp_1", at(time.Minute))
	check(t, "LinkCreatedBusiness", err)
	equal(t, "new business", out, tokenstore.Linked)
	got, err := s.GetClient(ctx, "a")
	check(t, "GetClient", err)
	equal(t, "owned after the link", got.Businesses, []string{"cmp_1"})
	equal(t, "updated_at", got.UpdatedAt, at(time.Minute))
	biz, err := s.GetBusiness(ctx, "cmp_1")
	check(t, "GetBusiness", err)
	equal(t, "directory entry", biz, &tokenstore.Business{ID: "cmp_1", Name: "cmp_1", CreatedAt: at(time.Minute)})
	equal(t, "changes", changes(t, s, seq), []string{"client a"})

	// The same creation replayed links once and announces nothing.
	seq = last(t, s)
	out, err = s.LinkCreatedBusiness(ctx, "a", "cmp_1", at(2*time.Minute))
	check(t, "LinkCreatedBusiness again", err)
	equal(t, "replayed", out, tokenstore.AlreadyLinked)
	got, _ = s.GetClient(ctx, "a")
	equal(t, "owned after the replay", got.Businesses, []string{"cmp_1"})
	equal(t, "changes of a replay", changes(t, s, seq), []string(nil))

	// A second one is added in order.
	_, err = s.LinkCreatedBusiness(ctx, "a", "cmp_0", at(3*time.Minute))
	check(t, "LinkCreatedBusiness", err)
	got, _ = s.GetClient(ctx, "a")
	equal(t, "owned, sorted", got.Businesses, []string{"cmp_0", "cmp_1"})

	// Another client's business, in the directory or only in its list, and a
	// directory business nobody owns are not linked.
	for _, tc := range []struct{ client, business string }{
		{"b", "cmp_1"},      // a created it
		{"a", "pre_linked"}, // b owns it, not in the directory
		{"a", "pre.linked"}, // LIKE's '_' matches '.': the list decides
		{"a", "acme"},       // a directory business of users
	} {
		_, err := s.LinkCreatedBusiness(ctx, tc.client, tc.business, at(4*time.Minute))
		if tc.business == "pre.linked" {
			check(t, "LinkCreatedBusiness "+tc.business, err)
			continue
		}
		wantErr(t, fmt.Sprintf("LinkCreatedBusiness(%s, %s)", tc.client, tc.business), err, tokenstore.ErrConflict)
	}
	got, _ = s.GetClient(ctx, "a")
	equal(t, "owned after the refusals", got.Businesses, []string{"cmp_0", "cmp_1", "pre.linked"})
	got, _ = s.GetClient(ctx, "b")
	equal(t, "b's after the refusals", got.Businesses, []string{"pre_linked"})
	if _, err := s.GetBusiness(ctx, "pre_linked"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("a refused link left a directory entry: %v", err)
	}

	// The owner of an operator's link completes it: the directory entry is
	// added, the list is unchanged.
	out, err = s.LinkCreatedBusiness(ctx, "b", "pre_linked", at(5*time.Minute))
	check(t, "LinkCreatedBusiness by the owner", err)
	equal(t, "operator's link", out, tokenstore.AlreadyLinked)
	if _, err := s.GetBusiness(ctx, "pre_linked"); err != nil {
		t.Errorf("directory entry of a completed link: %v", err)
	}

	_, err = s.LinkCreatedBusiness(ctx, "nobody", "cmp_9", at(time.Minute))
	wantErr(t, "unknown client", err, tokenstore.ErrNotFound)
	if _, err := s.GetBusiness(ctx, "cmp_9"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("a link of an unknown client left a directory entry: %v", err)
	}
}

// testConcurrentLinkCreatedBusiness: clients racing to link one business id
// leave it with exactly one of them.
func testConcurrentLinkCreatedBusiness(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	for i := range contenders {
		c := sampleClient(fmt.Sprintf("c%02d", i))
		c.Businesses = nil
		check(t, "CreateClient", s.CreateClient(ctx, c))
	}
	warm(t, s)
	errs := race(contenders, func(i int) error {
		_, err := s.LinkCreatedBusiness(ctx, fmt.Sprintf("c%02d", i), "cmp_race", time.Now())
		return err
	})
	winners := 0
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
		case !errors.Is(err, tokenstore.ErrConflict):
			t.Fatalf("contender %d: %v, want ErrConflict", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d contenders linked the business, want 1", winners)
	}
	owners := 0
	list, err := s.ListClients(ctx)
	check(t, "ListClients", err)
	for _, c := range list {
		for _, b := range c.Businesses {
			if b == "cmp_race" {
				owners++
			}
		}
	}
	equal(t, "owners", owners, 1)
}

func testEditClient(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	check(t, "CreateClient", s.CreateClient(ctx, sampleClient("a")))
	seq := last(t, s)
	got, err := s.EditClient(ctx, "a", func(c *tokenstore.Client) error {
		c.Name = "Renamed"
		c.UpdatedAt = at(time.Hour)
		return nil
	})
	check(t, "EditClient", err)
	stored, _ := s.GetClient(ctx, "a")
	equal(t, "edited", stored, got)
	equal(t, "name", stored.Name, "Renamed")
	equal(t, "changes", changes(t, s, seq), []string{"client a"})

	refused := errors.New("refused by the caller")
	_, err = s.EditClient(ctx, "a", func(c *tokenstore.Client) error {
		c.Name = "Not stored"
		return refused
	})
	if err != refused {
		t.Fatalf("edit error: %v, want the caller's own", err)
	}
	stored, _ = s.GetClient(ctx, "a")
	equal(t, "name after a refused edit", stored.Name, "Renamed")
	_, err = s.EditClient(ctx, "nobody", func(*tokenstore.Client) error { return nil })
	wantErr(t, "EditClient unknown", err, tokenstore.ErrNotFound)
}

// testConcurrentEditAndLink: operators' edits racing apps' links lose no
// link.
func testConcurrentEditAndLink(t *testing.T, s tokenstore.Store) {
	ctx := t.Context()
	c := sampleClient("a")
	c.Businesses = nil
	check(t, "CreateClient", s.CreateClient(ctx, c))
	warm(t, s)
	errs := race(contenders, func(i int) error {
		if i%2 == 0 {
			_, err := s.LinkCreatedBusiness(ctx, "a", fmt.Sprintf("cmp_%02d", i), time.Now())
			return err
		}
		_, err := s.EditClient(ctx, "a", func(c *tokenstore.Client) error {
			c.Name = fmt.Sprintf("Edit %d", i)
			return nil
		})
		return err
	})
	for i, err := range errs {
		check(t, fmt.Sprintf("contender %d", i), err)
	}
	got, err := s.GetClient(ctx, "a")
	check(t, "GetClient", err)
	equal(t, "linked", len(got.Businesses), contenders/2)
}
