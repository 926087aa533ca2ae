package meta

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/throttle"
)

// Defaults of the table limits (section [meta_server]).
const (
	DefaultMaxTables               = 1024
	DefaultMaxPartitionsPerTable   = 4096
	DefaultMaxReplicasPerServer    = 10000
	DefaultMaxTableNameLength      = 128
	DefaultMaxEnvs                 = 128
	DefaultMaxEnvKeyLength         = 256
	DefaultMaxEnvValueLength       = 4096
	DefaultMaxEnvBytes             = 64 << 10
	maxPartitionsPerTableLimit     = MaxPartitionCount
	maxReplicasPerServerUpperLimit = 1 << 20
)

// tableLimits are the bounds create_app and the env updates enforce.
type tableLimits struct {
	maxTables, maxPartitions, maxReplicasPerServer, maxNameLength *config.Value[uint32]
	maxEnvs, maxEnvKey, maxEnvValue, maxEnvBytes                  *config.Value[uint32]
}

func defineTableLimits(r *config.Registry) *tableLimits {
	u32 := func(name, desc string, def, upper uint32) *config.Value[uint32] {
		return config.Define(r, config.Spec[uint32]{Section: "meta_server", Name: name, Description: desc, Default: def, Mutable: true,
			Validate: func(v uint32) error {
				if v == 0 || v > upper {
					return fmt.Errorf("want 1 to %d", upper)
				}
				return nil
			}})
	}
	return &tableLimits{
		maxTables: u32("max_tables", "The most tables (available ones) the cluster holds; create_app past it gets ERR_INVALID_PARAMETERS.", DefaultMaxTables, 1<<20),
		maxPartitions: u32("max_partitions_per_table", "The largest partition count create_app accepts (a partition split is not bounded by it).",
			DefaultMaxPartitionsPerTable, maxPartitionsPerTableLimit),
		maxReplicasPerServer: u32("max_replicas_per_server", "The most partition replicas per alive replica server, on average, that the tables may add up to; create_app past it gets ERR_INVALID_PARAMETERS.",
			DefaultMaxReplicasPerServer, maxReplicasPerServerUpperLimit),
		maxNameLength: u32("max_table_name_length", "The longest table name, in bytes.", DefaultMaxTableNameLength, 1<<16),
		maxEnvs:       u32("max_app_envs", "The most envs a table holds.", DefaultMaxEnvs, 1<<16),
		maxEnvKey:     u32("max_app_env_key_length", "The longest env key, in bytes.", DefaultMaxEnvKeyLength, 1<<16),
		maxEnvValue:   u32("max_app_env_value_length", "The longest env value, in bytes.", DefaultMaxEnvValueLength, 1<<20),
		maxEnvBytes:   u32("max_app_envs_bytes", "The most bytes of keys and values a table's envs add up to.", DefaultMaxEnvBytes, 1<<24),
	}
}

// errLimit wraps every refusal of the table limits.
var errLimit = errors.New("meta: limit")

// checkEnvs checks envs, the envs a table would hold after a create or an update: their
// count and sizes, and the values of those of set (all of envs when set is nil) that have a
// restricted form (throttling). The error says what is wrong, for the hint message.
func (l *tableLimits) checkEnvs(envs, set map[string]string) error {
	if set == nil {
		set = envs
	}
	for k, v := range set {
		if err := throttle.Validate(k, v); err != nil {
			return err
		}
	}
	if n := len(envs); n > int(l.maxEnvs.Get()) {
		return fmt.Errorf("%w: %d envs (max_app_envs %d)", errLimit, n, l.maxEnvs.Get())
	}
	total := 0
	for k, v := range envs {
		switch {
		case k == "":
			return fmt.Errorf("%w: an env key must not be empty", errLimit)
		case len(k) > int(l.maxEnvKey.Get()):
			return fmt.Errorf("%w: env key of %d bytes (max_app_env_key_length %d)", errLimit, len(k), l.maxEnvKey.Get())
		case len(v) > int(l.maxEnvValue.Get()):
			return fmt.Errorf("%w: env %s: value of %d bytes (max_app_env_value_length %d)", errLimit, k, len(v), l.maxEnvValue.Get())
		}
		total += len(k) + len(v)
	}
	if total > int(l.maxEnvBytes.Get()) {
		return fmt.Errorf("%w: envs of %d bytes (max_app_envs_bytes %d)", errLimit, total, l.maxEnvBytes.Get())
	}
	return nil
}

// checkCreate checks a create_app against the table limits, given the cluster's tables and
// its alive replica servers.
func (l *tableLimits) checkCreate(m *clusterMap, name string, o *idl.CreateAppOptions, alive int) error {
	if len(name) > int(l.maxNameLength.Get()) {
		return fmt.Errorf("%w: table name of %d bytes (max_table_name_length %d)", errLimit, len(name), l.maxNameLength.Get())
	}
	if o.PartitionCount > int32(l.maxPartitions.Get()) {
		return fmt.Errorf("%w: %d partitions (max_partitions_per_table %d)", errLimit, o.PartitionCount, l.maxPartitions.Get())
	}
	tables, replicas := 0, int64(o.PartitionCount)*int64(o.ReplicaCount)
	for _, t := range m.Tables {
		if t.Status == idl.AppStatusAvailable {
			tables++
			replicas += int64(len(t.Partitions)) * int64(t.ReplicaCount)
		}
	}
	if tables >= int(l.maxTables.Get()) {
		return fmt.Errorf("%w: %d tables (max_tables %d)", errLimit, tables, l.maxTables.Get())
	}
	if alive > 0 && replicas > int64(alive)*int64(l.maxReplicasPerServer.Get()) {
		return fmt.Errorf("%w: %d replicas on %d servers (max_replicas_per_server %d)", errLimit, replicas, alive, l.maxReplicasPerServer.Get())
	}
	return l.checkEnvs(o.Envs, nil)
}

// defaultLimits are the table limits of a machine made without Settings (tests).
var defaultLimits = sync.OnceValue(func() *tableLimits { return defineTableLimits(config.NewRegistry()) })

// limits returns the machine's table limits.
func (m *machine) limits() *tableLimits {
	if m.cfg.Settings != nil && m.cfg.Settings.limits != nil {
		return m.cfg.Settings.limits
	}
	return defaultLimits()
}
