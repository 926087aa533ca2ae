package storage

// Result codes are the RocksDB status codes Pegasus puts in the error field of every read and
// write response (protocol.md §3.4). Semantic failures are reported with these, never as Go
// errors.
const (
	CodeOK                 int32 = 0
	CodeNotFound           int32 = 1
	CodeCorruption         int32 = 2
	CodeNotSupported       int32 = 3
	CodeInvalidArgument    int32 = 4
	CodeIOError            int32 = 5
	CodeMergeInProgress    int32 = 6
	CodeIncomplete         int32 = 7
	CodeShutdownInProgress int32 = 8
	CodeTimedOut           int32 = 9
	CodeAborted            int32 = 10
	CodeBusy               int32 = 11
	CodeExpired            int32 = 12
	CodeTryAgain           int32 = 13
)

// FilterType selects how a filter pattern is matched against a hash key or sort key
// (the wire enum filter_type).
type FilterType int32

// Filter types.
const (
	FilterNone          FilterType = 0
	FilterMatchAnywhere FilterType = 1
	FilterMatchPrefix   FilterType = 2
	FilterMatchPostfix  FilterType = 3
)

func (t FilterType) valid() bool { return t >= FilterNone && t <= FilterMatchPostfix }

// CheckType is the condition of check-and-set and check-and-mutate (the wire enum
// cas_check_type).
type CheckType int32

// Check types.
const (
	CheckNoCheck              CheckType = 0
	CheckValueNotExist        CheckType = 1
	CheckValueNotExistOrEmpty CheckType = 2
	CheckValueExist           CheckType = 3
	CheckValueNotEmpty        CheckType = 4
	CheckValueMatchAnywhere   CheckType = 5
	CheckValueMatchPrefix     CheckType = 6
	CheckValueMatchPostfix    CheckType = 7
	CheckValueBytesLess       CheckType = 8
	CheckValueBytesLessOrEq   CheckType = 9
	CheckValueBytesEqual      CheckType = 10
	CheckValueBytesGreaterEq  CheckType = 11
	CheckValueBytesGreater    CheckType = 12
	CheckValueIntLess         CheckType = 13
	CheckValueIntLessOrEq     CheckType = 14
	CheckValueIntEqual        CheckType = 15
	CheckValueIntGreaterOrEq  CheckType = 16
	CheckValueIntGreater      CheckType = 17
)

func (t CheckType) valid() bool { return t >= CheckNoCheck && t <= CheckValueIntGreater }

// MutateOp is the operation of one [Mutate] in a check-and-mutate (the wire enum
// mutate_operation).
type MutateOp int32

// Mutate operations.
const (
	MutatePut    MutateOp = 0
	MutateDelete MutateOp = 1
)
