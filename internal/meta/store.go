package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/durable"
)

// Files in the data directory.
const (
	// snapshotFile is the latest snapshot of the cluster map: the map as of one raft log
	// index, with the group's configuration at that index. The raft log is truncated at
	// that index, so the two together are the meta's durable state.
	snapshotFile = "snapshot.json"
	// raftDir holds the raft log (internal/raftlog).
	raftDir = "raft"
)

// snapshot is the content of snapshotFile and the data of the raft snapshots the metas
// exchange: the map is small, so a lagging or new meta catches up with one message.
type snapshot struct {
	Index     uint64           `json:"index"`
	Term      uint64           `json:"term"`
	ConfState raftpb.ConfState `json:"conf_state"`
	// Metas are the addresses of the group's members (and of members being added), so a
	// meta restored from a snapshot can reach them.
	Metas []string    `json:"metas"`
	Map   *clusterMap `json:"map"`
}

// decodeSnapshot parses and checks snapshot data.
func decodeSnapshot(b []byte) (*snapshot, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("meta: snapshot: %w", err)
	}
	if s.Map == nil {
		return nil, errors.New("meta: snapshot without a cluster map")
	}
	if err := s.Map.check(); err != nil {
		return nil, fmt.Errorf("meta: snapshot: %w", err)
	}
	return &s, nil
}

// check validates a map read from disk or received from another meta.
func (m *clusterMap) check() error {
	if m.Format != stateFormat {
		return fmt.Errorf("unknown cluster map format %d", m.Format)
	}
	for i := 1; i < len(m.Tables); i++ {
		if m.Tables[i-1].AppID >= m.Tables[i].AppID {
			return errors.New("tables out of app id order")
		}
	}
	return nil
}

// readSnapshot returns the saved snapshot and its raw bytes; found is false when there is
// none.
func readSnapshot(dir string) (s *snapshot, raw []byte, found bool, err error) {
	raw, err = os.ReadFile(filepath.Join(dir, snapshotFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("meta: read snapshot: %w", err)
	}
	if s, err = decodeSnapshot(raw); err != nil {
		return nil, nil, false, fmt.Errorf("%w (%s)", err, filepath.Join(dir, snapshotFile))
	}
	return s, raw, true, nil
}

// writeSnapshot replaces the saved snapshot atomically: write a temporary file, fsync it,
// rename it over the old one, fsync the directory.
func writeSnapshot(dir string, raw []byte) error {
	if err := durable.ReplaceFile(filepath.Join(dir, snapshotFile), raw); err != nil {
		return fmt.Errorf("meta: save snapshot: %w", err)
	}
	return nil
}
