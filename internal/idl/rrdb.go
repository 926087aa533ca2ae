package idl

// Structs of the replica server's data RPCs (protocol.md §2.3). Field comments give the
// thrift field id. "Encoded key" means the 2-byte hash-key length, hash key and sort key;
// "raw" means the bytes as the user gave them. Blob fields decode as slices aliasing the
// decoder's input.

// FilterType selects how a key filter pattern matches (filter_type, i32 on the wire).
type FilterType int32

// FilterType values.
const (
	FilterNone FilterType = iota
	FilterMatchAnywhere
	FilterMatchPrefix
	FilterMatchPostfix
)

var filterTypeNames = []string{"FT_NO_FILTER", "FT_MATCH_ANYWHERE", "FT_MATCH_PREFIX",
	"FT_MATCH_POSTFIX"}

// String returns the Pegasus name of f ("FT_MATCH_PREFIX"), or "FilterType(n)".
func (f FilterType) String() string { return enumName(filterTypeNames, "FilterType", int32(f)) }

// CASCheckType is the condition of a check-and-set or check-and-mutate (cas_check_type, i32).
type CASCheckType int32

// CASCheckType values.
const (
	CheckNone CASCheckType = iota
	CheckValueNotExist
	CheckValueNotExistOrEmpty
	CheckValueExist
	CheckValueNotEmpty
	CheckValueMatchAnywhere
	CheckValueMatchPrefix
	CheckValueMatchPostfix
	CheckValueBytesLess
	CheckValueBytesLessOrEqual
	CheckValueBytesEqual
	CheckValueBytesGreaterOrEqual
	CheckValueBytesGreater
	CheckValueIntLess
	CheckValueIntLessOrEqual
	CheckValueIntEqual
	CheckValueIntGreaterOrEqual
	CheckValueIntGreater
)

var casCheckNames = []string{"CT_NO_CHECK", "CT_VALUE_NOT_EXIST", "CT_VALUE_NOT_EXIST_OR_EMPTY",
	"CT_VALUE_EXIST", "CT_VALUE_NOT_EMPTY", "CT_VALUE_MATCH_ANYWHERE", "CT_VALUE_MATCH_PREFIX",
	"CT_VALUE_MATCH_POSTFIX", "CT_VALUE_BYTES_LESS", "CT_VALUE_BYTES_LESS_OR_EQUAL",
	"CT_VALUE_BYTES_EQUAL", "CT_VALUE_BYTES_GREATER_OR_EQUAL", "CT_VALUE_BYTES_GREATER",
	"CT_VALUE_INT_LESS", "CT_VALUE_INT_LESS_OR_EQUAL", "CT_VALUE_INT_EQUAL",
	"CT_VALUE_INT_GREATER_OR_EQUAL", "CT_VALUE_INT_GREATER"}

// String returns the Pegasus name of c ("CT_VALUE_INT_LESS"), or "CASCheckType(n)".
func (c CASCheckType) String() string { return enumName(casCheckNames, "CASCheckType", int32(c)) }

// MutateOperation is the kind of one [Mutate] (mutate_operation, i32 on the wire).
type MutateOperation int32

// MutateOperation values.
const (
	MutatePut MutateOperation = iota
	MutateDelete
)

var mutateOpNames = []string{"MO_PUT", "MO_DELETE"}

// String returns the Pegasus name of o ("MO_PUT"), or "MutateOperation(n)".
func (o MutateOperation) String() string {
	return enumName(mutateOpNames, "MutateOperation", int32(o))
}

// UpdateType marks a server-internal [UpdateRequest] (update_type, i32 on the wire).
type UpdateType int32

// UpdateType values.
const (
	UpdatePut UpdateType = iota
	UpdateIncr
	UpdateCheckAndSet
	UpdateCheckAndMutatePut
	UpdateCheckAndMutateRemove
)

var updateTypeNames = []string{"UT_PUT", "UT_INCR", "UT_CHECK_AND_SET", "UT_CHECK_AND_MUTATE_PUT",
	"UT_CHECK_AND_MUTATE_REMOVE"}

// String returns the Pegasus name of u ("UT_PUT"), or "UpdateType(n)".
func (u UpdateType) String() string { return enumName(updateTypeNames, "UpdateType", int32(u)) }

// UpdateRequest is a single put (RPC_RRDB_RRDB_PUT). Fields 4..7 are server-internal;
// clients never set them.
type UpdateRequest struct {
	Key                []byte               // 1: encoded key
	Value              []byte               // 2
	ExpireTSSeconds    int32                // 3: absolute expiry, 0 = none
	Type               Optional[UpdateType] // 4
	CheckValueReturned Optional[bool]       // 5
	CheckValueExist    Optional[bool]       // 6
	CheckValue         Optional[[]byte]     // 7: blob
}

// ThriftType implements [Value].
func (*UpdateRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *UpdateRequest) Encode(e *Encoder) {
	e.FieldBlob(1, r.Key)
	e.FieldBlob(2, r.Value)
	e.FieldI32(3, r.ExpireTSSeconds)
	if r.Type.Set {
		e.FieldI32(4, int32(r.Type.V))
	}
	if r.CheckValueReturned.Set {
		e.FieldBool(5, r.CheckValueReturned.V)
	}
	if r.CheckValueExist.Set {
		e.FieldBool(6, r.CheckValueExist.V)
	}
	if r.CheckValue.Set {
		e.FieldBlob(7, r.CheckValue.V)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *UpdateRequest) Decode(d *Decoder) {
	*r = UpdateRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.Key)
		case 2:
			d.blobField(t, &r.Value)
		case 3:
			d.i32Field(t, &r.ExpireTSSeconds)
		case 4:
			if d.Want(t, TypeI32) {
				r.Type = Some(UpdateType(d.I32()))
			}
		case 5:
			d.optBoolField(t, &r.CheckValueReturned)
		case 6:
			d.optBoolField(t, &r.CheckValueExist)
		case 7:
			if d.Want(t, TypeStruct) {
				r.CheckValue = Some(d.Binary())
			}
		default:
			d.Skip(t)
		}
	}
}

// KeyValue is one sort key and value of a hash key.
type KeyValue struct {
	Key             []byte          // 1: raw sort key
	Value           []byte          // 2
	ExpireTSSeconds Optional[int32] // 3: ignored inside a MultiPutRequest
}

// ThriftType implements [Value].
func (*KeyValue) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *KeyValue) Encode(e *Encoder) {
	e.FieldBlob(1, r.Key)
	e.FieldBlob(2, r.Value)
	if r.ExpireTSSeconds.Set {
		e.FieldI32(3, r.ExpireTSSeconds.V)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *KeyValue) Decode(d *Decoder) {
	*r = KeyValue{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.Key)
		case 2:
			d.blobField(t, &r.Value)
		case 3:
			d.optI32Field(t, &r.ExpireTSSeconds)
		default:
			d.Skip(t)
		}
	}
}

// encodeKVs appends field id as a list<key_value>.
func (e *Encoder) encodeKVs(id int16, kvs []KeyValue) {
	e.FieldBegin(TypeList, id)
	e.ListBegin(TypeStruct, len(kvs))
	for i := range kvs {
		kvs[i].Encode(e)
	}
}

// MultiPutRequest puts several sort keys of one hash key (RPC_RRDB_RRDB_MULTI_PUT).
type MultiPutRequest struct {
	HashKey         []byte     // 1: raw
	KVs             []KeyValue // 2
	ExpireTSSeconds int32      // 3: applies to every kv
}

// ThriftType implements [Value].
func (*MultiPutRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *MultiPutRequest) Encode(e *Encoder) {
	e.FieldBlob(1, r.HashKey)
	e.encodeKVs(2, r.KVs)
	e.FieldI32(3, r.ExpireTSSeconds)
	e.FieldStop()
}

// Decode implements [Value].
func (r *MultiPutRequest) Decode(d *Decoder) {
	*r = MultiPutRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.HashKey)
		case 2:
			r.KVs, _ = structList[KeyValue](d, t)
		case 3:
			d.i32Field(t, &r.ExpireTSSeconds)
		default:
			d.Skip(t)
		}
	}
}

// MultiRemoveRequest removes several sort keys of one hash key (RPC_RRDB_RRDB_MULTI_REMOVE).
type MultiRemoveRequest struct {
	HashKey  []byte   // 1: raw
	SortKeys [][]byte // 2: raw
	MaxCount int64    // 3: deprecated, ignored
}

// ThriftType implements [Value].
func (*MultiRemoveRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *MultiRemoveRequest) Encode(e *Encoder) {
	e.FieldBlob(1, r.HashKey)
	e.blobList(2, r.SortKeys)
	e.FieldI64(3, r.MaxCount)
	e.FieldStop()
}

// Decode implements [Value].
func (r *MultiRemoveRequest) Decode(d *Decoder) {
	*r = MultiRemoveRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.HashKey)
		case 2:
			r.SortKeys, _ = d.blobList(t)
		case 3:
			d.i64Field(t, &r.MaxCount)
		default:
			d.Skip(t)
		}
	}
}

// IncrRequest adds to an integer value (RPC_RRDB_RRDB_INCR).
type IncrRequest struct {
	Key             []byte // 1: encoded key
	Increment       int64  // 2
	ExpireTSSeconds int32  // 3: 0 keep TTL, > 0 set absolute expiry, < 0 remove TTL
}

// ThriftType implements [Value].
func (*IncrRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *IncrRequest) Encode(e *Encoder) {
	e.FieldBlob(1, r.Key)
	e.FieldI64(2, r.Increment)
	e.FieldI32(3, r.ExpireTSSeconds)
	e.FieldStop()
}

// Decode implements [Value].
func (r *IncrRequest) Decode(d *Decoder) {
	*r = IncrRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.Key)
		case 2:
			d.i64Field(t, &r.Increment)
		case 3:
			d.i32Field(t, &r.ExpireTSSeconds)
		default:
			d.Skip(t)
		}
	}
}

// CheckAndSetRequest sets a value if a check on (possibly another) sort key passes
// (RPC_RRDB_RRDB_CHECK_AND_SET).
type CheckAndSetRequest struct {
	HashKey            []byte       // 1: raw
	CheckSortKey       []byte       // 2
	CheckType          CASCheckType // 3
	CheckOperand       []byte       // 4
	SetDiffSortKey     bool         // 5
	SetSortKey         []byte       // 6: used only if SetDiffSortKey
	SetValue           []byte       // 7
	SetExpireTSSeconds int32        // 8: absolute, 0 = none
	ReturnCheckValue   bool         // 9
}

// ThriftType implements [Value].
func (*CheckAndSetRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *CheckAndSetRequest) Encode(e *Encoder) {
	e.FieldBlob(1, r.HashKey)
	e.FieldBlob(2, r.CheckSortKey)
	e.FieldI32(3, int32(r.CheckType))
	e.FieldBlob(4, r.CheckOperand)
	e.FieldBool(5, r.SetDiffSortKey)
	e.FieldBlob(6, r.SetSortKey)
	e.FieldBlob(7, r.SetValue)
	e.FieldI32(8, r.SetExpireTSSeconds)
	e.FieldBool(9, r.ReturnCheckValue)
	e.FieldStop()
}

// Decode implements [Value].
func (r *CheckAndSetRequest) Decode(d *Decoder) {
	*r = CheckAndSetRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.HashKey)
		case 2:
			d.blobField(t, &r.CheckSortKey)
		case 3:
			d.i32Field(t, (*int32)(&r.CheckType))
		case 4:
			d.blobField(t, &r.CheckOperand)
		case 5:
			d.boolField(t, &r.SetDiffSortKey)
		case 6:
			d.blobField(t, &r.SetSortKey)
		case 7:
			d.blobField(t, &r.SetValue)
		case 8:
			d.i32Field(t, &r.SetExpireTSSeconds)
		case 9:
			d.boolField(t, &r.ReturnCheckValue)
		default:
			d.Skip(t)
		}
	}
}

// Mutate is one put or delete of a [CheckAndMutateRequest]. Value is always written (empty
// for a delete) but may be absent on the wire: the Java client omits it for MutateDelete.
type Mutate struct {
	Operation          MutateOperation // 1
	SortKey            []byte          // 2
	Value              []byte          // 3
	SetExpireTSSeconds int32           // 4: absolute, 0 for a delete
}

// ThriftType implements [Value].
func (*Mutate) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *Mutate) Encode(e *Encoder) {
	e.FieldI32(1, int32(r.Operation))
	e.FieldBlob(2, r.SortKey)
	e.FieldBlob(3, r.Value)
	e.FieldI32(4, r.SetExpireTSSeconds)
	e.FieldStop()
}

// Decode implements [Value].
func (r *Mutate) Decode(d *Decoder) {
	*r = Mutate{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, (*int32)(&r.Operation))
		case 2:
			d.blobField(t, &r.SortKey)
		case 3:
			d.blobField(t, &r.Value)
		case 4:
			d.i32Field(t, &r.SetExpireTSSeconds)
		default:
			d.Skip(t)
		}
	}
}

// CheckAndMutateRequest applies several mutations if a check passes
// (RPC_RRDB_RRDB_CHECK_AND_MUTATE).
type CheckAndMutateRequest struct {
	HashKey          []byte       // 1: raw
	CheckSortKey     []byte       // 2
	CheckType        CASCheckType // 3
	CheckOperand     []byte       // 4
	MutateList       []Mutate     // 5
	ReturnCheckValue bool         // 6
}

// ThriftType implements [Value].
func (*CheckAndMutateRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *CheckAndMutateRequest) Encode(e *Encoder) {
	e.FieldBlob(1, r.HashKey)
	e.FieldBlob(2, r.CheckSortKey)
	e.FieldI32(3, int32(r.CheckType))
	e.FieldBlob(4, r.CheckOperand)
	e.FieldBegin(TypeList, 5)
	e.ListBegin(TypeStruct, len(r.MutateList))
	for i := range r.MutateList {
		r.MutateList[i].Encode(e)
	}
	e.FieldBool(6, r.ReturnCheckValue)
	e.FieldStop()
}

// Decode implements [Value].
func (r *CheckAndMutateRequest) Decode(d *Decoder) {
	*r = CheckAndMutateRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.HashKey)
		case 2:
			d.blobField(t, &r.CheckSortKey)
		case 3:
			d.i32Field(t, (*int32)(&r.CheckType))
		case 4:
			d.blobField(t, &r.CheckOperand)
		case 5:
			r.MutateList, _ = structList[Mutate](d, t)
		case 6:
			d.boolField(t, &r.ReturnCheckValue)
		default:
			d.Skip(t)
		}
	}
}

// MultiGetRequest reads several sort keys of one hash key (RPC_RRDB_RRDB_MULTI_GET): the
// listed SortKeys, or, when there are none, a range.
type MultiGetRequest struct {
	HashKey              []byte     // 1: raw
	SortKeys             [][]byte   // 2: non-empty = point lookups
	MaxKVCount           int32      // 3: <= 0 no limit
	MaxKVSize            int32      // 4: <= 0 no limit (bytes)
	NoValue              bool       // 5
	StartSortKey         []byte     // 6: empty = first
	StopSortKey          []byte     // 7: empty = last
	StartInclusive       bool       // 8
	StopInclusive        bool       // 9
	SortKeyFilterType    FilterType // 10
	SortKeyFilterPattern []byte     // 11
	Reverse              bool       // 12
}

// ThriftType implements [Value].
func (*MultiGetRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *MultiGetRequest) Encode(e *Encoder) {
	e.FieldBlob(1, r.HashKey)
	e.blobList(2, r.SortKeys)
	e.FieldI32(3, r.MaxKVCount)
	e.FieldI32(4, r.MaxKVSize)
	e.FieldBool(5, r.NoValue)
	e.FieldBlob(6, r.StartSortKey)
	e.FieldBlob(7, r.StopSortKey)
	e.FieldBool(8, r.StartInclusive)
	e.FieldBool(9, r.StopInclusive)
	e.FieldI32(10, int32(r.SortKeyFilterType))
	e.FieldBlob(11, r.SortKeyFilterPattern)
	e.FieldBool(12, r.Reverse)
	e.FieldStop()
}

// Decode implements [Value].
func (r *MultiGetRequest) Decode(d *Decoder) {
	*r = MultiGetRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.HashKey)
		case 2:
			r.SortKeys, _ = d.blobList(t)
		case 3:
			d.i32Field(t, &r.MaxKVCount)
		case 4:
			d.i32Field(t, &r.MaxKVSize)
		case 5:
			d.boolField(t, &r.NoValue)
		case 6:
			d.blobField(t, &r.StartSortKey)
		case 7:
			d.blobField(t, &r.StopSortKey)
		case 8:
			d.boolField(t, &r.StartInclusive)
		case 9:
			d.boolField(t, &r.StopInclusive)
		case 10:
			d.i32Field(t, (*int32)(&r.SortKeyFilterType))
		case 11:
			d.blobField(t, &r.SortKeyFilterPattern)
		case 12:
			d.boolField(t, &r.Reverse)
		default:
			d.Skip(t)
		}
	}
}

// FullKey is a hash key and sort key, both raw.
type FullKey struct {
	HashKey []byte // 1
	SortKey []byte // 2
}

// ThriftType implements [Value].
func (*FullKey) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *FullKey) Encode(e *Encoder) {
	e.FieldBlob(1, r.HashKey)
	e.FieldBlob(2, r.SortKey)
	e.FieldStop()
}

// Decode implements [Value].
func (r *FullKey) Decode(d *Decoder) {
	*r = FullKey{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.HashKey)
		case 2:
			d.blobField(t, &r.SortKey)
		default:
			d.Skip(t)
		}
	}
}

// BatchGetRequest reads several full keys of one partition (RPC_RRDB_RRDB_BATCH_GET).
type BatchGetRequest struct {
	Keys []FullKey // 1
}

// ThriftType implements [Value].
func (*BatchGetRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *BatchGetRequest) Encode(e *Encoder) {
	e.FieldBegin(TypeList, 1)
	e.ListBegin(TypeStruct, len(r.Keys))
	for i := range r.Keys {
		r.Keys[i].Encode(e)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *BatchGetRequest) Decode(d *Decoder) {
	*r = BatchGetRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			r.Keys, _ = structList[FullKey](d, t)
		default:
			d.Skip(t)
		}
	}
}

// GetScannerRequest opens a scanner (RPC_RRDB_RRDB_GET_SCANNER). The optional fields 11..13
// keep their presence so a decoded request re-encodes byte for byte; use the accessor methods
// for their effective values. OnlyReturnCount (14) has an idl default and is written only when
// true.
type GetScannerRequest struct {
	StartKey              []byte         // 1: encoded key
	StopKey               []byte         // 2: encoded key
	StartInclusive        bool           // 3
	StopInclusive         bool           // 4
	BatchSize             int32          // 5: <= 0 or > 1000 means 1000
	NoValue               bool           // 6
	HashKeyFilterType     FilterType     // 7
	HashKeyFilterPattern  []byte         // 8
	SortKeyFilterType     FilterType     // 9
	SortKeyFilterPattern  []byte         // 10
	ValidatePartitionHash Optional[bool] // 11: absent = true
	ReturnExpireTS        Optional[bool] // 12: absent = false
	FullScan              Optional[bool] // 13: absent = false
	OnlyReturnCount       bool           // 14: optional, written only when true
}

// ValidatesPartitionHash returns the effective validate_partition_hash (absent = true).
func (r *GetScannerRequest) ValidatesPartitionHash() bool { return r.ValidatePartitionHash.Or(true) }

// ThriftType implements [Value].
func (*GetScannerRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *GetScannerRequest) Encode(e *Encoder) {
	e.FieldBlob(1, r.StartKey)
	e.FieldBlob(2, r.StopKey)
	e.FieldBool(3, r.StartInclusive)
	e.FieldBool(4, r.StopInclusive)
	e.FieldI32(5, r.BatchSize)
	e.FieldBool(6, r.NoValue)
	e.FieldI32(7, int32(r.HashKeyFilterType))
	e.FieldBlob(8, r.HashKeyFilterPattern)
	e.FieldI32(9, int32(r.SortKeyFilterType))
	e.FieldBlob(10, r.SortKeyFilterPattern)
	if r.ValidatePartitionHash.Set {
		e.FieldBool(11, r.ValidatePartitionHash.V)
	}
	if r.ReturnExpireTS.Set {
		e.FieldBool(12, r.ReturnExpireTS.V)
	}
	if r.FullScan.Set {
		e.FieldBool(13, r.FullScan.V)
	}
	if r.OnlyReturnCount {
		e.FieldBool(14, true)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *GetScannerRequest) Decode(d *Decoder) {
	*r = GetScannerRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.StartKey)
		case 2:
			d.blobField(t, &r.StopKey)
		case 3:
			d.boolField(t, &r.StartInclusive)
		case 4:
			d.boolField(t, &r.StopInclusive)
		case 5:
			d.i32Field(t, &r.BatchSize)
		case 6:
			d.boolField(t, &r.NoValue)
		case 7:
			d.i32Field(t, (*int32)(&r.HashKeyFilterType))
		case 8:
			d.blobField(t, &r.HashKeyFilterPattern)
		case 9:
			d.i32Field(t, (*int32)(&r.SortKeyFilterType))
		case 10:
			d.blobField(t, &r.SortKeyFilterPattern)
		case 11:
			d.optBoolField(t, &r.ValidatePartitionHash)
		case 12:
			d.optBoolField(t, &r.ReturnExpireTS)
		case 13:
			d.optBoolField(t, &r.FullScan)
		case 14:
			d.boolField(t, &r.OnlyReturnCount)
		default:
			d.Skip(t)
		}
	}
}

// ScanRequest fetches the next batch of an open scanner (RPC_RRDB_RRDB_SCAN).
type ScanRequest struct {
	ContextID int64 // 1
}

// ThriftType implements [Value].
func (*ScanRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *ScanRequest) Encode(e *Encoder) {
	e.FieldI64(1, r.ContextID)
	e.FieldStop()
}

// Decode implements [Value].
func (r *ScanRequest) Decode(d *Decoder) {
	*r = ScanRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i64Field(t, &r.ContextID)
		default:
			d.Skip(t)
		}
	}
}

// ContextID is a scanner context id as a bare i64 [Value]: the args payload of
// RPC_RRDB_RRDB_CLEAR_SCANNER (field type byte I64).
type ContextID int64

// ThriftType implements [Value].
func (ContextID) ThriftType() Type { return TypeI64 }

// Encode implements [Value].
func (c ContextID) Encode(e *Encoder) { e.I64(int64(c)) }

// Decode implements [Value].
func (c *ContextID) Decode(d *Decoder) { *c = ContextID(d.I64()) }

// Responses. Error is a RocksDB status code (0 = OK), not a dsn error; Server is the
// replica's "host:port" and Decree the write's log sequence number, both ignored by clients.
// Decoding into a reused response keeps the previous Server string when it is unchanged, so
// it does not allocate.

// UpdateResponse answers PUT, MULTI_PUT and REMOVE.
type UpdateResponse struct {
	Error          int32  // 1
	AppID          int32  // 2
	PartitionIndex int32  // 3
	Decree         int64  // 4
	Server         string // 5
}

// ThriftType implements [Value].
func (*UpdateResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *UpdateResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.FieldI32(2, r.AppID)
	e.FieldI32(3, r.PartitionIndex)
	e.FieldI64(4, r.Decree)
	e.FieldString(5, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *UpdateResponse) Decode(d *Decoder) {
	server := r.Server
	*r = UpdateResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			d.i32Field(t, &r.AppID)
		case 3:
			d.i32Field(t, &r.PartitionIndex)
		case 4:
			d.i64Field(t, &r.Decree)
		case 5:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// ReadResponse answers GET. Note the field ids: there is no field 5.
type ReadResponse struct {
	Error          int32  // 1
	Value          []byte // 2
	AppID          int32  // 3
	PartitionIndex int32  // 4
	Server         string // 6
}

// ThriftType implements [Value].
func (*ReadResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *ReadResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.FieldBlob(2, r.Value)
	e.FieldI32(3, r.AppID)
	e.FieldI32(4, r.PartitionIndex)
	e.FieldString(6, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *ReadResponse) Decode(d *Decoder) {
	server := r.Server
	*r = ReadResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			d.blobField(t, &r.Value)
		case 3:
			d.i32Field(t, &r.AppID)
		case 4:
			d.i32Field(t, &r.PartitionIndex)
		case 6:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// TTLResponse answers TTL. TTLSeconds is -1 when the value has no TTL.
type TTLResponse struct {
	Error          int32  // 1
	TTLSeconds     int32  // 2
	AppID          int32  // 3
	PartitionIndex int32  // 4
	Server         string // 6
}

// ThriftType implements [Value].
func (*TTLResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *TTLResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.FieldI32(2, r.TTLSeconds)
	e.FieldI32(3, r.AppID)
	e.FieldI32(4, r.PartitionIndex)
	e.FieldString(6, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *TTLResponse) Decode(d *Decoder) {
	server := r.Server
	*r = TTLResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			d.i32Field(t, &r.TTLSeconds)
		case 3:
			d.i32Field(t, &r.AppID)
		case 4:
			d.i32Field(t, &r.PartitionIndex)
		case 6:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// CountResponse answers SORTKEY_COUNT.
type CountResponse struct {
	Error          int32  // 1
	Count          int64  // 2
	AppID          int32  // 3
	PartitionIndex int32  // 4
	Server         string // 6
}

// ThriftType implements [Value].
func (*CountResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *CountResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.FieldI64(2, r.Count)
	e.FieldI32(3, r.AppID)
	e.FieldI32(4, r.PartitionIndex)
	e.FieldString(6, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *CountResponse) Decode(d *Decoder) {
	server := r.Server
	*r = CountResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			d.i64Field(t, &r.Count)
		case 3:
			d.i32Field(t, &r.AppID)
		case 4:
			d.i32Field(t, &r.PartitionIndex)
		case 6:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// MultiRemoveResponse answers MULTI_REMOVE.
type MultiRemoveResponse struct {
	Error          int32  // 1
	Count          int64  // 2
	AppID          int32  // 3
	PartitionIndex int32  // 4
	Decree         int64  // 5
	Server         string // 6
}

// ThriftType implements [Value].
func (*MultiRemoveResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *MultiRemoveResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.FieldI64(2, r.Count)
	e.FieldI32(3, r.AppID)
	e.FieldI32(4, r.PartitionIndex)
	e.FieldI64(5, r.Decree)
	e.FieldString(6, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *MultiRemoveResponse) Decode(d *Decoder) {
	server := r.Server
	*r = MultiRemoveResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			d.i64Field(t, &r.Count)
		case 3:
			d.i32Field(t, &r.AppID)
		case 4:
			d.i32Field(t, &r.PartitionIndex)
		case 5:
			d.i64Field(t, &r.Decree)
		case 6:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// MultiGetResponse answers MULTI_GET.
type MultiGetResponse struct {
	Error          int32      // 1
	KVs            []KeyValue // 2
	AppID          int32      // 3
	PartitionIndex int32      // 4
	Server         string     // 6
}

// ThriftType implements [Value].
func (*MultiGetResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *MultiGetResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.encodeKVs(2, r.KVs)
	e.FieldI32(3, r.AppID)
	e.FieldI32(4, r.PartitionIndex)
	e.FieldString(6, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *MultiGetResponse) Decode(d *Decoder) {
	server := r.Server
	*r = MultiGetResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			r.KVs, _ = structList[KeyValue](d, t)
		case 3:
			d.i32Field(t, &r.AppID)
		case 4:
			d.i32Field(t, &r.PartitionIndex)
		case 6:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// FullData is one record of a [BatchGetResponse].
type FullData struct {
	HashKey []byte // 1
	SortKey []byte // 2
	Value   []byte // 3
}

// ThriftType implements [Value].
func (*FullData) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *FullData) Encode(e *Encoder) {
	e.FieldBlob(1, r.HashKey)
	e.FieldBlob(2, r.SortKey)
	e.FieldBlob(3, r.Value)
	e.FieldStop()
}

// Decode implements [Value].
func (r *FullData) Decode(d *Decoder) {
	*r = FullData{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.blobField(t, &r.HashKey)
		case 2:
			d.blobField(t, &r.SortKey)
		case 3:
			d.blobField(t, &r.Value)
		default:
			d.Skip(t)
		}
	}
}

// BatchGetResponse answers BATCH_GET.
type BatchGetResponse struct {
	Error          int32      // 1
	Data           []FullData // 2
	AppID          int32      // 3
	PartitionIndex int32      // 4
	Server         string     // 6
}

// ThriftType implements [Value].
func (*BatchGetResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *BatchGetResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.FieldBegin(TypeList, 2)
	e.ListBegin(TypeStruct, len(r.Data))
	for i := range r.Data {
		r.Data[i].Encode(e)
	}
	e.FieldI32(3, r.AppID)
	e.FieldI32(4, r.PartitionIndex)
	e.FieldString(6, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *BatchGetResponse) Decode(d *Decoder) {
	server := r.Server
	*r = BatchGetResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			r.Data, _ = structList[FullData](d, t)
		case 3:
			d.i32Field(t, &r.AppID)
		case 4:
			d.i32Field(t, &r.PartitionIndex)
		case 6:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// IncrResponse answers INCR.
type IncrResponse struct {
	Error          int32  // 1
	NewValue       int64  // 2
	AppID          int32  // 3
	PartitionIndex int32  // 4
	Decree         int64  // 5
	Server         string // 6
}

// ThriftType implements [Value].
func (*IncrResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *IncrResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.FieldI64(2, r.NewValue)
	e.FieldI32(3, r.AppID)
	e.FieldI32(4, r.PartitionIndex)
	e.FieldI64(5, r.Decree)
	e.FieldString(6, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *IncrResponse) Decode(d *Decoder) {
	server := r.Server
	*r = IncrResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			d.i64Field(t, &r.NewValue)
		case 3:
			d.i32Field(t, &r.AppID)
		case 4:
			d.i32Field(t, &r.PartitionIndex)
		case 5:
			d.i64Field(t, &r.Decree)
		case 6:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// CheckAndSetResponse answers CHECK_AND_SET.
type CheckAndSetResponse struct {
	Error              int32  // 1
	CheckValueReturned bool   // 2
	CheckValueExist    bool   // 3
	CheckValue         []byte // 4
	AppID              int32  // 5
	PartitionIndex     int32  // 6
	Decree             int64  // 7
	Server             string // 8
}

// ThriftType implements [Value].
func (*CheckAndSetResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *CheckAndSetResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.FieldBool(2, r.CheckValueReturned)
	e.FieldBool(3, r.CheckValueExist)
	e.FieldBlob(4, r.CheckValue)
	e.FieldI32(5, r.AppID)
	e.FieldI32(6, r.PartitionIndex)
	e.FieldI64(7, r.Decree)
	e.FieldString(8, r.Server)
	e.FieldStop()
}

// Decode implements [Value].
func (r *CheckAndSetResponse) Decode(d *Decoder) {
	server := r.Server
	*r = CheckAndSetResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			d.boolField(t, &r.CheckValueReturned)
		case 3:
			d.boolField(t, &r.CheckValueExist)
		case 4:
			d.blobField(t, &r.CheckValue)
		case 5:
			d.i32Field(t, &r.AppID)
		case 6:
			d.i32Field(t, &r.PartitionIndex)
		case 7:
			d.i64Field(t, &r.Decree)
		case 8:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		default:
			d.Skip(t)
		}
	}
}

// CheckAndMutateResponse answers CHECK_AND_MUTATE; same layout as [CheckAndSetResponse].
type CheckAndMutateResponse CheckAndSetResponse

// ThriftType implements [Value].
func (*CheckAndMutateResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *CheckAndMutateResponse) Encode(e *Encoder) { (*CheckAndSetResponse)(r).Encode(e) }

// Decode implements [Value].
func (r *CheckAndMutateResponse) Decode(d *Decoder) { (*CheckAndSetResponse)(r).Decode(d) }

// ScanResponse answers GET_SCANNER and SCAN. ContextID -1 means the scan is complete.
type ScanResponse struct {
	Error          int32           // 1
	KVs            []KeyValue      // 2
	ContextID      int64           // 3
	AppID          int32           // 4
	PartitionIndex int32           // 5
	Server         string          // 6
	KVCount        Optional[int32] // 7
}

// ThriftType implements [Value].
func (*ScanResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *ScanResponse) Encode(e *Encoder) {
	e.FieldI32(1, r.Error)
	e.encodeKVs(2, r.KVs)
	e.FieldI64(3, r.ContextID)
	e.FieldI32(4, r.AppID)
	e.FieldI32(5, r.PartitionIndex)
	e.FieldString(6, r.Server)
	if r.KVCount.Set {
		e.FieldI32(7, r.KVCount.V)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *ScanResponse) Decode(d *Decoder) {
	server := r.Server
	*r = ScanResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.Error)
		case 2:
			r.KVs, _ = structList[KeyValue](d, t)
		case 3:
			d.i64Field(t, &r.ContextID)
		case 4:
			d.i32Field(t, &r.AppID)
		case 5:
			d.i32Field(t, &r.PartitionIndex)
		case 6:
			if d.Want(t, TypeString) {
				r.Server = d.stringReuse(server)
			}
		case 7:
			d.optI32Field(t, &r.KVCount)
		default:
			d.Skip(t)
		}
	}
}
