package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// raftLog persists the raft state of every partition replica of a server in one Pebble
// database under <data>/raftlog. Each partition's Ready loop commits its entries and hard
// state with pebble.Sync; Pebble's commit pipeline lets concurrent committers share one
// WAL fsync, so one fsync covers the Ready batches of many groups (group commit).
//
// Keys, all prefixed by a kind byte and the 8-byte gpid (app id, partition index):
//
//	'e' gpid index(8)  raftpb.Entry
//	'h' gpid           raftpb.HardState
//	's' gpid           raftpb.SnapshotMetadata: the log's truncation point and the ConfState
//	                   as of that point
type raftLog struct {
	db *pebble.DB
}

func openRaftLog(dir string, lg *slog.Logger) (*raftLog, error) {
	opts := &pebble.Options{Logger: quietPebbleLogger{lg}}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("replica: open raft log: %w", err)
	}
	return &raftLog{db: db}, nil
}

func (l *raftLog) close() error { return l.db.Close() }

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

// groupLog is one partition's view of the raft log.
type groupLog struct {
	l   *raftLog
	pid idl.GPID
}

// load restores a group's state into a fresh MemoryStorage. found is false when the group
// has never been persisted (a brand-new replica).
func (g groupLog) load() (ms *raft.MemoryStorage, found bool, err error) {
	ms = raft.NewMemoryStorage()
	var snapMeta raftpb.SnapshotMetadata
	if v, closer, err := g.l.db.Get(gpidKey('s', g.pid, 0)); err == nil {
		err = snapMeta.Unmarshal(v)
		closer.Close()
		if err != nil {
			return nil, false, fmt.Errorf("replica: raft snapshot metadata of %v: %w", g.pid, err)
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
			return nil, false, fmt.Errorf("replica: raft hard state of %v: %w", g.pid, err)
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
			return nil, false, fmt.Errorf("replica: raft entry of %v: %w", g.pid, err)
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

// save durably writes a Ready's hard state and entries. Entries overwrite any at the same
// indexes; a new entry at index i also truncates the persisted log after i, as raft requires
// when a leader overwrites a follower's uncommitted tail.
func (g groupLog) save(hs raftpb.HardState, ents []raftpb.Entry) error {
	if raft.IsEmptyHardState(hs) && len(ents) == 0 {
		return nil
	}
	b := g.l.db.NewBatch()
	defer b.Close()
	if !raft.IsEmptyHardState(hs) {
		v, err := hs.Marshal()
		if err != nil {
			return err
		}
		if err := b.Set(gpidKey('h', g.pid, 0), v, nil); err != nil {
			return err
		}
	}
	if len(ents) > 0 {
		// Drop a stale tail beyond the new entries.
		last := ents[len(ents)-1].Index
		if err := b.DeleteRange(entryKey(g.pid, last+1), entryKey(g.pid, ^uint64(0)), nil); err != nil {
			return err
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
	return b.Commit(pebble.Sync)
}

// truncate records a new truncation point and deletes the entries up to it. The caller must
// have made the state machine durable through index first.
func (g groupLog) truncate(index, term uint64, cs raftpb.ConfState) error {
	meta := raftpb.SnapshotMetadata{Index: index, Term: term, ConfState: cs}
	v, err := meta.Marshal()
	if err != nil {
		return err
	}
	b := g.l.db.NewBatch()
	defer b.Close()
	if err := b.Set(gpidKey('s', g.pid, 0), v, nil); err != nil {
		return err
	}
	if err := b.DeleteRange(entryKey(g.pid, 0), entryKey(g.pid, index+1), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// remove deletes everything of the group.
func (g groupLog) remove() error {
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

// quietPebbleLogger sends Pebble's informational chatter to debug level.
type quietPebbleLogger struct{ lg *slog.Logger }

func (l quietPebbleLogger) Infof(format string, args ...any) {
	l.lg.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (l quietPebbleLogger) Errorf(format string, args ...any) {
	l.lg.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

func (l quietPebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...)) // Pebble calls this only on corruption
}

// raftLogger adapts slog to raft's Logger.
type raftLogger struct{ lg *slog.Logger }

func (l raftLogger) Debug(v ...any)                 { l.lg.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Debugf(format string, v ...any) { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Info(v ...any)                  { l.lg.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Infof(format string, v ...any)  { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Warning(v ...any)               { l.lg.Warn(fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.lg.Warn(fmt.Sprintf(format, v...))
}
func (l raftLogger) Error(v ...any)                 { l.lg.Error(fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...any) { l.lg.Error(fmt.Sprintf(format, v...)) }
func (l raftLogger) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l raftLogger) Fatalf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (l raftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
