package pegasus

import (
	"context"
	"fmt"
	"testing"

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
