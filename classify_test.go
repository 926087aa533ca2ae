package pegasus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// TestClassify pins down how a failed call is handled: whether the configuration is
// refreshed and whether the request goes again, per operation kind.
func TestClassify(t *testing.T) {
	type want struct{ refresh, retryRead, retryIdem, retryNonIdem bool }
	for _, c := range []struct {
		err  error
		want want
	}{
		{ErrNoPrimary, want{true, true, true, true}},
		{fmt.Errorf("rpc: x: %w", wire.ErrInvalidState), want{true, true, true, false}},
		{fmt.Errorf("rpc: x: %w", wire.ErrObjectNotFound), want{true, true, true, true}},
		{fmt.Errorf("rpc: x: %w", wire.ErrTimeout), want{true, true, false, false}},
		{fmt.Errorf("rpc: x: %w", wire.ErrBusy), want{false, true, true, false}},
		{fmt.Errorf("rpc: x: %w", wire.ErrSplitting), want{false, true, true, true}},
		{context.DeadlineExceeded, want{false, false, false, false}},
	} {
		r, rr := classify(c.err, kindRead)
		_, ri := classify(c.err, kindIdempotent)
		_, rn := classify(c.err, kindNonIdempotent)
		if got := (want{r, rr, ri, rn}); got != c.want {
			t.Errorf("%v: refresh, retry read/idempotent/non-idempotent = %+v, want %+v", c.err, got, c.want)
		}
	}
}

// TestOutcomeUnknown pins down which failed writes may have been applied: those whose request
// left the process with no answer refusing it. Reads never are.
func TestOutcomeUnknown(t *testing.T) {
	for _, c := range []struct {
		err         error
		idem, nonId bool
	}{
		{ErrNoPrimary, false, false},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, false, false},
		{fmt.Errorf("rpc: %w: EOF", rpc.ErrConnBroken), true, true},
		{fmt.Errorf("rpc: x: %w", wire.ErrTimeout), true, true},
		{fmt.Errorf("rpc: x: %w", wire.ErrInvalidState), true, true},
		{fmt.Errorf("rpc: x: %w", wire.ErrBusy), false, false},
		{fmt.Errorf("rpc: x: %w", wire.ErrObjectNotFound), false, false},
		{fmt.Errorf("%w: x", ErrClientClosed), false, false},
	} {
		if outcomeUnknown(c.err, kindRead) {
			t.Errorf("%v: a read's outcome reported unknown", c.err)
		}
		if got := outcomeUnknown(c.err, kindIdempotent); got != c.idem {
			t.Errorf("%v: idempotent write's outcome unknown = %v, want %v", c.err, got, c.idem)
		}
		if got := outcomeUnknown(c.err, kindNonIdempotent); got != c.nonId {
			t.Errorf("%v: non-idempotent write's outcome unknown = %v, want %v", c.err, got, c.nonId)
		}
	}
}
