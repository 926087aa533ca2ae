// Package poll waits, in tests, for a condition that something else makes true: a leader
// elected, a replica caught up, a goroutine gone. Every wait of the module's tests goes
// through it, so all of them check as often ([Interval]) and give up after as long ([Bound]).
//
//	poll.Until(t, "a leader", func() bool { return g.leader() != nil })
//
//	poll.UntilOK(t, "primaries of temp", func(ctx context.Context) (bool, error) {
//		resp, err := queryConfig(ctx, "temp") // ctx bounds this one attempt
//		if err != nil {
//			return false, nil // not yet: try again
//		}
//		return allHavePrimaries(resp), nil
//	})
//
// The bound is no speed requirement: it is far above what any condition needs on a loaded
// machine, so a wait that reaches it means the condition never holds. A wait that needs a
// bound of its own (a test's overall budget, or a recovery time the test is about) gives
// [Wait] a context with that deadline.
package poll

import (
	"context"
	"fmt"
	"testing"
	"time"
)

const (
	// Bound is the longest a wait lasts.
	Bound = 30 * time.Second
	// Interval is the pause between two checks of a condition.
	Interval = 10 * time.Millisecond
	// Attempt bounds the context one check of [UntilOK] or [Wait] is given, so a check that
	// hangs (on a stopped server, say) is given up and tried again.
	Attempt = 2 * time.Second
)

// Wait calls cond every [Interval] until it returns true or an error, or ctx ends. A ctx
// without a deadline is given one, [Bound] from now; a ctx with a deadline keeps its own.
// Each call of cond gets a context that ends after [Attempt] at the most, and cond is called
// once at least. Wait returns nil once cond has returned true, cond's error as it is, or an
// error wrapping ctx.Err() when ctx ends first (context.DeadlineExceeded for the bound).
// Wait is safe to call from any goroutine.
func Wait(ctx context.Context, cond func(ctx context.Context) (bool, error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Bound)
		defer cancel()
	}
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		actx, acancel := context.WithTimeout(ctx, Attempt)
		ok, err := cond(actx)
		acancel()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("poll: condition not met: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Until fails t unless cond returns true within [Bound], checking every [Interval]; what
// names the condition in the failure. It gives up at once when t's context ends, so it is
// not for a t.Cleanup function. Call it from the test's goroutine.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	UntilOK(t, what, func(context.Context) (bool, error) { return cond(), nil })
}

// UntilOK is [Until] for a condition that needs a context (each call's is bounded by
// [Attempt]) and can fail: an error from cond fails t at once, with the error.
func UntilOK(t testing.TB, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := Wait(t.Context(), cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
