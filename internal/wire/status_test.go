package wire

import (
	"strings"
	"testing"
)

// protocol.md §3.4, the RocksDB status codes of the response error fields, as listed there.
var statusTable = []struct {
	code Status
	name string
}{
	{0, "Ok"}, {1, "NotFound"}, {2, "Corruption"}, {3, "NotSupported"}, {4, "InvalidArgument"},
	{5, "IOError"}, {6, "MergeInProgress"}, {7, "Incomplete"}, {8, "ShutdownInProgress"},
	{9, "TimedOut"}, {10, "Aborted"}, {11, "Busy"}, {12, "Expired"}, {13, "TryAgain"},
}

func TestStatusMatchesProtocol(t *testing.T) {
	consts := []Status{StatusOK, StatusNotFound, StatusCorruption, StatusNotSupported,
		StatusInvalidArgument, StatusIOError, StatusMergeInProgress, StatusIncomplete,
		StatusShutdownInProgress, StatusTimedOut, StatusAborted, StatusBusy, StatusExpired,
		StatusTryAgain}
	if len(consts) != len(statusTable) {
		t.Fatalf("%d constants, protocol.md lists %d codes", len(consts), len(statusTable))
	}
	for i, row := range statusTable {
		t.Run(row.name, func(t *testing.T) {
			if consts[i] != row.code || consts[i].String() != row.name {
				t.Errorf("constant %d = %d %q, protocol.md: %d %q", i, consts[i], consts[i], row.code, row.name)
			}
		})
	}
	for _, s := range []Status{-1, 14} {
		if s.String() != "Unknown" {
			t.Errorf("Status(%d) = %q, want Unknown", s, s)
		}
	}
}

// protocol.md §3.1: the names the go-client parses, in its enum's order, then its client-local
// ERR_SESSION_RESET.
const goClientCodes = `ERR_OK, ERR_UNKNOWN, ERR_REPLICATION_FAILURE, ERR_APP_EXIST,
ERR_APP_NOT_EXIST, ERR_APP_DROPPED, ERR_BUSY_CREATING, ERR_BUSY_DROPPING, ERR_EXPIRED,
ERR_LOCK_ALREADY_EXIST, ERR_HOLD_BY_OTHERS, ERR_RECURSIVE_LOCK, ERR_NO_OWNER,
ERR_NODE_ALREADY_EXIST, ERR_INCONSISTENT_STATE, ERR_ARRAY_INDEX_OUT_OF_RANGE,
ERR_SERVICE_NOT_FOUND, ERR_SERVICE_ALREADY_RUNNING, ERR_IO_PENDING, ERR_TIMEOUT,
ERR_SERVICE_NOT_ACTIVE, ERR_BUSY, ERR_NETWORK_INIT_FAILED, ERR_FORWARD_TO_OTHERS,
ERR_OBJECT_NOT_FOUND, ERR_HANDLER_NOT_FOUND, ERR_LEARN_FILE_FAILED, ERR_GET_LEARN_STATE_FAILED,
ERR_INVALID_VERSION, ERR_INVALID_PARAMETERS, ERR_CAPACITY_EXCEEDED, ERR_INVALID_STATE,
ERR_INACTIVE_STATE, ERR_NOT_ENOUGH_MEMBER, ERR_FILE_OPERATION_FAILED, ERR_HANDLE_EOF,
ERR_WRONG_CHECKSUM, ERR_INVALID_DATA, ERR_INVALID_HANDLE, ERR_INCOMPLETE_DATA,
ERR_VERSION_OUTDATED, ERR_PATH_NOT_FOUND, ERR_PATH_ALREADY_EXIST, ERR_ADDRESS_ALREADY_USED,
ERR_STATE_FREEZED, ERR_LOCAL_APP_FAILURE, ERR_BIND_IOCP_FAILED, ERR_NETWORK_START_FAILED,
ERR_NOT_IMPLEMENTED, ERR_CHECKPOINT_FAILED, ERR_WRONG_TIMING, ERR_NO_NEED_OPERATE,
ERR_CORRUPTION, ERR_TRY_AGAIN, ERR_CLUSTER_NOT_FOUND, ERR_CLUSTER_ALREADY_EXIST,
ERR_SERVICE_ALREADY_EXIST, ERR_INJECTED, ERR_NETWORK_FAILURE, ERR_UNDER_RECOVERY,
ERR_OPERATION_DISABLED, ERR_ZOOKEEPER_OPERATION, ERR_CHILD_REGISTERED, ERR_INGESTION_FAILED,
ERR_UNAUTHENTICATED, ERR_KRB5_INTERNAL, ERR_SASL_INTERNAL, ERR_SASL_INCOMPLETE, ERR_ACL_DENY,
ERR_SPLITTING, ERR_PARENT_PARTITION_MISUSED, ERR_CHILD_NOT_READY, ERR_DISK_INSUFFICIENT,
ERR_SESSION_RESET`

func TestCodesMatchProtocol(t *testing.T) {
	names := strings.Split(goClientCodes, ",")
	if len(names) != 74 {
		t.Fatalf("the table has %d names, protocol.md 74", len(names))
	}
	for i, n := range names {
		n = strings.TrimSpace(n)
		if got := Code(i).Name(); got != n {
			t.Errorf("Code(%d) = %s, protocol.md: %s", i, got, n)
		}
		if want := i < 73; Code(i).ForClients() != want {
			t.Errorf("%s.ForClients() = %v", n, !want)
		}
	}
}
