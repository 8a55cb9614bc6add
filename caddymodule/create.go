package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/oauthgate/oauthgate/bearer"
	"github.com/oauthgate/oauthgate/gateway"
	"github.com/oauthgate/oauthgate/internal/oautherr"
	"github.com/oauthgate/oauthgate/internal/promreg"
	"github.com/oauthgate/oauthgate/tokenstore"
)

// CreateConfig marks a route whose requests create a business, and says
// where the upstream's successful (2xx) answer names it. Such a request
// needs no tenant header (any is deleted) and only its route's scopes. The
// upstream's answer is held until the new business is linked to the
// calling client (client-credentials tokens), so the next request naming
// it passes; see docs/business-creation.md for every outcome.
type CreateConfig struct {
	// IDFrom is "json" (default: a member of the JSON body) or "location"
	// (the last path segment of the Location header).
	IDFrom string `json:"id_from,omitempty"`

	// Member is the JSON member holding the new id, with dots for nesting
	// ("data.id"). Default "id". Only with IDFrom "json".
	Member string `json:"member,omitempty"`

	// UserTokens is "refuse" (default: a user token on this route is
	// refused with 403 access_denied) or "pass" (it goes upstream, and
	// nothing is linked: a user's businesses are the platform's to manage).
	UserTokens string `json:"user_tokens,omitempty"`
}

// maxCreationAnswer bounds the answer held while the new business is
// linked; a larger one is refused with 502.
const maxCreationAnswer = 1 << 20

// linkRetryMax is the longest wait between two attempts to complete a
// link the store refused; the first waits a second, doubling.
const linkRetryMax = 30 * time.Second

// maxPendingLinks bounds the links waiting for the store on one handler.
const maxPendingLinks = 10_000

// creations is the creation-route state of one oauth_protect handler.
type creations struct {
	// sources is indexed by rule index; nil for a route that creates nothing.
	sources []*gateway.IDSource
	links   linkCounters

	mu      sync.Mutex
	pending map[string]bool // clientID + "\x00" + businessID, waiting for the store
}

// provisionCreation checks the routes' creation settings and fills
// cfg.Creating.
func (p *Protect) provisionCreation(cfg *gateway.Config) error {
	p.creations = &creations{}
	for i, rc := range p.Routes {
		c := rc.Creates
		if c == nil {
			continue
		}
		if rc.Public {
			return fmt.Errorf("route %s: a public route cannot create businesses", rc.Path)
		}
		src := &gateway.IDSource{}
		switch c.IDFrom {
		case "", "json":
			member := c.Member
			if member == "" {
				member = "id"
			}
			src.Member = strings.Split(member, ".")
			for _, m := range src.Member {
				if m == "" {
					return fmt.Errorf("route %s: creates member %q has an empty part", rc.Path, c.Member)
				}
			}
		case "location":
			if c.Member != "" {
				return fmt.Errorf("route %s: creates location takes no member", rc.Path)
			}
		default:
			return fmt.Errorf("route %s: creates id_from %q is not one of json, location", rc.Path, c.IDFrom)
		}
		mode := gateway.ClientsCreate
		switch c.UserTokens {
		case "", "refuse":
		case "pass":
			mode = gateway.AnyTokenCreates
		default:
			return fmt.Errorf("route %s: user_tokens %q is not one of refuse, pass", rc.Path, c.UserTokens)
		}
		if cfg.Creating == nil {
			cfg.Creating = make([]gateway.Creating, len(p.Routes))
			p.creations.sources = make([]*gateway.IDSource, len(p.Routes))
		}
		cfg.Creating[i] = mode
		p.creations.sources[i] = src
	}
	p.creations.links = p.app.metrics.linksFor()
	return nil
}

// cappedRecorder holds a successful answer, refusing to hold more than
// maxCreationAnswer bytes of it.
type cappedRecorder struct {
	caddyhttp.ResponseRecorder
	tooLarge bool
}

var errTooLarge = errors.New("creation answer too large to hold")

func (c *cappedRecorder) Write(b []byte) (int, error) {
	if c.ResponseRecorder.Buffered() && c.Size()+len(b) > maxCreationAnswer {
		c.tooLarge = true
		return 0, errTooLarge
	}
	return c.ResponseRecorder.Write(b)
}

func (c *cappedRecorder) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{c}, r)
}

// FlushError flushes an answer that is streamed (not 2xx) and does
// nothing to one that is held, as caddyhttp's recorder does.
func (c *cappedRecorder) FlushError() error {
	if f, ok := c.ResponseRecorder.(interface{ FlushError() error }); ok {
		return f.FlushError()
	}
	return nil
}

// create sends an allowed request of a creation route upstream and, for a
// successful answer, links the business it names to the calling client
// before the answer is released. Answers that are not 2xx pass through
// unheld, and nothing is linked.
func (p *Protect) create(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, d gateway.Decision) error {
	cr := p.creations
	// A client declared in the configuration owns what the configuration
	// says: refused before the upstream creates what it could not own.
	if rt := p.app.acquire(r.Context()); rt != nil {
		static := rt.tokens.StaticClient(d.Claims.ClientID)
		rt.release()
		if static {
			cr.links.refused.Inc()
			return p.creationError(w, oautherr.AccessDenied.WithDescription(
				"a client declared in the configuration cannot own businesses created through the gateway; declare them with the client"), "", "")
		}
	}
	// The id is read from the answer as sent: ask for it uncompressed.
	r.Header.Del("Accept-Encoding")
	var buf bytes.Buffer
	rec := &cappedRecorder{ResponseRecorder: caddyhttp.NewResponseRecorder(w, &buf, func(status int, _ http.Header) bool {
		return status >= 200 && status <= 299
	})}
	err := next.ServeHTTP(rec, r)
	if !rec.Buffered() || rec.Status() == 0 {
		if rec.Status() >= 300 {
			cr.links.upstreamRefused.Inc()
		}
		return err
	}
	client, pattern := d.Claims.ClientID, p.Routes[d.Rule].Path
	if err != nil || rec.tooLarge {
		cr.links.noID.Inc()
		p.logger.Error("the answer of a creation route could not be held; a business may exist upstream that no client owns",
			zap.String("route", pattern), zap.Int("status", rec.Status()), zap.String("client_id", client),
			zap.Bool("too_large", rec.tooLarge), zap.NamedError("upstream_error", err))
		return p.creationError(w, oautherr.InvalidUpstreamResponse.WithDescription(
			"the upstream's answer to this creation could not be read, so no business was linked"), "", "")
	}
	id, err := cr.sources[d.Rule].Find(w.Header(), buf.Bytes())
	if err != nil {
		cr.links.noID.Inc()
		// Never the body: it is the upstream's data, not ours to log.
		p.logger.Error("the answer of a creation route names no valid business id; nothing was linked",
			zap.String("route", pattern), zap.Int("status", rec.Status()), zap.String("client_id", client), zap.Error(err))
		return p.creationError(w, oautherr.InvalidUpstreamResponse.WithDescription(
			"the upstream answered "+http.StatusText(rec.Status())+" but "+strings.TrimPrefix(err.Error(), "the upstream's answer ")+
				", so no business was linked to this client"), "", "")
	}
	out, err := p.link(r.Context(), client, id)
	switch {
	case err == nil:
		if out == tokenstore.AlreadyLinked {
			cr.links.alreadyLinked.Inc()
		} else {
			cr.links.linked.Inc()
		}
		return rec.WriteResponse()
	case errors.Is(err, tokenstore.ErrConflict), errors.Is(err, tokenstore.ErrNotFound):
		cr.links.refused.Inc()
		p.logger.Warn("a business created upstream was not linked: it exists already, another client owns it, or the client is gone",
			zap.String("route", pattern), zap.String("client_id", client), zap.String("business_id", id), zap.Error(err))
		why := "it exists already or belongs to another client"
		if errors.Is(err, tokenstore.ErrNotFound) {
			why = "this client no longer exists"
		}
		return p.creationError(w, oautherr.BusinessNotLinked.WithDescription(fmt.Sprintf(
			"the upstream created business %s, but %s, so it was not linked to this client", id, why)), id, "refused")
	}
	cr.links.failed.Inc()
	// Logged with the call that completes the link, in case the process
	// ends before a retry succeeds.
	p.logger.Error("a business created upstream could not be linked yet; retrying until the store answers",
		zap.String("route", pattern), zap.String("client_id", client), zap.String("business_id", id), zap.Error(err),
		zap.String("complete_with", "POST /oauthgate/clients/"+client+"/businesses"))
	p.retryLink(client, id)
	w.Header().Set("Retry-After", bearer.RetryAfter)
	return p.creationError(w, oautherr.TemporarilyUnavailable.WithDescription(fmt.Sprintf(
		"the upstream created business %s, but it could not be linked to this client yet; do not create it again: "+
			"the gateway completes the link when its store answers, and requests naming %s pass from then on", id, id)), id, "pending")
}

// link stores the link and makes this node see it at once (other nodes
// hear of it through the change feed).
func (p *Protect) link(ctx context.Context, client, business string) (tokenstore.LinkOutcome, error) {
	// The link outlives a client that hangs up: the business exists.
	ctx = context.WithoutCancel(ctx)
	rt := p.app.acquire(ctx)
	if rt == nil {
		return 0, fmt.Errorf("oauthgate is not running: %w", tokenstore.ErrUnavailable)
	}
	defer rt.release()
	out, err := rt.store.LinkCreatedBusiness(ctx, client, business, time.Now().UTC())
	if err == nil && out == tokenstore.Linked {
		rt.tokens.ForgetClient(client)
	}
	return out, err
}

// retryLink completes a link the store refused, in the background, until
// it is stored or the configuration is unloaded (logged with the admin API
// call that completes it). Linking is idempotent, so a link that was in
// fact committed is harmless to retry.
func (p *Protect) retryLink(client, business string) {
	cr := p.creations
	key := client + "\x00" + business
	cr.mu.Lock()
	if cr.pending == nil {
		cr.pending = make(map[string]bool)
	}
	if cr.pending[key] || len(cr.pending) >= maxPendingLinks {
		full := !cr.pending[key]
		cr.mu.Unlock()
		if full {
			cr.links.abandoned.Inc()
			p.logger.Error("too many links wait for the store; complete this one with the admin API",
				zap.String("client_id", client), zap.String("business_id", business),
				zap.String("complete_with", "POST /oauthgate/clients/"+client+"/businesses"))
		}
		return
	}
	cr.pending[key] = true
	cr.mu.Unlock()
	go func() {
		defer func() {
			cr.mu.Lock()
			delete(cr.pending, key)
			cr.mu.Unlock()
		}()
		wait := time.Second
		for {
			select {
			case <-p.ctx.Done():
				cr.links.abandoned.Inc()
				p.logger.Error("a pending link was not completed before the configuration was unloaded; complete it with the admin API",
					zap.String("client_id", client), zap.String("business_id", business),
					zap.String("complete_with", "POST /oauthgate/clients/"+client+"/businesses"))
				return
			case <-time.After(wait):
			}
			_, err := p.link(p.ctx, client, business)
			switch {
			case err == nil:
				cr.links.completed.Inc()
				p.logger.Info("a pending link was completed", zap.String("client_id", client), zap.String("business_id", business))
				return
			case errors.Is(err, tokenstore.ErrConflict), errors.Is(err, tokenstore.ErrNotFound):
				cr.links.refused.Inc()
				p.logger.Error("a pending link was refused: the business exists already, another client owns it, or the client is gone",
					zap.String("client_id", client), zap.String("business_id", business), zap.Error(err))
				return
			}
			wait = min(2*wait, linkRetryMax)
		}
	}()
}

// creationError answers a creation whose business was not linked: the
// upstream's representation headers are dropped (its body is not sent),
// and the JSON body says which business the upstream created and what
// became of its link ("refused" or "pending"). It is always written here,
// even with `rejections handle_errors`: the app must learn the id.
func (p *Protect) creationError(w http.ResponseWriter, e *oautherr.Error, business, link string) error {
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Content-Location",
		"Location", "Etag", "Last-Modified", "Set-Cookie", "Trailer"} {
		delete(h, k)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		BusinessID  string `json:"business_id,omitempty"`
		Link        string `json:"link,omitempty"`
	}{e.Code, e.Description, business, link}
	w.WriteHeader(e.Status)
	return json.NewEncoder(w).Encode(body)
}

// linkCounters count what became of creations, by outcome (never by id).
type linkCounters struct {
	linked, alreadyLinked, refused, noID, failed, completed, abandoned, upstreamRefused prometheus.Counter
}

func newLinkMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	return promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "oauthgate", Subsystem: "gateway", Name: "business_links_total",
		Help: "Creation routes: linked, already_linked (a replay), refused (exists, another client's, or a client of the configuration), no_id (answer without a valid id), " +
			"failed (store down; retried), completed (a retry linked it), abandoned (retry given up), upstream_refused (not 2xx, nothing linked).",
	}, []string{"result"}), nil)
}

func (m *gatewayMetrics) linksFor() linkCounters {
	l := func(v string) prometheus.Counter { return m.links.WithLabelValues(v) }
	return linkCounters{
		linked: l("linked"), alreadyLinked: l("already_linked"), refused: l("refused"), noID: l("no_id"),
		failed: l("failed"), completed: l("completed"), abandoned: l("abandoned"), upstreamRefused: l("upstream_refused"),
	}
}
