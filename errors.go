package pegasus

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gopegasus/pegasus/internal/wire"
)

// OpType names an operation of the client; it appears in every [PError].
type OpType int

// Operation types, in the order of the Apache go-client.
const (
	OpQueryConfig OpType = iota
	OpGet
	OpSet
	OpDel
	OpMultiDel
	OpMultiGet
	OpMultiGetRange
	OpClose
	OpMultiSet
	OpTTL
	OpExist
	OpGetScanner
	OpGetUnorderedScanners
	OpNext
	OpScannerClose
	OpCheckAndSet
	OpSortKeyCount
	OpIncr
	OpBatchGet
	OpDelRange
	numOps
)

var opNames = [numOps]string{
	OpQueryConfig:          "table configuration query",
	OpGet:                  "GET",
	OpSet:                  "SET",
	OpDel:                  "DEL",
	OpMultiDel:             "MULTI_DEL",
	OpMultiGet:             "MULTI_GET",
	OpMultiGetRange:        "MULTI_GET_RANGE",
	OpClose:                "Close",
	OpMultiSet:             "MULTI_SET",
	OpTTL:                  "TTL",
	OpExist:                "EXIST",
	OpGetScanner:           "GET_SCANNER",
	OpGetUnorderedScanners: "GET_UNORDERED_SCANNERS",
	OpNext:                 "SCAN_NEXT",
	OpScannerClose:         "SCANNER_CLOSE",
	OpCheckAndSet:          "CHECK_AND_SET",
	OpSortKeyCount:         "SORTKEY_COUNT",
	OpIncr:                 "INCR",
	OpBatchGet:             "BATCH_GET",
	OpDelRange:             "DEL_RANGE",
}

// String returns the operation's name as the Apache go-client prints it ("GET", "MULTI_SET").
func (op OpType) String() string {
	if op >= 0 && op < numOps {
		return opNames[op]
	}
	return "OpType(" + strconv.Itoa(int(op)) + ")"
}

// PError is the error every operation returns: the operation and its cause. The cause wraps
// the table, partition and server where they are known, and the Pegasus error code or
// storage status, so errors.Is and errors.As reach them through [PError.Unwrap].
type PError struct {
	Err error
	Op  OpType
}

// Error returns "pegasus <OP> failed: <cause>".
func (e *PError) Error() string {
	return fmt.Sprintf("pegasus %s failed: %v", e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *PError) Unwrap() error { return e.Err }

func opError(op OpType, err error) error {
	return &PError{Err: err, Op: op}
}

// Client-side errors.
var (
	// ErrInvalidArgument is wrapped by the error of a call rejected before anything was sent,
	// for example one with a nil or empty hash key.
	ErrInvalidArgument = errors.New("pegasus: invalid argument")
	// ErrClientClosed is wrapped by the error of a call made on (or interrupted by) a closed
	// [Client].
	ErrClientClosed = errors.New("pegasus: client closed")
	// ErrScannerClosed is returned by Next on a closed [Scanner].
	ErrScannerClosed = errors.New("pegasus: scanner closed")
	// ErrNoPrimary is wrapped when the meta servers report no primary for a partition.
	ErrNoPrimary = errors.New("pegasus: partition has no primary replica")
	// ErrOutcomeUnknown is wrapped by the error of a write that may or may not have been
	// applied: its connection broke, or its server timed out or lost its primary role, after
	// the request was sent. The client does not send such a write again (applied twice around
	// other clients' writes, it would not be linearizable); an application that knows no one
	// else writes the keys, or whose write is safe to repeat, may.
	ErrOutcomeUnknown = errors.New("pegasus: the write may or may not have been applied")
)

// Pegasus error codes a caller may act on. They are comparable with errors.Is against any
// error returned by this package.
var (
	ErrObjectNotFound    error = wire.ErrObjectNotFound    // ERR_OBJECT_NOT_FOUND: no such table (or replica)
	ErrInvalidState      error = wire.ErrInvalidState      // ERR_INVALID_STATE: replica is not the primary
	ErrTimeout           error = wire.ErrTimeout           // ERR_TIMEOUT
	ErrBusy              error = wire.ErrBusy              // ERR_BUSY: throttled
	ErrNotEnoughMember   error = wire.ErrNotEnoughMember   // ERR_NOT_ENOUGH_MEMBER
	ErrCapacityExceeded  error = wire.ErrCapacityExceeded  // ERR_CAPACITY_EXCEEDED
	ErrInvalidData       error = wire.ErrInvalidData       // ERR_INVALID_DATA: e.g. a write over 1 MiB
	ErrForwardToOthers   error = wire.ErrForwardToOthers   // ERR_FORWARD_TO_OTHERS: not the meta leader
	ErrAppExist          error = wire.ErrAppExist          // ERR_APP_EXIST
	ErrAppNotExist       error = wire.ErrAppNotExist       // ERR_APP_NOT_EXIST
	ErrBusyCreating      error = wire.ErrBusyCreating      // ERR_BUSY_CREATING
	ErrBusyDropping      error = wire.ErrBusyDropping      // ERR_BUSY_DROPPING
	ErrInvalidParameters error = wire.ErrInvalidParameters // ERR_INVALID_PARAMETERS
	ErrServiceNotActive  error = wire.ErrServiceNotActive  // ERR_SERVICE_NOT_ACTIVE
	ErrACLDeny           error = wire.ErrACLDeny           // ERR_ACL_DENY
	ErrSplitting         error = wire.ErrSplitting         // ERR_SPLITTING
	ErrDiskInsufficient  error = wire.ErrDiskInsufficient  // ERR_DISK_INSUFFICIENT
	ErrOperationDisabled error = wire.ErrOperationDisabled // ERR_OPERATION_DISABLED
	ErrSessionReset      error = wire.ErrSessionReset      // ERR_SESSION_RESET: could not connect
)

// StatusError is a storage (RocksDB) status code that a replica returned in a reply's error
// field, meaning the operation reached the data and failed there (protocol.md §3.4). Statuses
// an operation treats as a normal outcome (NotFound for Get, Incomplete for MultiGet,
// TryAgain for CheckAndSet) are not errors.
type StatusError int32

// Storage statuses.
const (
	StatusNotFound           StatusError = StatusError(wire.StatusNotFound)
	StatusCorruption         StatusError = StatusError(wire.StatusCorruption)
	StatusNotSupported       StatusError = StatusError(wire.StatusNotSupported)
	StatusInvalidArgument    StatusError = StatusError(wire.StatusInvalidArgument)
	StatusIOError            StatusError = StatusError(wire.StatusIOError)
	StatusMergeInProgress    StatusError = StatusError(wire.StatusMergeInProgress)
	StatusIncomplete         StatusError = StatusError(wire.StatusIncomplete)
	StatusShutdownInProgress StatusError = StatusError(wire.StatusShutdownInProgress)
	StatusTimedOut           StatusError = StatusError(wire.StatusTimedOut)
	StatusAborted            StatusError = StatusError(wire.StatusAborted)
	StatusBusy               StatusError = StatusError(wire.StatusBusy)
	StatusExpired            StatusError = StatusError(wire.StatusExpired)
	StatusTryAgain           StatusError = StatusError(wire.StatusTryAgain)
)

// Error returns "pegasus: storage status <Name> (<code>)".
func (s StatusError) Error() string {
	return "pegasus: storage status " + wire.Status(s).String() + " (" + strconv.Itoa(int(s)) + ")"
}

func invalidArg(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}
