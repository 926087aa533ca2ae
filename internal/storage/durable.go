package storage

import "github.com/cockroachdb/pebble/v2"

// SyncApplied makes every batch applied so far durable (Apply writes without fsync by
// default). The replica calls it before truncating its raft log: entries may be dropped from
// the log only once the data they produced survives a crash.
func (db *DB) SyncApplied() error {
	if db.closed.Load() {
		return ErrClosed
	}
	// A synced write to the WAL also syncs everything written before it.
	return db.pdb.LogData(nil, pebble.Sync)
}
