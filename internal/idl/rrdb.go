package idl

// The structs of the replica server's data RPCs are generated from rrdb.schema into
// rrdb_gen.go. This file holds what the schema does not express.

// ValidatesPartitionHash returns the effective validate_partition_hash (absent = true).
func (r *GetScannerRequest) ValidatesPartitionHash() bool { return r.ValidatePartitionHash.Or(true) }

// ContextID is a scanner context id as a bare i64 [Value]: the args payload of
// RPC_RRDB_RRDB_CLEAR_SCANNER (field type byte I64).
type ContextID int64

// ThriftType implements [Value].
func (ContextID) ThriftType() Type { return TypeI64 }

// Encode implements [Value].
func (c ContextID) Encode(e *Encoder) { e.I64(int64(c)) }

// Decode implements [Value].
func (c *ContextID) Decode(d *Decoder) { *c = ContextID(d.I64()) }
