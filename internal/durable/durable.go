// Package durable writes files that must survive a crash: a file's data is synced before
// it counts as written, and a directory is synced after files in it were created or renamed.
package durable

import (
	"io"
	"os"
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
