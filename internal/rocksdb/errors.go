package rocksdb

import (
	"errors"
	"fmt"
)

// ErrCorrupt is matched (errors.Is) by every [CorruptionError]: the file is not a valid
// block-based table, or it was damaged.
var ErrCorrupt = errors.New("rocksdb: corrupt table")

// ErrUnsupported is matched (errors.Is) by every [UnsupportedError]: the file is valid but
// uses a feature this package does not read (a merge operand, a compression or table kind it
// lacks, a newer format version).
var ErrUnsupported = errors.New("rocksdb: unsupported table feature")

// CorruptionError reports a damaged or malformed table: the file's name, the file offset of
// the structure that failed (a block's offset for anything inside a block) and what was wrong.
type CorruptionError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("rocksdb: corrupt table %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// UnsupportedError reports a valid table feature this package does not read, with the file's
// name and the offset of the structure that uses it.
type UnsupportedError struct {
	File    string
	Offset  int64
	Feature string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("rocksdb: table %s at offset %d: unsupported %s", e.File, e.Offset, e.Feature)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

func (t *Table) corrupt(off int64, format string, args ...any) error {
	return &CorruptionError{File: t.name, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

func (t *Table) unsupported(off int64, format string, args ...any) error {
	return &UnsupportedError{File: t.name, Offset: off, Feature: fmt.Sprintf(format, args...)}
}
