package wire

// Status is a storage (RocksDB) status code: the value of the i32 error field of every read
// and write response (protocol.md §3.4), unlike the dsn [Code] of the reply envelope and of
// meta replies. Operations report their semantic failures with these.
type Status int32

// Storage statuses.
const (
	StatusOK                 Status = 0
	StatusNotFound           Status = 1
	StatusCorruption         Status = 2
	StatusNotSupported       Status = 3
	StatusInvalidArgument    Status = 4
	StatusIOError            Status = 5
	StatusMergeInProgress    Status = 6
	StatusIncomplete         Status = 7
	StatusShutdownInProgress Status = 8
	StatusTimedOut           Status = 9
	StatusAborted            Status = 10
	StatusBusy               Status = 11
	StatusExpired            Status = 12
	StatusTryAgain           Status = 13
)

var statusNames = [...]string{
	StatusOK:                 "Ok",
	StatusNotFound:           "NotFound",
	StatusCorruption:         "Corruption",
	StatusNotSupported:       "NotSupported",
	StatusInvalidArgument:    "InvalidArgument",
	StatusIOError:            "IOError",
	StatusMergeInProgress:    "MergeInProgress",
	StatusIncomplete:         "Incomplete",
	StatusShutdownInProgress: "ShutdownInProgress",
	StatusTimedOut:           "TimedOut",
	StatusAborted:            "Aborted",
	StatusBusy:               "Busy",
	StatusExpired:            "Expired",
	StatusTryAgain:           "TryAgain",
}

// String returns the status's RocksDB name ("NotFound"), or "Unknown" for a code outside
// that table.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Unknown"
}
