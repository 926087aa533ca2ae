// Package durable writes files that must survive a crash: a file's data is synced before
// it counts as written, and a directory is synced after files in it were created or renamed.
package durable

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// WriteFile creates (or truncates) name, writes everything r yields into it and syncs it.
func WriteFile(name string, r io.Reader) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// SyncDir syncs a directory, making the creation, removal or renaming of its entries durable.
func SyncDir(dir string) error {
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

// ReplaceFile replaces name with data atomically: it writes and syncs name+".tmp", renames
// it over name and syncs the directory, so a crash leaves either the old content or the new.
func ReplaceFile(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := WriteFile(tmp, bytes.NewReader(data)); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(name))
}
