package idl

import (
	"strconv"
	"strings"
)

// The structs of the meta server's RPCs are generated from meta.schema into meta_gen.go.
// This file holds what the schema does not express.

// Text is a bare thrift string as a [Value]: the reply of RPC_CLI_CLI_CALL, whose result
// field 0 has type STRING.
type Text string

// ThriftType implements [Value].
func (Text) ThriftType() Type { return TypeString }

// Encode implements [Value].
func (s Text) Encode(e *Encoder) { e.String(string(s)) }

// Decode implements [Value].
func (s *Text) Decode(d *Decoder) { *s = Text(d.String()) }

// MetaFunctionLevel is how much the meta server does on its own (meta_function_level, an
// i32 on the wire in [MetaControlRequest] and [MetaControlResponse]). Its values are
// Pegasus's, from fl_stopped (100) to fl_lively (500).
type MetaFunctionLevel int32

// MetaFunctionLevel values.
const (
	MetaLevelStopped MetaFunctionLevel = 100
	MetaLevelBlind   MetaFunctionLevel = 200
	MetaLevelFreezed MetaFunctionLevel = 300
	MetaLevelSteady  MetaFunctionLevel = 400
	MetaLevelLively  MetaFunctionLevel = 500
	// MetaLevelInvalid in a request asks for the current level without changing it.
	MetaLevelInvalid MetaFunctionLevel = 10000
)

var metaLevelNames = map[MetaFunctionLevel]string{
	MetaLevelStopped: "fl_stopped", MetaLevelBlind: "fl_blind", MetaLevelFreezed: "fl_freezed",
	MetaLevelSteady: "fl_steady", MetaLevelLively: "fl_lively", MetaLevelInvalid: "fl_invalid",
}

// String returns the Pegasus name of v ("fl_lively", ...), or "MetaFunctionLevel(n)".
func (v MetaFunctionLevel) String() string {
	if n, ok := metaLevelNames[v]; ok {
		return n
	}
	return "MetaFunctionLevel(" + strconv.Itoa(int(v)) + ")"
}

// ParseMetaFunctionLevel returns the level named s, with or without its "fl_" prefix
// ("lively", "fl_steady"); fl_invalid is not a level one can set, and is refused.
func ParseMetaFunctionLevel(s string) (MetaFunctionLevel, bool) {
	s = strings.TrimPrefix(s, "fl_")
	for v, n := range metaLevelNames {
		if v != MetaLevelInvalid && n == "fl_"+s {
			return v, true
		}
	}
	return 0, false
}
