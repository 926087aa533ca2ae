package storage

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

// PebbleLogger adapts lg to Pebble's logger, for every Pebble database of a server (the
// partition stores and the raft log): Pebble's informational chatter goes to debug level,
// its errors to error level. Fatalf, which Pebble calls only on corruption, logs and panics.
func PebbleLogger(lg *slog.Logger) pebble.Logger { return pebbleLogger{lg} }

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
	panic("pebble: " + msg)
}
