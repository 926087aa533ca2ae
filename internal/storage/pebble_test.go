package storage

import (
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
)

func openPebbleForTest(dir string) (*pebble.DB, error) {
	return pebble.Open(dir, &pebble.Options{Logger: PebbleLogger(slog.New(slog.DiscardHandler))})
}
