package pegasus

import "github.com/gopegasus/pegasus/internal/idl"

// KeyValue is one record of a hash key: its sort key and value.
type KeyValue struct {
	SortKey, Value []byte
}

// CompositeKey is the full key of a record: hash key and sort key.
type CompositeKey struct {
	HashKey, SortKey []byte
}

// FilterType says how a [Filter]'s pattern matches a key. The values are the wire values of
// Pegasus's filter_type.
type FilterType int

// Filter types.
const (
	FilterTypeNoFilter      = FilterType(idl.FilterNone)
	FilterTypeMatchAnywhere = FilterType(idl.FilterMatchAnywhere)
	FilterTypeMatchPrefix   = FilterType(idl.FilterMatchPrefix)
	FilterTypeMatchPostfix  = FilterType(idl.FilterMatchPostfix)
)

// Filter selects keys by a byte pattern. An empty pattern matches every key.
type Filter struct {
	Type    FilterType
	Pattern []byte
}

func (f Filter) valid() bool {
	return f.Type >= FilterTypeNoFilter && f.Type <= FilterTypeMatchPostfix
}

// MultiGetOptions are the options of MultiGetOpt and MultiGetRangeOpt. A nil
// *MultiGetOptions means [DefaultMultiGetOptions].
type MultiGetOptions struct {
	// StartInclusive and StopInclusive say whether the range bounds are included.
	StartInclusive bool
	StopInclusive  bool
	// SortKeyFilter selects sort keys (range mode only; the server ignores it for listed keys).
	SortKeyFilter Filter

	// MaxFetchCount is the most records to fetch; <= 0 means no limit (the server still caps
	// one call at 3000 records).
	MaxFetchCount int

	// MaxFetchSize is the most bytes (sort keys plus values) to fetch; <= 0 means no limit.
	MaxFetchSize int

	// Reverse fetches from the end of the range; the result is still in ascending order.
	Reverse bool

	// NoValue fetches sort keys only; values are returned empty.
	NoValue bool
}

// DefaultMultiGetOptions are the options of MultiGet and MultiGetRange: start inclusive, stop
// exclusive, no filter, at most 100 records and 100000 bytes, forward, with values.
// Do not modify it.
var DefaultMultiGetOptions = &MultiGetOptions{
	StartInclusive: true,
	StopInclusive:  false,
	SortKeyFilter:  Filter{Type: FilterTypeNoFilter},
	MaxFetchCount:  100,
	MaxFetchSize:   100000,
	Reverse:        false,
	NoValue:        false,
}

// DelRangeOptions are the options of DelRangeOpt. A nil *DelRangeOptions means
// [DefaultDelRangeOptions].
type DelRangeOptions struct {
	// nextSortKey is, after a failed DelRangeOpt, the first sort key of the range that may
	// not have been deleted; see [DelRangeOptions.NextSortKey].
	nextSortKey    []byte
	StartInclusive bool
	StopInclusive  bool
	SortKeyFilter  Filter
}

// NextSortKey returns, after DelRangeOpt with these options failed, the first sort key of the
// range that may still exist: deleting the rest means calling DelRangeOpt again from it,
// start inclusive. It is nil after a call that succeeded (or failed before deleting anything
// beyond the range start).
func (o *DelRangeOptions) NextSortKey() []byte { return o.nextSortKey }

// DefaultDelRangeOptions are the options of DelRange: start inclusive, stop exclusive, no
// filter. Do not modify it.
var DefaultDelRangeOptions = &DelRangeOptions{
	StartInclusive: true,
	StopInclusive:  false,
	SortKeyFilter:  Filter{Type: FilterTypeNoFilter},
}

// ScannerOptions are the options of GetScanner and GetUnorderedScanners. A nil
// *ScannerOptions means [NewScanOptions].
type ScannerOptions struct {
	BatchSize      int  // records fetched per request; <= 0 or > 1000 means 1000
	StartInclusive bool // whether the start sort key is included
	StopInclusive  bool // whether the stop sort key is included
	HashKeyFilter  Filter
	SortKeyFilter  Filter
	NoValue        bool // fetch keys only; values are returned empty
}

// NewScanOptions returns the default scanner options: batches of 1000, start inclusive, stop
// exclusive, no filters, with values.
func NewScanOptions() *ScannerOptions {
	return &ScannerOptions{
		BatchSize:      1000,
		StartInclusive: true,
		StopInclusive:  false,
		HashKeyFilter:  Filter{Type: FilterTypeNoFilter},
		SortKeyFilter:  Filter{Type: FilterTypeNoFilter},
		NoValue:        false,
	}
}

// CheckType is the condition CheckAndSet evaluates on the check sort key's value. The values
// are the wire values of Pegasus's cas_check_type.
type CheckType int

// Check types. Unlike the Apache go-client, whose CheckTypeIntGreater carries the value of
// bytes-greater, every constant here has its correct wire value.
const (
	CheckTypeNoCheck = CheckType(idl.CheckNone)

	// existence
	CheckTypeValueNotExist        = CheckType(idl.CheckValueNotExist)        // value does not exist
	CheckTypeValueNotExistOrEmpty = CheckType(idl.CheckValueNotExistOrEmpty) // value does not exist or is empty
	CheckTypeValueExist           = CheckType(idl.CheckValueExist)           // value exists
	CheckTypeValueNotEmpty        = CheckType(idl.CheckValueNotEmpty)        // value exists and is not empty

	// match
	CheckTypeMatchAnywhere = CheckType(idl.CheckValueMatchAnywhere) // operand occurs anywhere in value
	CheckTypeMatchPrefix   = CheckType(idl.CheckValueMatchPrefix)   // operand is a prefix of value
	CheckTypeMatchPostfix  = CheckType(idl.CheckValueMatchPostfix)  // operand is a suffix of value

	// bytes compare
	CheckTypeBytesLess           = CheckType(idl.CheckValueBytesLess)           // value < operand
	CheckTypeBytesLessOrEqual    = CheckType(idl.CheckValueBytesLessOrEqual)    // value <= operand
	CheckTypeBytesEqual          = CheckType(idl.CheckValueBytesEqual)          // value == operand
	CheckTypeBytesGreaterOrEqual = CheckType(idl.CheckValueBytesGreaterOrEqual) // value >= operand
	CheckTypeBytesGreater        = CheckType(idl.CheckValueBytesGreater)        // value > operand

	// int compare: value and operand are parsed as int64 first
	CheckTypeIntLess           = CheckType(idl.CheckValueIntLess)           // value < operand
	CheckTypeIntLessOrEqual    = CheckType(idl.CheckValueIntLessOrEqual)    // value <= operand
	CheckTypeIntEqual          = CheckType(idl.CheckValueIntEqual)          // value == operand
	CheckTypeIntGreaterOrEqual = CheckType(idl.CheckValueIntGreaterOrEqual) // value >= operand
	CheckTypeIntGreater        = CheckType(idl.CheckValueIntGreater)        // value > operand
)

// CheckAndSetOptions are the options of CheckAndSet. A nil *CheckAndSetOptions means the zero
// value: no TTL, check value not returned.
type CheckAndSetOptions struct {
	SetValueTTLSeconds int  // TTL of the set value in seconds; 0 means none, < 0 is rejected
	ReturnCheckValue   bool // return the check sort key's value in the result
}

// CheckAndSetResult is the outcome of CheckAndSet.
type CheckAndSetResult struct {
	// SetSucceed is true when the check passed and the value was set.
	SetSucceed bool

	// CheckValue is the check sort key's value (before the set), meaningful only when
	// CheckValueExist is true.
	CheckValue []byte

	// CheckValueExist reports whether the check sort key had a value; meaningful only when
	// CheckValueReturned is true.
	CheckValueExist bool

	// CheckValueReturned reports whether the check value was returned (ReturnCheckValue).
	CheckValueReturned bool
}
