package storage

import "errors"

// Defaults of [Limits].
const (
	// DefaultMaxReplyBytes bounds the keys and values one read returns: Pegasus's bound of a
	// range multi_get (rocksdb_multi_get_max_iteration_size, 30 MiB), applied to every
	// multi-record read.
	DefaultMaxReplyBytes = 30 << 20
	// DefaultMaxBatchGetKeys bounds the keys of one batch_get.
	DefaultMaxBatchGetKeys = 10000
	// DefaultMaxScanners bounds the scanner contexts of one partition replica.
	DefaultMaxScanners = 1000
)

// ErrReadTooLarge is returned by a read whose reply would pass [Limits] where the protocol
// has no way to say "incomplete" (batch_get); servers answer it with ERR_INVALID_DATA.
var ErrReadTooLarge = errors.New("storage: read larger than the server allows")

// Limits bound what one read makes a store hold. Zero fields take the defaults.
type Limits struct {
	// MaxReplyBytes bounds the bytes of keys and values of one multi_get (point mode too,
	// whatever max_kv_size says: past it the reply is incomplete, error 7), one scan batch
	// (cut short, its context carries on) and one batch_get (ErrReadTooLarge).
	MaxReplyBytes int64
	// MaxBatchGetKeys bounds the keys of one batch_get (more: ErrReadTooLarge).
	MaxBatchGetKeys int
	// MaxScanners bounds the scanner contexts of the store; a new one evicts the least
	// recently used, whose next scan is answered as an expired context's.
	MaxScanners int
}

func (l *Limits) fill() {
	if l.MaxReplyBytes <= 0 {
		l.MaxReplyBytes = DefaultMaxReplyBytes
	}
	if l.MaxBatchGetKeys <= 0 {
		l.MaxBatchGetKeys = DefaultMaxBatchGetKeys
	}
	if l.MaxScanners <= 0 {
		l.MaxScanners = DefaultMaxScanners
	}
}

// ScannerEvictions returns how many scanner contexts were evicted for MaxScanners.
func (db *DB) ScannerEvictions() int64 { return db.scanners.evictions() }
