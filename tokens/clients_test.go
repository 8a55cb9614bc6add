package tokens

import (
	"errors"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

func TestClientCache(t *testing.T) {
	st := &flakyStore{Store: openStore(t)}
	static := &tokenstore.Client{ID: "static-app", Name: "From config", Businesses: []string{"biz-s"}}
	shadow := &tokenstore.Client{ID: "static-app", Name: "Stored"}
	if err := st.CreateClient(t.Context(), shadow); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(t.Context(), &tokenstore.Client{ID: "app-1", Name: "One", Businesses: []string{"biz-1", "biz-2"}}); err != nil {
		t.Fatal(err)
	}
	s := newService(t, st, Config{StaticClients: []*tokenstore.Client{static}, PollInterval: 10 * time.Millisecond})

	if c, err := s.Client(t.Context(), "static-app"); err != nil || c.Name != "From config" {
		t.Errorf("static client = %+v, %v; want the configured one", c, err)
	}
	if c, err := s.Client(t.Context(), "app-1"); err != nil || c.Name != "One" {
		t.Errorf("stored client = %+v, %v", c, err)
	}
	for _, tt := range []struct {
		client, business string
		want             bool
	}{
		{"app-1", "biz-1", true},
		{"app-1", "biz-2", true},
		{"app-1", "biz-3", false},
		{"app-1", "", false},
		{"static-app", "biz-s", true},
		{"nobody", "biz-1", false},
	} {
		got, err := s.ClientOwns(t.Context(), tt.client, tt.business)
		if err != nil || got != tt.want {
			t.Errorf("ClientOwns(%q, %q) = %v, %v; want %v", tt.client, tt.business, got, err, tt.want)
		}
	}
	if _, err := s.Client(t.Context(), "nobody"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("unknown client: %v", err)
	}

	// Positive and negative entries are cached: no more store reads.
	reads := st.clientReads.Load()
	for range 100 {
		s.ClientOwns(t.Context(), "app-1", "biz-1")
		s.Client(t.Context(), "nobody")
	}
	if n := st.clientReads.Load() - reads; n != 0 {
		t.Errorf("%d store reads for cached clients", n)
	}

	// Changes made anywhere reach the cache through the feed.
	if err := st.CreateClient(t.Context(), &tokenstore.Client{ID: "nobody", Name: "Now someone"}); err != nil {
		t.Fatal(err)
	}
	upd := &tokenstore.Client{ID: "app-1", Name: "One", Businesses: []string{"biz-3"}}
	if err := st.UpdateClient(t.Context(), upd); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "client changes through the feed", func() bool {
		c, err := s.Client(t.Context(), "nobody")
		owns, _ := s.ClientOwns(t.Context(), "app-1", "biz-3")
		owned, _ := s.ClientOwns(t.Context(), "app-1", "biz-1")
		return err == nil && c.Name == "Now someone" && owns && !owned
	})
	if _, err := st.DeleteClient(t.Context(), "app-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "client deletion through the feed", func() bool {
		_, err := s.Client(t.Context(), "app-1")
		return errors.Is(err, tokenstore.ErrNotFound)
	})
}

func TestStaticClientsValidated(t *testing.T) {
	st := openStore(t)
	for _, cs := range [][]*tokenstore.Client{
		{{ID: ""}},
		{{ID: "a"}, {ID: "a"}},
		{nil},
	} {
		if _, err := New(t.Context(), st, Config{Issuer: testIssuer, StaticClients: cs}); err == nil {
			t.Errorf("New accepted static clients %v", cs)
		}
	}
}
