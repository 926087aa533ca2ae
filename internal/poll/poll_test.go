package poll

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// Time is synctest's fake clock in these tests: the bound passes without waiting for it.

func TestWaitReturnsOnceTrue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		err := Wait(t.Context(), func(context.Context) (bool, error) {
			calls++
			return calls == 3, nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
		}
		if d := time.Since(start); d != 2*Interval {
			t.Fatalf("returned after %v, want two intervals (%v)", d, 2*Interval)
		}
	})
}

func TestWaitReturnsConditionError(t *testing.T) {
	boom := errors.New("boom")
	err := Wait(t.Context(), func(context.Context) (bool, error) { return false, boom })
	if err != boom {
		t.Fatalf("err %v, want the condition's own", err)
	}
}

func TestWaitGivesUpAtBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		err := Wait(t.Context(), func(context.Context) (bool, error) { return false, nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want a deadline", err)
		}
		if d := time.Since(start); d != Bound {
			t.Fatalf("gave up after %v, want %v", d, Bound)
		}
	})
}

func TestWaitEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		err := Wait(ctx, func(context.Context) (bool, error) { return false, nil })
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("err %v after %v, want the caller's deadline after 1s", err, time.Since(start))
		}
		ctx, cancel = context.WithTimeout(t.Context(), 2*Bound)
		defer cancel()
		start = time.Now()
		err = Wait(ctx, func(context.Context) (bool, error) { return false, nil })
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*Bound {
			t.Fatalf("err %v after %v, want the caller's deadline after %v", err, time.Since(start), 2*Bound)
		}
		ctx, cancel = context.WithCancel(t.Context())
		cancel()
		if err := Wait(ctx, func(context.Context) (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v on a cancelled context", err)
		}
	})
}

func TestWaitBoundsEachAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		err := Wait(t.Context(), func(ctx context.Context) (bool, error) {
			calls++
			if calls == 1 {
				start := time.Now()
				<-ctx.Done() // a check that hangs until its context ends
				if d := time.Since(start); d != Attempt {
					t.Errorf("attempt ended after %v, want %v", d, Attempt)
				}
				return false, nil
			}
			return true, nil
		})
		if err != nil || calls != 2 {
			t.Fatalf("err %v after %d calls", err, calls)
		}
	})
}
