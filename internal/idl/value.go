package idl

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Value is anything that can be the payload of an RPC's args field 1 or of a reply's result
// field 0: every thrift struct of this package, the placeholder types ([Blob], [GPID], ...),
// [ContextID] and [Text].
//
// ThriftType is the type byte the enclosing field header carries: [TypeStruct] for structs
// and placeholder types alike, [TypeI64] for [ContextID], [TypeString] for [Text].
//
// Encode appends the value to e.Buf (a struct's fields, then STOP). It never fails. It does
// not allocate beyond growing e.Buf, except to sort the keys of a map (table envs), which are
// written in sorted order so that every value has exactly one encoding.
//
// Decode overwrites the receiver with one value read from d. Fields missing on the wire take
// their zero value or documented idl default; unknown fields, and fields whose type byte is
// not the expected one, are skipped. Errors are recorded in d (see [Decoder.Err]); after an
// error the receiver holds a partial value. Decoded byte slices alias d's input.
type Value interface {
	ThriftType() Type
	Encode(e *Encoder)
	Decode(d *Decoder)
}

// ErrTrailingData is returned by [Unmarshal] when bytes follow the decoded value.
var ErrTrailingData = errors.New("idl: trailing bytes after thrift value")

// Marshal returns the encoding of v in a new buffer.
func Marshal(v Value) []byte {
	var e Encoder
	v.Encode(&e)
	return e.Buf
}

// Unmarshal decodes b, which must hold exactly one value, into v. Byte slices in v alias b.
// It returns the decoder's error ([ErrTruncated], [ErrTooDeep], ...) or [ErrTrailingData].
func Unmarshal(b []byte, v Value) error {
	d := Decoder{buf: b}
	v.Decode(&d)
	if err := d.Err(); err != nil {
		return err
	}
	if n := len(d.Remaining()); n > 0 {
		return fmt.Errorf("%w: %d bytes", ErrTrailingData, n)
	}
	return nil
}

// Optional is the value of an optional thrift field together with its presence: Set reports
// whether the field is (to be) on the wire. Encoders write the field only when Set; decoders
// set Set exactly when the field was read. V should be the zero value when Set is false; it is
// ignored then. The zero Optional is an absent field.
//
// Optional fields that carry an idl default of false (for example [AppInfo].Duplicating) are
// plain bools instead, written only when true, as the official go-client writes them.
type Optional[T any] struct {
	V   T
	Set bool
}

// Some returns a present Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{V: v, Set: true} }

// Get returns the value and whether it is present.
func (o Optional[T]) Get() (T, bool) { return o.V, o.Set }

// Or returns the value if present, else def (the field's wire default).
func (o Optional[T]) Or(def T) T {
	if o.Set {
		return o.V
	}
	return def
}

// list reads the header of a list field of field type t whose elements should have type elem
// and occupy at least minElem bytes each. If t is not a list or the element type differs, the
// whole field is skipped and ok is false.
func (d *Decoder) list(t, elem Type, minElem int) (n int, ok bool) {
	if !d.Want(t, TypeList) {
		return 0, false
	}
	got, n := d.ListBegin()
	if d.err != nil {
		return 0, false
	}
	if got != elem {
		for i := 0; i < n && d.err == nil; i++ {
			d.Skip(got)
		}
		return 0, false
	}
	if minElem > 1 && !d.countFits(int32(n), minElem) {
		return 0, false
	}
	return n, true
}

// stringReuse reads a string; when its bytes equal prev it returns prev instead of a new copy,
// so decoding into a reused struct (a reply's server name) does not allocate.
func (d *Decoder) stringReuse(prev string) string {
	b := d.Binary()
	if string(b) == prev {
		return prev
	}
	return string(b)
}

// blobField, i32Field, ... read one field of the expected type, skipping it otherwise. They
// keep the struct decoders short.
func (d *Decoder) blobField(t Type, dst *[]byte) {
	if d.Want(t, TypeStruct) {
		*dst = d.Binary()
	}
}

func (d *Decoder) boolField(t Type, dst *bool) {
	if d.Want(t, TypeBool) {
		*dst = d.Bool()
	}
}

func (d *Decoder) i32Field(t Type, dst *int32) {
	if d.Want(t, TypeI32) {
		*dst = d.I32()
	}
}

func (d *Decoder) i64Field(t Type, dst *int64) {
	if d.Want(t, TypeI64) {
		*dst = d.I64()
	}
}

func (d *Decoder) stringField(t Type, dst *string) {
	if d.Want(t, TypeString) {
		*dst = d.String()
	}
}

func (d *Decoder) errorCodeField(t Type, dst *ErrorCode) {
	if d.Want(t, TypeStruct) {
		*dst = ErrorCode(d.String())
	}
}

func (d *Decoder) optBoolField(t Type, dst *Optional[bool]) {
	if d.Want(t, TypeBool) {
		*dst = Some(d.Bool())
	}
}

func (d *Decoder) optI32Field(t Type, dst *Optional[int32]) {
	if d.Want(t, TypeI32) {
		*dst = Some(d.I32())
	}
}

func (d *Decoder) optStringField(t Type, dst *Optional[string]) {
	if d.Want(t, TypeString) {
		*dst = Some(d.String())
	}
}

// blobList reads a list<blob> field (element type STRUCT, raw payloads).
func (d *Decoder) blobList(t Type) ([][]byte, bool) {
	n, ok := d.list(t, TypeStruct, 4)
	if !ok {
		return nil, false
	}
	l := make([][]byte, n)
	for i := range l {
		l[i] = d.Binary()
	}
	return l, true
}

// stringList reads a list<string> field.
func (d *Decoder) stringList(t Type) ([]string, bool) {
	n, ok := d.list(t, TypeString, 4)
	if !ok {
		return nil, false
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.String()
	}
	return l, true
}

// i32List reads a list<i32> field.
func (d *Decoder) i32List(t Type) ([]int32, bool) {
	n, ok := d.list(t, TypeI32, 4)
	if !ok {
		return nil, false
	}
	l := make([]int32, n)
	for i := range l {
		l[i] = d.I32()
	}
	return l, true
}

// stringMap reads a map<string,string> field; entries of other key/value types make the
// field be skipped. A repeated key keeps its last value.
func (d *Decoder) stringMap(t Type) map[string]string {
	if !d.Want(t, TypeMap) {
		return nil
	}
	kt, vt, n := d.MapBegin()
	if d.err != nil {
		return nil
	}
	if kt != TypeString || vt != TypeString {
		for i := 0; i < n && d.err == nil; i++ {
			d.Skip(kt)
			d.Skip(vt)
		}
		return nil
	}
	m := make(map[string]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.String()
		m[k] = d.String()
	}
	return m
}

// structPtr is satisfied by pointers to the struct types of this package.
type structPtr[T any] interface {
	*T
	Decode(d *Decoder)
}

// structList reads a list<T> field of thrift structs.
func structList[T any, P structPtr[T]](d *Decoder, t Type) ([]T, bool) {
	n, ok := d.list(t, TypeStruct, 1)
	if !ok {
		return nil, false
	}
	l := make([]T, n)
	for i := 0; i < n && d.err == nil; i++ {
		P(&l[i]).Decode(d)
	}
	return l, true
}

// blobList appends field id as a list<blob>.
func (e *Encoder) blobList(id int16, l [][]byte) {
	e.FieldBegin(TypeList, id)
	e.ListBegin(TypeStruct, len(l))
	for _, b := range l {
		e.Binary(b)
	}
}

// stringList appends field id as a list<string>.
func (e *Encoder) stringList(id int16, l []string) {
	e.FieldBegin(TypeList, id)
	e.ListBegin(TypeString, len(l))
	for _, s := range l {
		e.String(s)
	}
}

// i32List appends field id as a list<i32>.
func (e *Encoder) i32List(id int16, l []int32) {
	e.FieldBegin(TypeList, id)
	e.ListBegin(TypeI32, len(l))
	for _, v := range l {
		e.I32(v)
	}
}

// stringMap appends field id as a map<string,string>, keys in sorted order so that the
// encoding of a value is deterministic.
func (e *Encoder) stringMap(id int16, m map[string]string) {
	e.FieldBegin(TypeMap, id)
	e.MapBegin(TypeString, TypeString, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e.String(k)
		e.String(m[k])
	}
}

// errorCode appends field id as an error_code placeholder.
func (e *Encoder) errorCode(id int16, c ErrorCode) {
	e.FieldBegin(TypeStruct, id)
	e.String(string(c))
}
