package storage

import "github.com/cockroachdb/pebble/v2"

// SyncApplied makes every batch applied so far durable (Apply writes without fsync by
// default). The replica calls it before truncating its raft log: entries may be dropped from
// the log only once the data they produced survives a crash.
func (db *DB) SyncApplied() error {
	if db.parkedDurable() {
		return nil
	}
	if err := db.enter(); err != nil {
		return err
	}
	defer db.exit()
	if db.opts.NoWAL {
		return db.pdb.Flush() // flushed sstables are synced
	}
	// A synced write to the WAL also syncs everything written before it.
	return db.pdb.LogData(nil, pebble.Sync)
}

// StartSyncApplied starts making every batch applied so far durable, without waiting: the
// channel is closed once they are. Without a WAL that is a memtable flush, which on a full
// or failing disk Pebble retries until it succeeds, so a caller that must not wait that
// long (a partition's raft loop) checks the channel later instead.
func (db *DB) StartSyncApplied() (<-chan struct{}, error) {
	if db.parkedDurable() {
		done := make(chan struct{})
		close(done)
		return done, nil
	}
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.exit()
	if db.opts.NoWAL {
		return db.pdb.AsyncFlush()
	}
	if err := db.pdb.LogData(nil, pebble.Sync); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	close(done)
	return done, nil
}

// commitDurably commits b so that it survives a crash: a synced commit, or without a WAL a
// commit followed by a memtable flush.
func (db *DB) commitDurably(b *pebble.Batch) error {
	if db.opts.NoWAL {
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		db.committed() // in case the flush fails
		return db.pdb.Flush()
	}
	return b.Commit(pebble.Sync)
}

// parkedDurable reports whether the store is parked without a WAL: its parking flushed
// everything applied before it, and nothing was applied since, so there is nothing to sync
// (and no reason to reopen it, as a server's shutdown would every parked store).
func (db *DB) parkedDurable() bool {
	if !db.opts.NoWAL || !db.gate.Enter() {
		return false
	}
	defer db.gate.Exit()
	return db.Parked() // waits for a parking under way, whose flush must end first
}
