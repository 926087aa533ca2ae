// Package raftlog persists the raft state (log entries, hard state, truncation point) of many
// raft groups in one Pebble database. Groups commit their Ready batches without a sync and
// wait for the log's sync rounds (syncer.go): one fsync covers the batches of many groups and
// the client writes in them (group commit).
package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/storage"
)

// Log holds the raft state of many groups. Keys, all prefixed by a kind byte and the
// 8-byte group id (for partitions: app id, partition index):
//
//	'e' group index(8)  raftpb.Entry
//	'h' group           raftpb.HardState
//	's' group           raftpb.SnapshotMetadata: the log's truncation point and the ConfState
//	                    as of that point
//
// A Log is safe for concurrent use; each group must be used by one goroutine at a time.
type Log struct {
	db     *pebble.DB
	syncs  atomic.Int64
	syncer *syncer
}

// memTableSize is the log database's memtable: see Open.
const memTableSize = 64 << 20

// Open opens (or creates) the log database in dir, with the DefaultOptions.
func Open(dir string, lg *slog.Logger) (*Log, error) {
	return OpenOptions(dir, lg, DefaultOptions)
}

// OpenOptions opens (or creates) the log database in dir, with its group commit tuned by
// opts.
func OpenOptions(dir string, lg *slog.Logger, opts Options) (*Log, error) {
	l := &Log{}
	popts := &pebble.Options{
		Logger: storage.PebbleLogger(lg),
		FS:     countingFS{FS: vfs.Default, syncs: &l.syncs},
		// Large enough to hold the live log of every group between truncations, so entries
		// are mostly deleted before a flush would write them to an sstable.
		MemTableSize: memTableSize,
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("raftlog: open %s: %w", dir, err)
	}
	l.db = db
	l.syncer = newSyncer(db, opts)
	return l, nil
}

// Syncs returns how many file syncs the log's database has made since it was opened. With
// group commit it grows much slower than the number of Save calls under concurrent load.
func (l *Log) Syncs() int64 { return l.syncs.Load() }

// Close closes the database; writes still waiting for a sync get an error.
func (l *Log) Close() error {
	l.syncer.close()
	return l.db.Close()
}

// Group returns the view of one group's state.
func (l *Log) Group(id idl.GPID) Group { return Group{l: l, pid: id} }

func gpidKey(kind byte, pid idl.GPID, extra int) []byte {
	k := make([]byte, 9, 9+extra)
	k[0] = kind
	binary.BigEndian.PutUint32(k[1:], uint32(pid.AppID))
	binary.BigEndian.PutUint32(k[5:], uint32(pid.PartitionIndex))
	return k
}

func entryKey(pid idl.GPID, index uint64) []byte {
	return binary.BigEndian.AppendUint64(gpidKey('e', pid, 8), index)
}

// Group is one raft group's view of the log.
type Group struct {
	l   *Log
	pid idl.GPID
}

// Load restores a group's state into a fresh MemoryStorage. found is false when the group
// has never been persisted (a brand-new replica).
func (g Group) Load() (ms *raft.MemoryStorage, found bool, err error) {
	ms = raft.NewMemoryStorage()
	var snapMeta raftpb.SnapshotMetadata
	if v, closer, err := g.l.db.Get(gpidKey('s', g.pid, 0)); err == nil {
		err = snapMeta.Unmarshal(v)
		closer.Close()
		if err != nil {
			return nil, false, fmt.Errorf("raftlog: snapshot metadata of %v: %w", g.pid, err)
		}
		found = true
		if err := ms.ApplySnapshot(raftpb.Snapshot{Metadata: snapMeta}); err != nil {
			return nil, false, err
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, false, err
	}
	if v, closer, err := g.l.db.Get(gpidKey('h', g.pid, 0)); err == nil {
		var hs raftpb.HardState
		err = hs.Unmarshal(v)
		closer.Close()
		if err != nil {
			return nil, false, fmt.Errorf("raftlog: hard state of %v: %w", g.pid, err)
		}
		found = true
		if err := ms.SetHardState(hs); err != nil {
			return nil, false, err
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, false, err
	}
	it, err := g.l.db.NewIter(&pebble.IterOptions{
		LowerBound: entryKey(g.pid, snapMeta.Index+1),
		UpperBound: entryKey(g.pid, ^uint64(0)),
	})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	var ents []raftpb.Entry
	for it.First(); it.Valid(); it.Next() {
		var e raftpb.Entry
		if err := e.Unmarshal(it.Value()); err != nil {
			return nil, false, fmt.Errorf("raftlog: entry of %v: %w", g.pid, err)
		}
		ents = append(ents, e)
	}
	if err := it.Error(); err != nil {
		return nil, false, err
	}
	if len(ents) > 0 {
		found = true
		if err := ms.Append(ents); err != nil {
			return nil, false, err
		}
	}
	return ms, found, nil
}

// Save durably writes a Ready's hard state and entries: Write with sync set.
func (g Group) Save(hs raftpb.HardState, ents []raftpb.Entry) error { return g.Write(hs, ents, true) }

// Write writes a Ready's hard state and entries, durably when sync is set (pass raft's
// Ready.MustSync: new entries, term or vote must be synced; a commit index alone need not).
func (g Group) Write(hs raftpb.HardState, ents []raftpb.Entry, sync bool) error {
	if err := g.Stage(hs, ents, ^uint64(0)); err != nil || !sync {
		return err
	}
	return <-g.l.syncer.request(g.pid)
}

// Stage writes a Ready's hard state and entries without making them durable: they are
// durable once a later Sync answers. Entries overwrite any at the same indexes; when the
// log held entries beyond the new ones (up to lastIndex, its last index before this call),
// those are deleted too, as raft requires when a leader overwrites a follower's uncommitted
// tail.
func (g Group) Stage(hs raftpb.HardState, ents []raftpb.Entry, lastIndex uint64) error {
	if raft.IsEmptyHardState(hs) && len(ents) == 0 {
		return nil
	}
	b := g.l.db.NewBatch()
	defer b.Close()
	if err := g.putHardState(b, hs); err != nil {
		return err
	}
	if len(ents) > 0 {
		// Drop a stale tail beyond the new entries. Only then: every range deletion stays in
		// the database until compacted, and slows its flushes and reads.
		if last := ents[len(ents)-1].Index; last < lastIndex {
			if err := b.DeleteRange(entryKey(g.pid, last+1), entryKey(g.pid, ^uint64(0)), nil); err != nil {
				return err
			}
		}
		for i := range ents {
			v, err := ents[i].Marshal()
			if err != nil {
				return err
			}
			if err := b.Set(entryKey(g.pid, ents[i].Index), v, nil); err != nil {
				return err
			}
		}
	}
	return b.Commit(pebble.NoSync)
}

// Sync starts making everything staged so far durable, in the log's next group-commit
// round; the channel answers when it is (nil) or cannot be (an error). The caller can do
// other work meanwhile.
func (g Group) Sync() <-chan error { return g.l.syncer.request(g.pid) }

// Writing counts the client writes waiting on the group: +1 when one is proposed, -1 when
// it is answered. The count spaces the log's sync rounds under load (Options.Delay).
func (g Group) Writing(delta int) { g.l.syncer.writing(delta) }

// Truncate records a new truncation point and deletes the entries up to it. The caller must
// have made the state machine durable through index first.
func (g Group) Truncate(index, term uint64, cs raftpb.ConfState) error {
	return g.restart(raftpb.SnapshotMetadata{Index: index, Term: term, ConfState: cs}, raftpb.HardState{}, index+1)
}

// restart records meta as the log's starting point, and hs unless it is empty, and deletes
// the entries before end, durably.
func (g Group) restart(meta raftpb.SnapshotMetadata, hs raftpb.HardState, end uint64) error {
	v, err := meta.Marshal()
	if err != nil {
		return err
	}
	b := g.l.db.NewBatch()
	defer b.Close()
	if err := b.Set(gpidKey('s', g.pid, 0), v, nil); err != nil {
		return err
	}
	if err := g.putHardState(b, hs); err != nil {
		return err
	}
	if err := b.DeleteRange(entryKey(g.pid, 0), entryKey(g.pid, end), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// putHardState adds hs to b, unless it is empty.
func (g Group) putHardState(b *pebble.Batch, hs raftpb.HardState) error {
	if raft.IsEmptyHardState(hs) {
		return nil
	}
	v, err := hs.Marshal()
	if err != nil {
		return err
	}
	return b.Set(gpidKey('h', g.pid, 0), v, nil)
}

// Remove deletes everything of the group.
func (g Group) Remove() error {
	b := g.l.db.NewBatch()
	defer b.Close()
	for _, kind := range []byte{'h', 's'} {
		if err := b.Delete(gpidKey(kind, g.pid, 0), nil); err != nil {
			return err
		}
	}
	if err := b.DeleteRange(entryKey(g.pid, 0), entryKey(g.pid, ^uint64(0)), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// InstallSnapshot records a snapshot received from the leader as the group's new starting
// point, with hs, and deletes every entry: after a snapshot the log restarts right after it.
func (g Group) InstallSnapshot(meta raftpb.SnapshotMetadata, hs raftpb.HardState) error {
	return g.restart(meta, hs, ^uint64(0))
}
