package storage

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// PebbleLogger adapts lg to Pebble's logger, for every Pebble database of a server (the
// partition stores and the raft log): Pebble's informational chatter goes to debug level,
// its errors to error level. Fatalf, which Pebble calls on corruption and on the failures it
// cannot unwind (a MANIFEST it cannot write or mark current), logs and panics with a
// [*PebbleFatalError]; the store's opens turn one raised inside the open into its error.
func PebbleLogger(lg *slog.Logger) pebble.Logger { return pebbleLogger{lg} }

// PebbleFatalError is the value Pebble's Fatalf panics with through [PebbleLogger]. Err is
// the first error among Fatalf's arguments (nil if none), which it unwraps to.
type PebbleFatalError struct {
	Msg string
	Err error
}

func (e *PebbleFatalError) Error() string { return "pebble: " + e.Msg }

func (e *PebbleFatalError) Unwrap() error { return e.Err }

type pebbleLogger struct{ lg *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.lg.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.lg.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.lg.Error("pebble fatal", "msg", msg)
	fe := &PebbleFatalError{Msg: msg}
	for _, a := range args {
		if err, ok := a.(error); ok {
			fe.Err = err
			break
		}
	}
	panic(fe)
}

// openPebble opens the Pebble database in dir. A new database whose MANIFEST Pebble cannot
// mark current (out of file descriptors: "too many open files", or out of space) makes
// Pebble call Fatalf from within Open, on the opening goroutine; Open releases what it
// opened when it panics (its deferred cleanups look for a nil DB, not an error), so that
// panic becomes the open's error here: a failed open, never a crash. A Fatalf on another
// goroutine, or any other panic, goes on.
func openPebble(dir string, po *pebble.Options) (pdb *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			var fe *PebbleFatalError
			if e, ok := r.(error); !ok || !errors.As(e, &fe) {
				panic(r)
			}
			pdb, err = nil, fe
		}
	}()
	return pebble.Open(dir, po)
}
