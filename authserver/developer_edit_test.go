package authserver

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
)

// linkMidway is the store with an app's business link (LinkCreatedBusiness,
// as oauth_protect makes it on a creation route) committed just before each
// client write: after the page read the client, before it stores the edit.
type linkMidway struct {
	Store
	t      *testing.T
	client string
	next   []string // the businesses to link, one per write
}

func (l *linkMidway) linkOne() {
	if len(l.next) == 0 {
		return
	}
	b := l.next[0]
	l.next = l.next[1:]
	linker, ok := l.Store.(interface {
		LinkCreatedBusiness(ctx context.Context, clientID, businessID string, now time.Time) (tokenstore.LinkOutcome, error)
	})
	if !ok {
		l.t.Fatal("the rig's store cannot link businesses")
	}
	if _, err := linker.LinkCreatedBusiness(context.Background(), l.client, b, time.Now()); err != nil {
		l.t.Fatal(err)
	}
}

func (l *linkMidway) UpdateClient(ctx context.Context, c *tokenstore.Client) error {
	l.linkOne()
	return l.Store.UpdateClient(ctx, c)
}

func (l *linkMidway) EditClient(ctx context.Context, id string, edit func(c *tokenstore.Client) error) (*tokenstore.Client, error) {
	l.linkOne()
	return l.Store.EditClient(ctx, id, edit)
}

// TestPortalEditKeepsLinks: an edit, a secret rotation and a first-party
// mark made on the developer portal while the app links a business it
// created keep that business (the edit is made under the client's row
// lock, not written back from what the page read).
func TestPortalEditKeepsLinks(t *testing.T) {
	p := newPortal(t, DeveloperPortal{})
	dev, root := p.browserOf(p.user.ID), p.browserOf(p.root.ID)
	id, _ := dev.register()
	app := "/oauth/developer/apps/" + id
	p.s.store = &linkMidway{Store: p.s.store, t: t, client: id, next: []string{"cmp_1", "cmp_2", "cmp_3"}}

	for _, tt := range []struct {
		what string
		b    *browser
		path string
		form url.Values
		want int
	}{
		{"edit", dev, app, url.Values{"csrf_token": {dev.csrf()}, "name": {"Ledgerly Books"}, "redirect_uris": {"https://ledgerly.example/v2/cb"}}, http.StatusSeeOther},
		{"rotate", dev, app + "/secret", url.Values{"csrf_token": {dev.csrf()}}, http.StatusOK},
		{"first-party", root, app + "/first-party", url.Values{"csrf_token": {root.csrf()}, "first_party": {"on"}}, http.StatusSeeOther},
	} {
		if resp := tt.b.post(tt.path, tt.form); resp.Code != tt.want {
			t.Fatalf("%s: %d %s", tt.what, resp.Code, resp.Body)
		}
	}
	c, err := p.s.store.GetClient(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Businesses, []string{"cmp_1", "cmp_2", "cmp_3"}) {
		t.Errorf("after the portal's edits the app owns %v; want the three it linked meanwhile", c.Businesses)
	}
	if c.Name != "Ledgerly Books" || !c.FirstParty {
		t.Errorf("the portal's edits were not all stored: %+v", c)
	}
}
