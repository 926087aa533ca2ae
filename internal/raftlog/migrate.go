package raftlog

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/durable"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/storage"
)

// The raft log was once a Pebble database in the same directory, keyed by a kind byte and
// the 8-byte group id (app id, partition index, big-endian):
//
//	'e' group index(8)  raftpb.Entry
//	'h' group           raftpb.HardState
//	's' group           raftpb.SnapshotMetadata (the truncation point)
//
// Open imports such a database into segments, then removes it: first the marker that makes
// it a database, so that a crash after the import never imports it again, then its files.
// A crash during the import leaves the database in place, and the import is redone.

// pebbleFile reports whether name is one of a Pebble database's files.
func pebbleFile(name string) bool {
	for _, p := range []string{"MANIFEST-", "OPTIONS-", "marker.", "CURRENT", "LOCK"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".log") || strings.HasSuffix(name, ".blob")
}

// importPebble imports the Pebble raft log in l.dir, if there is one (see above).
func (l *Log) importPebble() error {
	desc, err := pebble.Peek(l.dir, vfs.Default)
	if err != nil {
		return fmt.Errorf("raftlog: look for an old raft log in %s: %w", l.dir, err)
	}
	if !desc.Exists {
		return removePebbleFiles(l.dir, false)
	}
	seqs, err := listSegments(l.dir)
	if err != nil {
		return fmt.Errorf("raftlog: %w", err)
	}
	for _, seq := range seqs {
		if err := os.Remove(filepath.Join(l.dir, segmentName(seq))); err != nil {
			return fmt.Errorf("raftlog: %w", err)
		}
	}
	db, err := pebble.Open(l.dir, &pebble.Options{ReadOnly: true, Logger: storage.PebbleLogger(l.lg)})
	if err != nil {
		return fmt.Errorf("raftlog: open the old raft log in %s: %w", l.dir, err)
	}
	groups, err := l.copyPebble(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.round(true)
	}
	l.closeFiles()
	l.mu.segs, l.mu.pending, l.mu.groups = nil, nil, map[idl.GPID]*group{}
	if err != nil {
		return fmt.Errorf("raftlog: import the old raft log in %s: %w", l.dir, err)
	}
	if err := removePebbleFiles(l.dir, true); err != nil {
		return fmt.Errorf("raftlog: remove the old raft log in %s: %w", l.dir, err)
	}
	l.lg.Info("raft log: imported the raft log database of an earlier version", "groups", groups)
	return nil
}

// copyPebble stages every group of db into the log's first segment and seals it.
func (l *Log) copyPebble(db *pebble.DB) (int, error) {
	type state struct {
		hs    raftpb.HardState
		snap  *raftpb.SnapshotMetadata
		ents  []raftpb.Entry
		found bool
	}
	groups := map[idl.GPID]*state{}
	var order []idl.GPID
	it, err := db.NewIter(nil)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		pid := idl.GPID{AppID: int32(binary.BigEndian.Uint32(k[1:])), PartitionIndex: int32(binary.BigEndian.Uint32(k[5:]))}
		st := groups[pid]
		if st == nil {
			st = &state{}
			groups[pid] = st
			order = append(order, pid)
		}
		switch {
		case k[0] == 'e' && len(k) == 17:
			var e raftpb.Entry
			if err := e.Unmarshal(it.Value()); err != nil {
				return 0, fmt.Errorf("entry of %v: %w", pid, err)
			}
			st.ents = append(st.ents, e)
		case k[0] == 'h' && len(k) == 9:
			if err := st.hs.Unmarshal(it.Value()); err != nil {
				return 0, fmt.Errorf("hard state of %v: %w", pid, err)
			}
		case k[0] == 's' && len(k) == 9:
			st.snap = &raftpb.SnapshotMetadata{}
			if err := st.snap.Unmarshal(it.Value()); err != nil {
				return 0, fmt.Errorf("truncation point of %v: %w", pid, err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.newSegmentLocked(1)
	l.mu.Unlock()
	for _, pid := range order {
		st := groups[pid]
		l.mu.Lock()
		first := uint64(1)
		if st.snap != nil {
			if err := l.stageTruncateLocked(pid, *st.snap); err != nil {
				l.mu.Unlock()
				return 0, err
			}
			first = st.snap.Index + 1
		}
		// The entries the old log kept before its truncation point were never read.
		ents := st.ents
		for len(ents) > 0 && ents[0].Index < first {
			ents = ents[1:]
		}
		if len(ents) > 0 {
			l.stageEntriesLocked(pid, ents)
		}
		if !raft.IsEmptyHardState(st.hs) {
			l.stageHardStateLocked(pid, st.hs)
		}
		flush := l.mu.pendingBytes >= flushBytes
		l.mu.Unlock()
		if flush {
			if err := l.round(false); err != nil {
				return 0, err
			}
		}
	}
	l.mu.Lock()
	l.recordLocked(kindSeal, idl.GPID{}, 0, nil)
	l.mu.Unlock()
	return len(order), nil
}

// removePebbleFiles removes the files of a Pebble database from dir: with marker set, its
// manifest marker first, durably, so the database no longer exists if a crash interrupts
// the rest; without, only what such an interruption left.
func removePebbleFiles(dir string, marker bool) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if marker {
		for _, de := range des {
			if strings.HasPrefix(de.Name(), "marker.manifest.") {
				if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
					return err
				}
			}
		}
		if err := durable.SyncDir(dir); err != nil {
			return err
		}
	}
	removed := false
	for _, de := range des {
		if pebbleFile(de.Name()) && !de.IsDir() {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !os.IsNotExist(err) {
				return err
			}
			removed = true
		}
	}
	if removed {
		return durable.SyncDir(dir)
	}
	return nil
}
