package replica

import (
	"errors"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/storage"
)

// DefaultMaxScannersPerConn is the default of max_scanner_contexts_per_connection.
const DefaultMaxScannersPerConn = 1000

// readLimitSettings are the bounds of one read, in section [pegasus.server]; a partition
// takes them when its store opens.
type readLimitSettings struct {
	maxReplyBytes, maxBatchGetKeys, maxScanners *config.Value[uint32]
	maxScannersPerConn                          *config.Value[uint32]
}

func defineReadLimits(r *config.Registry) *readLimitSettings {
	u32 := func(name, desc string, def uint32) *config.Value[uint32] {
		return config.Define(r, config.Spec[uint32]{Section: "pegasus.server", Name: name, Description: desc, Default: def,
			Validate: func(v uint32) error {
				if v == 0 {
					return errors.New("must be positive")
				}
				return nil
			}})
	}
	return &readLimitSettings{
		maxReplyBytes: u32("max_reply_bytes",
			"The bytes of keys and values one multi_get, scan batch or batch_get returns at most: a multi_get past it is incomplete (error 7, whatever max_kv_size), a scan batch is cut short (its context carries on), a batch_get is refused with ERR_INVALID_DATA.",
			storage.DefaultMaxReplyBytes),
		maxBatchGetKeys: u32("max_batch_get_keys",
			"The most keys of one batch_get; more are refused with ERR_INVALID_DATA.", storage.DefaultMaxBatchGetKeys),
		maxScanners: u32("max_scanner_contexts_per_partition",
			"The most scanner contexts a partition replica keeps; a new one evicts the least recently used, whose next scan gets the expired-context answer (error 1, the client restarts from its last key).",
			storage.DefaultMaxScanners),
		maxScannersPerConn: config.Define(r, config.Spec[uint32]{Section: "pegasus.server", Name: "max_scanner_contexts_per_connection", Mutable: true,
			Description: "The most scanner contexts one client connection holds on this server; a new one clears the connection's oldest, whose next scan gets the expired-context answer.",
			Default:     DefaultMaxScannersPerConn, Validate: func(v uint32) error {
				if v == 0 {
					return errors.New("must be positive")
				}
				return nil
			}}),
	}
}

func (st *readLimitSettings) limits() storage.Limits {
	return storage.Limits{
		MaxReplyBytes:   int64(st.maxReplyBytes.Get()),
		MaxBatchGetKeys: int(st.maxBatchGetKeys.Get()),
		MaxScanners:     int(st.maxScanners.Get()),
	}
}
