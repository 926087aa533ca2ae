// Package servertest checks, in tests, the contract every server of the module keeps (the
// meta and the replica server alike): how it stops before it ran, and how its Config
// rejects what it cannot run with. Each server's tests call these on their own server, so the
// contract is written once.
package servertest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/lifecycle"
)

// Server is a long-lived server as the module's servers are: New opens it, Run serves until
// Close or Shutdown.
type Server interface {
	Run(ctx context.Context) error
	Close() error
	Shutdown(ctx context.Context) error
}

// CloseBeforeRun checks a server closed before it ran: Close returns nil, Run then returns
// [lifecycle.ErrServerClosed] at once, Shutdown returns nil, and what the server held is
// released: open succeeds again on the same data (the raft log was closed) and no goroutine
// of either server is left. open must open the same data every time. It must not run in
// parallel with other tests (see leakcheck).
func CloseBeforeRun(t *testing.T, open func() (Server, error)) {
	t.Helper()
	snap := leakcheck.Take()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); !errors.Is(err, lifecycle.ErrServerClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
	s2, err := open()
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	snap.Check(t)
}

// Config is a server's configuration: EnsureDefaults fills what is unset, Validate says
// what it cannot run with.
type Config interface {
	EnsureDefaults()
	Validate() error
}

// Validate checks cfg after its defaults are filled: its Validate must return nil when want
// is empty, and otherwise an error whose text contains want.
func Validate(t *testing.T, cfg Config, want string) {
	t.Helper()
	cfg.EnsureDefaults()
	err := cfg.Validate()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}
