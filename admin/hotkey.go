package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// HotKeys are the hot-key calls, which go to replica servers: Pegasus's hot-key detection
// (RPC_DETECT_HOTKEY) and gopegasus's always-on top-k of hash keys.
type HotKeys interface {
	// DetectHotkey starts, stops or queries the detection of read or write hot keys of
	// partition partitionIndex of table appID on the replica server at replicaAddr
	// ("host:port"; the partition's primary sees its reads and writes, a secondary only the
	// writes it applies). It returns the server's hint (start; a stop has none) or the hot hash key,
	// C-escaped as Pegasus prints it (query). A refusal is a *[HotkeyError]: ERR_BUSY while
	// detecting (or when a start finds a detection under way or finished),
	// ERR_OBJECT_NOT_FOUND when the server has no replica of the partition.
	DetectHotkey(ctx context.Context, replicaAddr string, appID, partitionIndex int32, typ HotkeyType, action DetectAction) (string, error)
	// TableHotKeys returns the top-k hash keys of reads and of writes of every partition of
	// a table (up to k keys of each type; 0: all the servers hold), asked of each partition's
	// primary, by partition. A partition without a primary, or whose server could not be
	// asked, has Err set.
	TableHotKeys(ctx context.Context, tableName string, k int) ([]*PartitionHotKeys, error)
}

// HotkeyType is what a hot-key detection counts.
type HotkeyType int

// Hot-key types.
const (
	HotkeyRead HotkeyType = iota
	HotkeyWrite
)

// String returns "read" or "write".
func (t HotkeyType) String() string {
	if t == HotkeyWrite {
		return "write"
	}
	return "read"
}

// DetectAction is what [HotKeys.DetectHotkey] asks for.
type DetectAction int

// Detection actions.
const (
	DetectStart DetectAction = iota
	DetectStop
	DetectQuery
)

// HotkeyError is a replica server's refusal of a detection request. errors.Is matches Code
// against the Pegasus codes (pegasus.ErrBusy, pegasus.ErrObjectNotFound, ...).
type HotkeyError struct {
	Code error
	Hint string
}

// Error returns the code and the hint, as the Pegasus shell prints them.
func (e *HotkeyError) Error() string { return e.Code.Error() + " " + e.Hint }

// Unwrap returns the code.
func (e *HotkeyError) Unwrap() error { return e.Code }

// HotKey is one hash key of a top-k.
type HotKey struct {
	// HashKey is the key, or its first 256 bytes when Len is larger.
	HashKey []byte `json:"hash_key"`
	Len     int    `json:"len"`
	// Requests estimates the key's requests (weighted: a multi_get by the values it
	// returned, a multi_put by the values it wrote) over the list's Span; it overestimates
	// by at most Error.
	Requests int64 `json:"requests"`
	Error    int64 `json:"error"`
}

// HotKeyList is a partition's top-k of one type.
type HotKeyList struct {
	// Total is the weight of every request of the type over Span (10 to 20 s: the top-k's
	// last complete window and its current one).
	Total int64
	Span  time.Duration
	Keys  []HotKey
}

// PartitionHotKeys is one partition's top-k of reads and of writes.
type PartitionHotKeys struct {
	Index  int32
	Server string // the primary asked
	Read   HotKeyList
	Write  HotKeyList
	Err    error // why the partition could not be asked
}

func (c *client) replicaCall(ctx context.Context, addr, name string, args, reply idl.Value) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	conn := rpc.NewConn(addr, rpc.ConnConfig{CallTimeout: c.cfg.Timeout})
	defer conn.Close()
	return conn.Call(ctx, wire.Header{}, name, args, reply)
}

func (c *client) DetectHotkey(ctx context.Context, replicaAddr string, appID, partitionIndex int32, typ HotkeyType, action DetectAction) (string, error) {
	if typ != HotkeyRead && typ != HotkeyWrite {
		return "", fmt.Errorf("%w: hotkey type %d", ErrInvalidArgument, typ)
	}
	if action < DetectStart || action > DetectQuery {
		return "", fmt.Errorf("%w: detect action %d", ErrInvalidArgument, action)
	}
	req := &idl.DetectHotkeyRequest{Type: idl.HotkeyType(typ), Action: idl.DetectAction(action),
		PID: idl.GPID{AppID: appID, PartitionIndex: partitionIndex}}
	var resp idl.DetectHotkeyResponse
	if err := c.replicaCall(ctx, replicaAddr, idl.RPCDetectHotkey, req, &resp); err != nil {
		return "", fmt.Errorf("detect hotkey on %s: %w", replicaAddr, err)
	}
	if err := wire.CodeError(string(resp.Err)); err != nil {
		return "", &HotkeyError{Code: err, Hint: resp.ErrHint.Or("")}
	}
	if action == DetectQuery {
		return resp.HotkeyResult.Or(""), nil
	}
	return resp.ErrHint.Or(""), nil
}

// replicaHotKeys is one partition replica of the replica.hotkeys remote command's answer.
type replicaHotKeys struct {
	AppID          int32 `json:"app_id"`
	PartitionIndex int32 `json:"partition_index"`
	Read, Write    struct {
		Total  int64    `json:"total"`
		SpanMS int64    `json:"span_ms"`
		Keys   []HotKey `json:"keys"`
	}
}

func (c *client) TableHotKeys(ctx context.Context, tableName string, k int) ([]*PartitionHotKeys, error) {
	cfg, err := c.QueryConfig(ctx, tableName)
	if err != nil {
		return nil, err
	}
	out := make([]*PartitionHotKeys, len(cfg.Partitions))
	byServer := map[string][]int32{}
	for i, p := range cfg.Partitions {
		out[i] = &PartitionHotKeys{Index: int32(i), Server: p.Primary}
		if p.Primary == "" {
			out[i].Err = errors.New("no primary")
			continue
		}
		byServer[p.Primary] = append(byServer[p.Primary], int32(i))
	}
	for _, addr := range slices.Sorted(maps.Keys(byServer)) {
		var txt idl.Text
		err := c.replicaCall(ctx, addr, idl.RPCCLICall, &idl.Command{Cmd: "replica.hotkeys",
			Arguments: []string{strconv.Itoa(int(cfg.AppID)), strconv.Itoa(k)}}, &txt)
		var got []replicaHotKeys
		if err == nil {
			if jerr := json.Unmarshal([]byte(txt), &got); jerr != nil {
				err = fmt.Errorf("replica.hotkeys on %s: %s", addr, string(txt))
			}
		}
		for _, i := range byServer[addr] {
			if err != nil {
				out[i].Err = err
				continue
			}
			out[i].Err = fmt.Errorf("%s holds no replica of partition %d", addr, i)
			for _, r := range got {
				if r.AppID != cfg.AppID || r.PartitionIndex != i {
					continue
				}
				out[i].Err = nil
				out[i].Read = HotKeyList{Total: r.Read.Total, Span: time.Duration(r.Read.SpanMS) * time.Millisecond, Keys: r.Read.Keys}
				out[i].Write = HotKeyList{Total: r.Write.Total, Span: time.Duration(r.Write.SpanMS) * time.Millisecond, Keys: r.Write.Keys}
			}
		}
	}
	return out, nil
}
