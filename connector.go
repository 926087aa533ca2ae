package pegasus

import (
	"context"
	"time"
)

// TableConnector reads and writes one table. It is safe for concurrent use. Byte slices
// passed in are not retained after a call returns; byte slices returned belong to the caller.
//
// Every method returns errors as *[PError]. Arguments are checked before anything is sent;
// a rejected argument gives an error wrapping [ErrInvalidArgument]. A hash key must be
// non-empty and shorter than 65535 bytes (the Apache go-client lets exactly 65535 through,
// which makes the Apache server abort on multi-key operations).
type TableConnector interface {
	// Get returns the value of hashKey + sortKey, or nil (and a nil error) if there is none.
	// hashKey must not be nil or empty; sortKey must not be nil but may be empty.
	Get(ctx context.Context, hashKey []byte, sortKey []byte) ([]byte, error)

	// Set stores value under hashKey + sortKey without expiry.
	// hashKey must not be nil or empty; sortKey and value must not be nil but may be empty.
	Set(ctx context.Context, hashKey []byte, sortKey []byte, value []byte) error

	// SetTTL is Set with a time to live: the record expires ttl after now (rounded up to
	// whole seconds); ttl 0 means no expiry, a negative ttl is rejected.
	SetTTL(ctx context.Context, hashKey []byte, sortKey []byte, value []byte, ttl time.Duration) error

	// Del deletes hashKey + sortKey; deleting a missing record is not an error.
	// hashKey must not be nil or empty; sortKey must not be nil but may be empty.
	Del(ctx context.Context, hashKey []byte, sortKey []byte) error

	// MultiGet atomically reads the records hashKey + sortKeys[i], or, when sortKeys is nil or
	// empty, every record of hashKey, with [DefaultMultiGetOptions] (so at most 100 records).
	// The records found are returned sorted by sort key in ascending order; nil if none.
	// allFetched is false when a limit stopped the read before every matching record was
	// returned. sortKeys[i] must not be nil but may be empty.
	MultiGet(ctx context.Context, hashKey []byte, sortKeys [][]byte) ([]*KeyValue, bool, error)

	// MultiGetOpt is MultiGet with options (nil means DefaultMultiGetOptions). The range,
	// filter and reverse options apply only when sortKeys is empty.
	MultiGetOpt(ctx context.Context, hashKey []byte, sortKeys [][]byte, options *MultiGetOptions) ([]*KeyValue, bool, error)

	// MultiGetRange atomically reads the records of hashKey whose sort keys lie between
	// startSortKey (inclusive) and stopSortKey (exclusive), with DefaultMultiGetOptions.
	// An empty startSortKey means from the first record, an empty stopSortKey to the last.
	// The records are returned in ascending sort-key order; nil if none. allFetched is false
	// when a limit stopped the read early.
	MultiGetRange(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte) ([]*KeyValue, bool, error)

	// MultiGetRangeOpt is MultiGetRange with options (nil means DefaultMultiGetOptions).
	MultiGetRangeOpt(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte, options *MultiGetOptions) ([]*KeyValue, bool, error)

	// MultiSet atomically stores values[i] under hashKey + sortKeys[i], without expiry.
	// sortKeys and values must be non-empty and of equal length; their elements must not be
	// nil but may be empty.
	MultiSet(ctx context.Context, hashKey []byte, sortKeys [][]byte, values [][]byte) error

	// MultiSetOpt is MultiSet with a time to live for every record (0 means none).
	MultiSetOpt(ctx context.Context, hashKey []byte, sortKeys [][]byte, values [][]byte, ttl time.Duration) error

	// MultiDel atomically deletes hashKey + sortKeys[i]. sortKeys must not be empty; its
	// elements must not be nil but may be empty.
	MultiDel(ctx context.Context, hashKey []byte, sortKeys [][]byte) error

	// DelRange deletes the records of hashKey whose sort keys lie between startSortKey
	// (inclusive) and stopSortKey (exclusive); empty bounds mean the first / last record. It
	// scans the range and deletes what it finds in batches of up to 1000 (each batch atomic,
	// the whole not).
	DelRange(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte) error

	// DelRangeOpt is DelRange with options (nil means DefaultDelRangeOptions). When it fails,
	// options.NextSortKey tells where the undeleted part of the range begins. As the Pegasus
	// go-client documents, the call writes that sort key into *options (and clears it at the
	// start), so an options value must not be shared by concurrent calls; nil and
	// DefaultDelRangeOptions itself are never written to (the call then works on a copy).
	DelRangeOpt(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte, options *DelRangeOptions) error

	// TTL returns the remaining time to live of hashKey + sortKey in seconds: -1 when the
	// record has none, -2 when it does not exist.
	TTL(ctx context.Context, hashKey []byte, sortKey []byte) (int, error)

	// Exist reports whether hashKey + sortKey exists.
	Exist(ctx context.Context, hashKey []byte, sortKey []byte) (bool, error)

	// GetScanner returns a scanner over the records of hashKey whose sort keys lie between
	// startSortKey and stopSortKey (bounds included as options say; nil options means
	// NewScanOptions()). Empty bounds mean the first / last record. A range that is empty
	// gives a scanner that is complete at once.
	GetScanner(ctx context.Context, hashKey []byte, startSortKey []byte, stopSortKey []byte, options *ScannerOptions) (Scanner, error)

	// GetUnorderedScanners returns at most maxSplitCount scanners that together cover the
	// whole table, each over a share of its partitions (sizes differ by at most one; none is
	// empty). Records come in no particular order across scanners. maxSplitCount must be
	// positive. The options' range flags are ignored (every record is visited).
	GetUnorderedScanners(ctx context.Context, maxSplitCount int, options *ScannerOptions) ([]Scanner, error)

	// CheckAndSet atomically checks the value of hashKey + checkSortKey with checkType and
	// checkOperand and, if the check passes, sets hashKey + setSortKey to setValue (the two
	// sort keys may be equal). A failed check is not an error: the result's SetSucceed is
	// false. options may be nil.
	CheckAndSet(ctx context.Context, hashKey []byte, checkSortKey []byte, checkType CheckType,
		checkOperand []byte, setSortKey []byte, setValue []byte, options *CheckAndSetOptions) (*CheckAndSetResult, error)

	// SortKeyCount returns the number of records of hashKey.
	SortKeyCount(ctx context.Context, hashKey []byte) (int64, error)

	// Incr atomically adds increment to the integer stored at hashKey + sortKey (a missing
	// record counts as 0) and returns the new value. The record keeps its TTL. A value that is
	// not an integer, or an overflow, fails with [StatusInvalidArgument].
	Incr(ctx context.Context, hashKey []byte, sortKey []byte, increment int64) (int64, error)

	// BatchGet reads keys concurrently, one Get each (not atomically): values[i] is the value
	// of keys[i], nil if not found. If any Get fails, err is non-nil and the values of the
	// Gets that succeeded are still filled.
	BatchGet(ctx context.Context, keys []CompositeKey) (values [][]byte, err error)
}

// Scanner iterates over records. It fetches them from the server in batches of the
// options' BatchSize. A Scanner is not safe for concurrent use. Byte slices returned by Next
// belong to the caller.
type Scanner interface {
	// Next returns the next record, or completed == true once there are no more. After an
	// error that is not a context error, every later call returns that error.
	Next(ctx context.Context) (completed bool, hashKey []byte, sortKey []byte, value []byte, err error)

	// Close releases the scanner and the server-side context it holds. It does not wait for
	// the server and returns nil; Next fails after Close.
	Close() error
}
