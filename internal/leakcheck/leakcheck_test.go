package leakcheck

import (
	"sync"
	"testing"
)

func parked(running chan<- struct{}, stop <-chan struct{}) {
	close(running)
	<-stop
}

func TestSnapshotSeesNewGoroutines(t *testing.T) {
	snap := Take()
	running, stop := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { parked(running, stop) })
	<-running // in parked, so its stack names it
	if left := snap.started(); len(left) != 1 {
		t.Fatalf("want the one new goroutine, got %d:\n%v", len(left), left)
	}
	if got := Find("leakcheck.parked"); len(got) != 1 {
		t.Fatalf("Find: %d stacks", len(got))
	}
	close(stop)
	wg.Wait()
	snap.Check(t)
	if got := Find("leakcheck.parked"); len(got) != 0 {
		t.Fatalf("Find after exit: %d stacks", len(got))
	}
}
