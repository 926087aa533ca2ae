package idl

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
