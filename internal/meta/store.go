package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateFile is the name of the persisted cluster map inside the data directory.
const stateFile = "cluster.json"

// store keeps the cluster map durable. Save must not return before the map is on stable
// storage. A raft-replicated store replaces this with a log of mutations and snapshots; the
// server only needs Load at start and Save after each applied mutation.
type store interface {
	// Load returns the saved map, or an empty one when nothing was ever saved.
	Load() (*clusterMap, error)
	// Save replaces the saved map with m atomically.
	Save(m *clusterMap) error
}

var _ store = (*fileStore)(nil)

// fileStore keeps the whole map as one JSON file, replaced atomically: write a temporary
// file, fsync it, rename it over the old one, fsync the directory.
type fileStore struct {
	dir string
}

func (s *fileStore) Load() (*clusterMap, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return newClusterMap(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("meta: load cluster map: %w", err)
	}
	m := newClusterMap()
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("meta: load cluster map %s: %w", filepath.Join(s.dir, stateFile), err)
	}
	if m.Format != stateFormat {
		return nil, fmt.Errorf("meta: load cluster map: unknown format %d", m.Format)
	}
	for i := 1; i < len(m.Tables); i++ {
		if m.Tables[i-1].AppID >= m.Tables[i].AppID {
			return nil, fmt.Errorf("meta: load cluster map: tables out of app id order")
		}
	}
	return m, nil
}

func (s *fileStore) Save(m *clusterMap) error {
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return fmt.Errorf("meta: save cluster map: %w", err)
	}
	tmp := filepath.Join(s.dir, stateFile+".tmp")
	if err := writeSync(tmp, append(b, '\n')); err != nil {
		return fmt.Errorf("meta: save cluster map: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, stateFile)); err != nil {
		return fmt.Errorf("meta: save cluster map: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("meta: save cluster map: %w", err)
	}
	return nil
}

func writeSync(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
