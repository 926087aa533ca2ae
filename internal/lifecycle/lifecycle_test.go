package lifecycle

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGateCloseWaitsForOperations(t *testing.T) {
	var g Gate
	if !g.Enter() {
		t.Fatal("Enter on a new gate refused")
	}
	closed := make(chan bool)
	go func() { closed <- g.Close() }()
	// Close has begun once new operations are refused; the one inside keeps it waiting.
	for g.Enter() {
		g.Exit()
	}
	select {
	case <-closed:
		t.Fatal("Close returned with an operation inside")
	default:
	}
	g.Exit()
	if !<-closed {
		t.Fatal("first Close reported false")
	}
	if g.Close() {
		t.Fatal("second Close reported true")
	}
	if g.Enter() {
		t.Fatal("Enter after Close admitted")
	}
	if !g.Closed() {
		t.Fatal("Closed is false after Close")
	}
}

func TestGateCloseOfIdleGate(t *testing.T) {
	var g Gate
	if !g.Close() {
		t.Fatal("Close of an idle gate reported false")
	}
}

// Many operations enter and exit while Close runs: none is admitted after Close returned,
// and every admitted one was inside before Close returned.
func TestGateConcurrent(t *testing.T) {
	for range 200 {
		var g Gate
		var inside, afterClose atomic.Int64
		var closed atomic.Bool
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					if !g.Enter() {
						return
					}
					if closed.Load() {
						afterClose.Add(1)
					}
					inside.Add(1)
					inside.Add(-1)
					g.Exit()
				}
			})
		}
		g.Close()
		closed.Store(true)
		if n := inside.Load(); n != 0 {
			t.Fatalf("%d operations inside after Close returned", n)
		}
		wg.Wait()
		if n := afterClose.Load(); n != 0 {
			t.Fatalf("%d operations admitted after Close returned", n)
		}
	}
}

func TestRunner(t *testing.T) {
	t.Run("close before run", func(t *testing.T) {
		var r Runner
		released := 0
		r.Stop(func() { released++ })
		r.Stop(func() { released++ })
		<-r.Done()
		if released != 1 {
			t.Fatalf("released %d times", released)
		}
		if err := r.Start(); !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Start after Stop: %v", err)
		}
	})
	t.Run("close while running", func(t *testing.T) {
		var r Runner
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); !errors.Is(err, ErrRunning) {
			t.Fatalf("second Start: %v", err)
		}
		r.Stop(func() { t.Fatal("Stop released a running server") })
		select {
		case <-r.Done():
			t.Fatal("Done before Finish")
		default:
		}
		r.Finish()
		<-r.Done()
	})
	t.Run("run ends by itself", func(t *testing.T) {
		var r Runner
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		r.Finish()
		r.Stop(func() { t.Fatal("Stop released a server whose Run finished") })
		<-r.Done()
	})
}

func TestRunResult(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		errs []error
		want error
	}{
		{"nothing", nil, ErrServerClosed},
		{"closed parts", []error{nil, ErrServerClosed}, ErrServerClosed},
		{"a failure", []error{ErrServerClosed, boom, nil}, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RunResult(tc.errs...)
			if !errors.Is(got, tc.want) || (tc.want == boom && errors.Is(got, ErrServerClosed)) {
				t.Fatalf("RunResult = %v, want %v", got, tc.want)
			}
		})
	}
}
