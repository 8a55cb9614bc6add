package tokens

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oauthgate/oauthgate/tokenstore"
	"go.uber.org/zap"
)

// feedBatch is how many changes are read per query.
const feedBatch = 1000

// Follower keeps state of its own current from the change feed a Service
// follows, as the sign-in and client-authentication throttle does.
type Follower interface {
	// Reload reads the follower's whole state from the store: at start,
	// and whenever changes may have been missed.
	Reload(ctx context.Context) error
	// Apply is handed every batch of changes, oldest first, before the
	// feed position moves past them. Reapplying a change is harmless.
	Apply(changes []tokenstore.Change)
}

func (s *Service) reloadFollowers(ctx context.Context) error {
	for _, f := range s.cfg.Followers {
		if err := f.Reload(ctx); err != nil {
			return err
		}
	}
	return nil
}

// watch follows the change feed until ctx ends: on every wakeup from the
// store and every PollInterval, plus housekeeping every minute.
func (s *Service) watch(ctx context.Context) {
	defer close(s.done)
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	house := time.NewTicker(housekeepingInterval)
	defer house.Stop()
	wake := s.store.Wakeup()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		case <-house.C:
			s.housekeep(ctx)
		}
		s.poll(ctx)
	}
}

// poll applies every change recorded since the last one seen. After a
// failure it first re-reads the whole state, since the changes missed
// meanwhile may have been pruned from the feed.
func (s *Service) poll(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, max(5*time.Second, s.cfg.PollInterval))
	defer cancel()
	err := s.readFeed(ctx)
	switch {
	case parent.Err() != nil:
		// Shutting down; not an outage.
	case err != nil:
		s.feedFailed(err)
	default:
		s.feedRecovered()
	}
}

func (s *Service) readFeed(ctx context.Context) error {
	if s.resync {
		if err := s.fullResync(ctx); err != nil {
			return err
		}
		s.resync = false
	}
	for {
		seq := s.seq.Load()
		changes, err := s.store.ChangesSince(ctx, seq, feedBatch)
		if err != nil {
			return fmt.Errorf("reading change feed: %w", err)
		}
		if len(changes) > 0 && changes[0].Seq > seq+1 {
			pruned, err := s.prunedSince(ctx, seq)
			if err != nil {
				return err
			}
			if pruned {
				// Not heard from for longer than the feed is kept (a
				// suspended VM, a stalled process): what was missed is
				// gone, so everything is read again.
				s.log.Warn("change feed pruned past this node's position; reloading revocations, keys and clients",
					zap.Int64("seq", seq), zap.Int64("next", changes[0].Seq))
				if err := s.fullResync(ctx); err != nil {
					return err
				}
				continue
			}
		}
		if err := s.apply(ctx, changes); err != nil {
			return err
		}
		if len(changes) < feedBatch {
			return nil
		}
	}
}

// apply applies one batch of changes and advances the feed position only if
// all of it took effect (reapplying is harmless).
func (s *Service) apply(ctx context.Context, changes []tokenstore.Change) error {
	if len(changes) == 0 {
		return nil
	}
	var grants []string
	var reloadRevs, reloadKeys bool
	for _, ch := range changes {
		switch ch.Kind {
		case tokenstore.ChangeRevocation:
			kind, id, _ := strings.Cut(ch.Key, ":")
			if kind == tokenstore.RevokeGrant && id != "" {
				grants = append(grants, id)
			} else {
				// A client revocation needs its time, which only the
				// store has.
				reloadRevs = true
			}
		case tokenstore.ChangeClient:
			s.clients.invalidate(ch.Key)
		case tokenstore.ChangeKeys:
			reloadKeys = true
		}
	}
	if len(grants) > 0 {
		// The feed does not carry the expiry; the longest token lifetime
		// from now is a safe upper bound (an entry that outlives its
		// tokens is harmless).
		until := s.now().Add(s.revocationLifetime())
		s.updateDeny(func(d *denyList) {
			for _, id := range grants {
				if _, known := d.grants[id]; !known { // e.g. our own
					d.grants[id] = until
				}
			}
		})
	}
	if reloadRevs {
		if err := s.reloadRevocations(ctx); err != nil {
			return err
		}
	}
	if reloadKeys {
		if err := s.loadKeys(ctx); err != nil {
			return err
		}
	}
	for _, f := range s.cfg.Followers {
		f.Apply(changes)
	}
	s.seq.Store(changes[len(changes)-1].Seq)
	return nil
}

// prunedSince reports whether changes after seq may have been pruned: the
// oldest change kept is past seq+1. Seqs have gaps (a rolled-back
// transaction burns one), so a gap after seq alone proves nothing; this is
// asked only when there is one.
func (s *Service) prunedSince(ctx context.Context, seq int64) (bool, error) {
	oldest, err := s.store.ChangesSince(ctx, 0, 1)
	if err != nil {
		return false, fmt.Errorf("reading change feed: %w", err)
	}
	return len(oldest) > 0 && oldest[0].Seq > seq+1, nil
}

// fullResync re-reads everything the feed keeps current.
func (s *Service) fullResync(ctx context.Context) error {
	seq, err := s.store.LastChange(ctx)
	if err != nil {
		return fmt.Errorf("reading change feed: %w", err)
	}
	if err := s.reloadRevocations(ctx); err != nil {
		return err
	}
	if err := s.loadKeys(ctx); err != nil {
		return err
	}
	if err := s.reloadFollowers(ctx); err != nil {
		return err
	}
	s.clients.clear()
	s.seq.Store(max(s.seq.Load(), seq))
	return nil
}

// feedFailed records a failed read, logging only the first of a run so an
// outage does not flood the log.
func (s *Service) feedFailed(err error) {
	s.m.feedErrors.Inc()
	s.resync = true
	s.storeDown.Store(true)
	if !s.feedDown {
		s.feedDown = true
		s.feedDownAt = s.now()
		then := "serving from memory until it is back"
		if s.cfg.MaxStaleness > 0 {
			then = "access tokens will be refused once it has been out for " + s.cfg.MaxStaleness.String()
		}
		s.log.Warn("cannot read the store's change feed; "+then, zap.Error(err))
	}
}

func (s *Service) feedRecovered() {
	s.feedOK.Store(s.now().UnixNano())
	s.storeDown.Store(false)
	if s.feedDown {
		s.feedDown = false
		s.log.Info("change feed readable again", zap.Duration("outage", s.now().Sub(s.feedDownAt)))
	}
}

// Available returns an error matching tokenstore.ErrUnavailable while the
// last read of the store's change feed failed. The token endpoint refuses
// to issue then, even to a client it has cached: during an outage this node
// cannot learn that the client was deleted or its tokens revoked, and
// nothing it issued could be recorded. Verify keeps serving meanwhile,
// within MaxStaleness.
func (s *Service) Available() error {
	if s.storeDown.Load() {
		return fmt.Errorf("change feed unreadable: %w", tokenstore.ErrUnavailable)
	}
	return nil
}

// housekeep drops expired state, rotates the signing key when due and
// re-reads the key set and revocations in full, catching any change the
// feed skipped (e.g. a PostgreSQL sequence value committed out of order).
func (s *Service) housekeep(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, 30*time.Second)
	defer cancel()
	now := s.now()
	s.pruneDeny(now)
	err := errors.Join(
		wrap("pruning store", s.store.Prune(ctx, now)),
		wrap("deleting retired keys", s.store.DeleteKeysRetiredBefore(ctx, now.Add(-s.keyRetention()))),
		wrap("rotating signing key", s.maybeRotate(ctx)),
		s.reloadRevocations(ctx),
		s.loadKeys(ctx),
	)
	switch {
	case parent.Err() != nil:
		// Shutting down.
	case err != nil && !s.houseDown:
		s.houseDown = true
		s.log.Warn("housekeeping failed", zap.Error(err))
	case err == nil && s.houseDown:
		s.houseDown = false
		s.log.Info("housekeeping succeeded again")
	}
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
