// The error names of protocol.md §3.1, in the official go-client's order, then the client-local,
// Java-only and server-only names. Append new names at the end: Code values are not persisted,
// but keeping the order makes the go-client list a prefix.

package wire

// Error codes. OK is the success value; every other code is an error.
const (
	OK                            Code = iota // ERR_OK
	ErrUnknown                                // ERR_UNKNOWN
	ErrReplicationFailure                     // ERR_REPLICATION_FAILURE
	ErrAppExist                               // ERR_APP_EXIST
	ErrAppNotExist                            // ERR_APP_NOT_EXIST
	ErrAppDropped                             // ERR_APP_DROPPED
	ErrBusyCreating                           // ERR_BUSY_CREATING
	ErrBusyDropping                           // ERR_BUSY_DROPPING
	ErrExpired                                // ERR_EXPIRED
	ErrLockAlreadyExist                       // ERR_LOCK_ALREADY_EXIST
	ErrHoldByOthers                           // ERR_HOLD_BY_OTHERS
	ErrRecursiveLock                          // ERR_RECURSIVE_LOCK
	ErrNoOwner                                // ERR_NO_OWNER
	ErrNodeAlreadyExist                       // ERR_NODE_ALREADY_EXIST
	ErrInconsistentState                      // ERR_INCONSISTENT_STATE
	ErrArrayIndexOutOfRange                   // ERR_ARRAY_INDEX_OUT_OF_RANGE
	ErrServiceNotFound                        // ERR_SERVICE_NOT_FOUND
	ErrServiceAlreadyRunning                  // ERR_SERVICE_ALREADY_RUNNING
	ErrIOPending                              // ERR_IO_PENDING
	ErrTimeout                                // ERR_TIMEOUT
	ErrServiceNotActive                       // ERR_SERVICE_NOT_ACTIVE
	ErrBusy                                   // ERR_BUSY
	ErrNetworkInitFailed                      // ERR_NETWORK_INIT_FAILED
	ErrForwardToOthers                        // ERR_FORWARD_TO_OTHERS
	ErrObjectNotFound                         // ERR_OBJECT_NOT_FOUND
	ErrHandlerNotFound                        // ERR_HANDLER_NOT_FOUND
	ErrLearnFileFailed                        // ERR_LEARN_FILE_FAILED
	ErrGetLearnStateFailed                    // ERR_GET_LEARN_STATE_FAILED
	ErrInvalidVersion                         // ERR_INVALID_VERSION
	ErrInvalidParameters                      // ERR_INVALID_PARAMETERS
	ErrCapacityExceeded                       // ERR_CAPACITY_EXCEEDED
	ErrInvalidState                           // ERR_INVALID_STATE
	ErrInactiveState                          // ERR_INACTIVE_STATE
	ErrNotEnoughMember                        // ERR_NOT_ENOUGH_MEMBER
	ErrFileOperationFailed                    // ERR_FILE_OPERATION_FAILED
	ErrHandleEOF                              // ERR_HANDLE_EOF
	ErrWrongChecksum                          // ERR_WRONG_CHECKSUM
	ErrInvalidData                            // ERR_INVALID_DATA
	ErrInvalidHandle                          // ERR_INVALID_HANDLE
	ErrIncompleteData                         // ERR_INCOMPLETE_DATA
	ErrVersionOutdated                        // ERR_VERSION_OUTDATED
	ErrPathNotFound                           // ERR_PATH_NOT_FOUND
	ErrPathAlreadyExist                       // ERR_PATH_ALREADY_EXIST
	ErrAddressAlreadyUsed                     // ERR_ADDRESS_ALREADY_USED
	ErrStateFreezed                           // ERR_STATE_FREEZED
	ErrLocalAppFailure                        // ERR_LOCAL_APP_FAILURE
	ErrBindIOCPFailed                         // ERR_BIND_IOCP_FAILED
	ErrNetworkStartFailed                     // ERR_NETWORK_START_FAILED
	ErrNotImplemented                         // ERR_NOT_IMPLEMENTED
	ErrCheckpointFailed                       // ERR_CHECKPOINT_FAILED
	ErrWrongTiming                            // ERR_WRONG_TIMING
	ErrNoNeedOperate                          // ERR_NO_NEED_OPERATE
	ErrCorruption                             // ERR_CORRUPTION
	ErrTryAgain                               // ERR_TRY_AGAIN
	ErrClusterNotFound                        // ERR_CLUSTER_NOT_FOUND
	ErrClusterAlreadyExist                    // ERR_CLUSTER_ALREADY_EXIST
	ErrServiceAlreadyExist                    // ERR_SERVICE_ALREADY_EXIST
	ErrInjected                               // ERR_INJECTED
	ErrNetworkFailure                         // ERR_NETWORK_FAILURE
	ErrUnderRecovery                          // ERR_UNDER_RECOVERY
	ErrOperationDisabled                      // ERR_OPERATION_DISABLED
	ErrZookeeperOperation                     // ERR_ZOOKEEPER_OPERATION
	ErrChildRegistered                        // ERR_CHILD_REGISTERED
	ErrIngestionFailed                        // ERR_INGESTION_FAILED
	ErrUnauthenticated                        // ERR_UNAUTHENTICATED
	ErrKRB5Internal                           // ERR_KRB5_INTERNAL
	ErrSASLInternal                           // ERR_SASL_INTERNAL
	ErrSASLIncomplete                         // ERR_SASL_INCOMPLETE
	ErrACLDeny                                // ERR_ACL_DENY
	ErrSplitting                              // ERR_SPLITTING
	ErrParentPartitionMisused                 // ERR_PARENT_PARTITION_MISUSED
	ErrChildNotReady                          // ERR_CHILD_NOT_READY
	ErrDiskInsufficient                       // ERR_DISK_INSUFFICIENT
	ErrSessionReset                           // ERR_SESSION_RESET
	ErrLearnerNotFound                        // ERR_LEARNER_NOT_FOUND
	ErrDirNotEmpty                            // ERR_DIR_NOT_EMPTY
	ErrFSInternal                             // ERR_FS_INTERNAL
	ErrIgnoreBadData                          // ERR_IGNORE_BAD_DATA
	ErrMockInternal                           // ERR_MOCK_INTERNAL
	ErrThreadInterrupted                      // ERR_THREAD_INTERRUPTED
	ErrRetryExhausted                         // ERR_RETRY_EXHAUSTED
	ErrSyncRangerPoliciesFailed               // ERR_SYNC_RANGER_POLICIES_FAILED
	ErrRangerParseACL                         // ERR_RANGER_PARSE_ACL
	ErrRangerPoliciesNoNeedUpdate             // ERR_RANGER_POLICIES_NO_NEED_UPDATE
	ErrRDBCorruption                          // ERR_RDB_CORRUPTION
	ErrDiskIOError                            // ERR_DISK_IO_ERROR
	ErrCurlFailed                             // ERR_CURL_FAILED
	ErrDupExist                               // ERR_DUP_EXIST
	ErrHTTPError                              // ERR_HTTP_ERROR
	ErrNotMatched                             // ERR_NOT_MATCHED

	numCodes
)

// names holds the wire name of every Code, indexed by Code.
var names = [numCodes]string{
	OK:                            "ERR_OK",
	ErrUnknown:                    "ERR_UNKNOWN",
	ErrReplicationFailure:         "ERR_REPLICATION_FAILURE",
	ErrAppExist:                   "ERR_APP_EXIST",
	ErrAppNotExist:                "ERR_APP_NOT_EXIST",
	ErrAppDropped:                 "ERR_APP_DROPPED",
	ErrBusyCreating:               "ERR_BUSY_CREATING",
	ErrBusyDropping:               "ERR_BUSY_DROPPING",
	ErrExpired:                    "ERR_EXPIRED",
	ErrLockAlreadyExist:           "ERR_LOCK_ALREADY_EXIST",
	ErrHoldByOthers:               "ERR_HOLD_BY_OTHERS",
	ErrRecursiveLock:              "ERR_RECURSIVE_LOCK",
	ErrNoOwner:                    "ERR_NO_OWNER",
	ErrNodeAlreadyExist:           "ERR_NODE_ALREADY_EXIST",
	ErrInconsistentState:          "ERR_INCONSISTENT_STATE",
	ErrArrayIndexOutOfRange:       "ERR_ARRAY_INDEX_OUT_OF_RANGE",
	ErrServiceNotFound:            "ERR_SERVICE_NOT_FOUND",
	ErrServiceAlreadyRunning:      "ERR_SERVICE_ALREADY_RUNNING",
	ErrIOPending:                  "ERR_IO_PENDING",
	ErrTimeout:                    "ERR_TIMEOUT",
	ErrServiceNotActive:           "ERR_SERVICE_NOT_ACTIVE",
	ErrBusy:                       "ERR_BUSY",
	ErrNetworkInitFailed:          "ERR_NETWORK_INIT_FAILED",
	ErrForwardToOthers:            "ERR_FORWARD_TO_OTHERS",
	ErrObjectNotFound:             "ERR_OBJECT_NOT_FOUND",
	ErrHandlerNotFound:            "ERR_HANDLER_NOT_FOUND",
	ErrLearnFileFailed:            "ERR_LEARN_FILE_FAILED",
	ErrGetLearnStateFailed:        "ERR_GET_LEARN_STATE_FAILED",
	ErrInvalidVersion:             "ERR_INVALID_VERSION",
	ErrInvalidParameters:          "ERR_INVALID_PARAMETERS",
	ErrCapacityExceeded:           "ERR_CAPACITY_EXCEEDED",
	ErrInvalidState:               "ERR_INVALID_STATE",
	ErrInactiveState:              "ERR_INACTIVE_STATE",
	ErrNotEnoughMember:            "ERR_NOT_ENOUGH_MEMBER",
	ErrFileOperationFailed:        "ERR_FILE_OPERATION_FAILED",
	ErrHandleEOF:                  "ERR_HANDLE_EOF",
	ErrWrongChecksum:              "ERR_WRONG_CHECKSUM",
	ErrInvalidData:                "ERR_INVALID_DATA",
	ErrInvalidHandle:              "ERR_INVALID_HANDLE",
	ErrIncompleteData:             "ERR_INCOMPLETE_DATA",
	ErrVersionOutdated:            "ERR_VERSION_OUTDATED",
	ErrPathNotFound:               "ERR_PATH_NOT_FOUND",
	ErrPathAlreadyExist:           "ERR_PATH_ALREADY_EXIST",
	ErrAddressAlreadyUsed:         "ERR_ADDRESS_ALREADY_USED",
	ErrStateFreezed:               "ERR_STATE_FREEZED",
	ErrLocalAppFailure:            "ERR_LOCAL_APP_FAILURE",
	ErrBindIOCPFailed:             "ERR_BIND_IOCP_FAILED",
	ErrNetworkStartFailed:         "ERR_NETWORK_START_FAILED",
	ErrNotImplemented:             "ERR_NOT_IMPLEMENTED",
	ErrCheckpointFailed:           "ERR_CHECKPOINT_FAILED",
	ErrWrongTiming:                "ERR_WRONG_TIMING",
	ErrNoNeedOperate:              "ERR_NO_NEED_OPERATE",
	ErrCorruption:                 "ERR_CORRUPTION",
	ErrTryAgain:                   "ERR_TRY_AGAIN",
	ErrClusterNotFound:            "ERR_CLUSTER_NOT_FOUND",
	ErrClusterAlreadyExist:        "ERR_CLUSTER_ALREADY_EXIST",
	ErrServiceAlreadyExist:        "ERR_SERVICE_ALREADY_EXIST",
	ErrInjected:                   "ERR_INJECTED",
	ErrNetworkFailure:             "ERR_NETWORK_FAILURE",
	ErrUnderRecovery:              "ERR_UNDER_RECOVERY",
	ErrOperationDisabled:          "ERR_OPERATION_DISABLED",
	ErrZookeeperOperation:         "ERR_ZOOKEEPER_OPERATION",
	ErrChildRegistered:            "ERR_CHILD_REGISTERED",
	ErrIngestionFailed:            "ERR_INGESTION_FAILED",
	ErrUnauthenticated:            "ERR_UNAUTHENTICATED",
	ErrKRB5Internal:               "ERR_KRB5_INTERNAL",
	ErrSASLInternal:               "ERR_SASL_INTERNAL",
	ErrSASLIncomplete:             "ERR_SASL_INCOMPLETE",
	ErrACLDeny:                    "ERR_ACL_DENY",
	ErrSplitting:                  "ERR_SPLITTING",
	ErrParentPartitionMisused:     "ERR_PARENT_PARTITION_MISUSED",
	ErrChildNotReady:              "ERR_CHILD_NOT_READY",
	ErrDiskInsufficient:           "ERR_DISK_INSUFFICIENT",
	ErrSessionReset:               "ERR_SESSION_RESET",
	ErrLearnerNotFound:            "ERR_LEARNER_NOT_FOUND",
	ErrDirNotEmpty:                "ERR_DIR_NOT_EMPTY",
	ErrFSInternal:                 "ERR_FS_INTERNAL",
	ErrIgnoreBadData:              "ERR_IGNORE_BAD_DATA",
	ErrMockInternal:               "ERR_MOCK_INTERNAL",
	ErrThreadInterrupted:          "ERR_THREAD_INTERRUPTED",
	ErrRetryExhausted:             "ERR_RETRY_EXHAUSTED",
	ErrSyncRangerPoliciesFailed:   "ERR_SYNC_RANGER_POLICIES_FAILED",
	ErrRangerParseACL:             "ERR_RANGER_PARSE_ACL",
	ErrRangerPoliciesNoNeedUpdate: "ERR_RANGER_POLICIES_NO_NEED_UPDATE",
	ErrRDBCorruption:              "ERR_RDB_CORRUPTION",
	ErrDiskIOError:                "ERR_DISK_IO_ERROR",
	ErrCurlFailed:                 "ERR_CURL_FAILED",
	ErrDupExist:                   "ERR_DUP_EXIST",
	ErrHTTPError:                  "ERR_HTTP_ERROR",
	ErrNotMatched:                 "ERR_NOT_MATCHED",
}

// firstNotForClients is the first Code that the official go-client cannot parse: codes from
// here on must never be sent to a client (protocol.md §3.1).
const firstNotForClients = ErrSessionReset
