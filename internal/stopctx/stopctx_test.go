package stopctx

import (
	"context"
	"errors"
	"testing"
)

func TestDoneOnceStopped(t *testing.T) {
	stop := make(chan struct{})
	ctx := New(stop)
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before stop = %v", err)
	}
	if _, ok := ctx.Deadline(); ok {
		t.Fatal("a deadline")
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-ctx.Done():
		t.Fatal("done before stop")
	default:
	}
	close(stop)
	<-ctx.Done()
	<-child.Done() // a derived context follows
	if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("Err = %v, child %v", ctx.Err(), child.Err())
	}
}
