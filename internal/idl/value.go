package idl

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	return d.container(t, TypeList, elem, minElem)
}

// container reads the header of a field of type want (a list or a set) of elem elements,
// as list does for lists.
func (d *Decoder) container(t, want, elem Type, minElem int) (n int, ok bool) {
	if !d.Want(t, want) {
		return 0, false
	}
	return d.listHeader(elem, minElem)
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

// enumName returns names[v], or "<typ>(<v>)" for a value without a name. The generated
// String methods of the enums use it.
func enumName(names []string, typ string, v int32) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

// mapHeader reads the header of a map whose keys should have type k and values type v,
// each entry occupying at least minEntry bytes. When the types differ the entries are
// skipped and ok is false; a count that cannot fit in the bytes left is an error.
func (d *Decoder) mapHeader(k, v Type, minEntry int) (n int, ok bool) {
	kt, vt, n := d.MapBegin()
	if d.err != nil {
		return 0, false
	}
	if kt != k || vt != v {
		for i := 0; i < n && d.err == nil; i++ {
			d.Skip(kt)
			d.Skip(vt)
		}
		return 0, false
	}
	if minEntry > 1 && !d.countFits(int32(n), minEntry) {
		return 0, false
	}
	// A map entry costs the Go map a key, a value and its bucket share.
	if !d.charge(int32(n), 32+goSize(v, minEntry)) {
		return 0, false
	}
	return n, true
}

// listHeader reads the header of a list (not a field) whose elements should have type elem
// and occupy at least minElem bytes each; as [Decoder.mapHeader] otherwise.
func (d *Decoder) listHeader(elem Type, minElem int) (n int, ok bool) {
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
	if !d.charge(int32(n), goSize(elem, minElem)) {
		return 0, false
	}
	return n, true
}

// sortedKeys returns m's keys in order: generated encoders write maps in key order, so that
// every value has exactly one encoding.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }

// sortedGPIDKeys returns m's keys ordered by table, then partition.
func sortedGPIDKeys[V any](m map[GPID]V) []GPID {
	return slices.SortedFunc(maps.Keys(m), func(a, b GPID) int {
		if c := cmp.Compare(a.AppID, b.AppID); c != 0 {
			return c
		}
		return cmp.Compare(a.PartitionIndex, b.PartitionIndex)
	})
}
