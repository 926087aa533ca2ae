package idl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Type is a thrift binary-protocol type id.
type Type byte

// Thrift type ids (TBinaryProtocol).
const (
	TypeStop   Type = 0
	TypeBool   Type = 2
	TypeByte   Type = 3
	TypeDouble Type = 4
	TypeI16    Type = 6
	TypeI32    Type = 8
	TypeI64    Type = 10
	TypeString Type = 11
	TypeStruct Type = 12
	TypeMap    Type = 13
	TypeSet    Type = 14
	TypeList   Type = 15
)

// ErrTruncated is returned when a thrift value runs past the end of its buffer.
var ErrTruncated = errors.New("idl: truncated thrift data")

// ErrTooDeep is returned when nested containers exceed MaxDepth.
var ErrTooDeep = errors.New("idl: thrift data nested too deeply")

// MaxDepth bounds struct/container nesting while decoding, so hostile input cannot exhaust
// the stack.
const MaxDepth = 64

// Encoder appends thrift binary-protocol values to Buf. The zero value is ready to use; reuse
// one by truncating Buf (Buf = Buf[:0]). An Encoder is not safe for concurrent use.
type Encoder struct {
	Buf []byte
}

// Byte appends one byte.
func (e *Encoder) Byte(b byte) { e.Buf = append(e.Buf, b) }

// Bool appends a bool (one byte, 0 or 1).
func (e *Encoder) Bool(v bool) {
	if v {
		e.Buf = append(e.Buf, 1)
	} else {
		e.Buf = append(e.Buf, 0)
	}
}

// I16 appends a big-endian int16.
func (e *Encoder) I16(v int16) { e.Buf = binary.BigEndian.AppendUint16(e.Buf, uint16(v)) }

// I32 appends a big-endian int32.
func (e *Encoder) I32(v int32) { e.Buf = binary.BigEndian.AppendUint32(e.Buf, uint32(v)) }

// I64 appends a big-endian int64.
func (e *Encoder) I64(v int64) { e.Buf = binary.BigEndian.AppendUint64(e.Buf, uint64(v)) }

// Double appends an IEEE-754 float64.
func (e *Encoder) Double(v float64) {
	e.Buf = binary.BigEndian.AppendUint64(e.Buf, math.Float64bits(v))
}

// Binary appends a length-prefixed byte string.
func (e *Encoder) Binary(b []byte) {
	e.I32(int32(len(b)))
	e.Buf = append(e.Buf, b...)
}

// String appends a length-prefixed string.
func (e *Encoder) String(s string) {
	e.I32(int32(len(s)))
	e.Buf = append(e.Buf, s...)
}

// FieldBegin appends a field header: type byte and field id.
func (e *Encoder) FieldBegin(t Type, id int16) {
	e.Buf = append(e.Buf, byte(t), byte(uint16(id)>>8), byte(id))
}

// FieldStop appends the STOP byte that ends a struct.
func (e *Encoder) FieldStop() { e.Buf = append(e.Buf, byte(TypeStop)) }

// ListBegin appends a list (or set) header: element type and count.
func (e *Encoder) ListBegin(elem Type, n int) {
	e.Buf = append(e.Buf, byte(elem))
	e.I32(int32(n))
}

// MapBegin appends a map header: key type, value type and count.
func (e *Encoder) MapBegin(k, v Type, n int) {
	e.Buf = append(e.Buf, byte(k), byte(v))
	e.I32(int32(n))
}

// FieldBool appends field id as a bool.
func (e *Encoder) FieldBool(id int16, v bool) { e.FieldBegin(TypeBool, id); e.Bool(v) }

// FieldI16 appends field id as an i16.
func (e *Encoder) FieldI16(id int16, v int16) { e.FieldBegin(TypeI16, id); e.I16(v) }

// FieldI32 appends field id as an i32 (also used for enums).
func (e *Encoder) FieldI32(id int16, v int32) { e.FieldBegin(TypeI32, id); e.I32(v) }

// FieldI64 appends field id as an i64.
func (e *Encoder) FieldI64(id int16, v int64) { e.FieldBegin(TypeI64, id); e.I64(v) }

// FieldString appends field id as a thrift string.
func (e *Encoder) FieldString(id int16, s string) { e.FieldBegin(TypeString, id); e.String(s) }

// FieldBinary appends field id as a thrift binary (type STRING).
func (e *Encoder) FieldBinary(id int16, b []byte) { e.FieldBegin(TypeString, id); e.Binary(b) }

// FieldBlob appends field id as a dsn blob: the field header says STRUCT, the payload is a
// raw length-prefixed byte string (protocol.md §1.8).
func (e *Encoder) FieldBlob(id int16, b []byte) { e.FieldBegin(TypeStruct, id); e.Binary(b) }

// Decoder reads thrift binary-protocol values from a byte slice. Errors are sticky: after the
// first error every read returns a zero value and FieldBegin reports TypeStop, so a struct
// decoder can loop over fields and check Err once at the end. Byte slices returned by Binary
// alias the input buffer. A Decoder is not safe for concurrent use.
type Decoder struct {
	buf   []byte
	off   int
	err   error
	depth int
	// charged is the memory the containers decoded so far make their readers allocate,
	// estimated from their element types (see ListBegin).
	charged int64
}

// ErrAmplified is recorded by a decoder whose input declares containers that would make it
// allocate more than [MaxDecodeAmplification] times the input's size.
var ErrAmplified = errors.New("idl: containers too large for the input's size")

// MaxDecodeAmplification bounds the memory the containers of one decoded input may ask for,
// as a multiple of the input's bytes (plus 4 KiB). Well-formed Pegasus requests stay under 5×
// (a key_value of 15 wire bytes is a 64-byte Go value, a blob of 4 wire bytes a 24-byte
// slice); a hostile one of empty structs would otherwise reach 64×.
const MaxDecodeAmplification = 8

// NewDecoder returns a Decoder reading b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Reset makes d read b from the start, clearing any error.
func (d *Decoder) Reset(b []byte) { *d = Decoder{buf: b} }

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Fail records err as the decoder's error unless one is already recorded.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
		d.off = len(d.buf)
	}
}

// Offset returns the number of bytes consumed so far.
func (d *Decoder) Offset() int { return d.off }

// Remaining returns the unread bytes (aliasing the input).
func (d *Decoder) Remaining() []byte { return d.buf[d.off:] }

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off {
		d.Fail(ErrTruncated)
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

// Bool reads a bool; any non-zero byte is true.
func (d *Decoder) Bool() bool { return d.Byte() != 0 }

// I16 reads a big-endian int16.
func (d *Decoder) I16() int16 {
	if b := d.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

// I32 reads a big-endian int32.
func (d *Decoder) I32() int32 {
	if b := d.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

// I64 reads a big-endian int64.
func (d *Decoder) I64() int64 {
	if b := d.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

// Double reads an IEEE-754 float64.
func (d *Decoder) Double() float64 { return math.Float64frombits(uint64(d.I64())) }

// Binary reads a length-prefixed byte string. The result aliases the input buffer; it is
// non-nil (possibly empty) when no error occurred.
func (d *Decoder) Binary() []byte {
	n := d.I32()
	if d.err != nil {
		return nil
	}
	if n < 0 {
		d.Fail(fmt.Errorf("idl: negative binary length %d", n))
		return nil
	}
	return d.take(int(n))
}

// String reads a length-prefixed string (copied).
func (d *Decoder) String() string { return string(d.Binary()) }

// FieldBegin reads a field header. It returns TypeStop at the end of a struct or after an
// error.
func (d *Decoder) FieldBegin() (Type, int16) {
	t := Type(d.Byte())
	if t == TypeStop || d.err != nil {
		return TypeStop, 0
	}
	return t, d.I16()
}

// ListBegin reads a list or set header. The count is checked against the bytes left (each
// element occupies at least minSize(elem) bytes), so a hostile count cannot make a decoder
// allocate a huge slice.
func (d *Decoder) ListBegin() (Type, int) {
	elem := Type(d.Byte())
	n := d.I32()
	if d.err != nil {
		return TypeStop, 0
	}
	if !d.countFits(n, minSize(elem)) {
		return TypeStop, 0
	}
	return elem, int(n)
}

// MapBegin reads a map header. The count is checked against the bytes left.
func (d *Decoder) MapBegin() (Type, Type, int) {
	k := Type(d.Byte())
	v := Type(d.Byte())
	n := d.I32()
	if d.err != nil {
		return TypeStop, TypeStop, 0
	}
	if !d.countFits(n, minSize(k)+minSize(v)) {
		return TypeStop, TypeStop, 0
	}
	return k, v, int(n)
}

func (d *Decoder) countFits(n int32, each int) bool {
	if n < 0 {
		d.Fail(fmt.Errorf("idl: negative container size %d", n))
		return false
	}
	if each < 1 {
		each = 1
	}
	if int64(n)*int64(each) > int64(len(d.buf)-d.off) {
		d.Fail(ErrTruncated)
		return false
	}
	return true
}

// charge adds n elements of each bytes to what the decoder's input makes its readers
// allocate, failing with ErrAmplified past MaxDecodeAmplification.
func (d *Decoder) charge(n int32, each int) bool {
	d.charged += int64(n) * int64(each)
	if d.charged > MaxDecodeAmplification*int64(len(d.buf))+4096 {
		d.Fail(fmt.Errorf("%w: %d bytes for %d input bytes", ErrAmplified, d.charged, len(d.buf)))
		return false
	}
	return true
}

// goSize estimates the Go memory one decoded list element of type t takes, given the
// fewest wire bytes the schema says it occupies: a STRUCT of at least 4 bytes is a dsn
// placeholder (blob, gpid, host_port: a slice or a few words), any other struct is charged
// as the largest list elements of the schemas (key_value, mutate, full_key), 64 bytes.
func goSize(t Type, minWire int) int {
	switch t {
	case TypeStruct:
		if minWire >= 4 {
			return 24
		}
		return 64
	case TypeString, TypeList, TypeSet, TypeMap:
		return 24
	case TypeI64, TypeDouble:
		return 8
	case TypeI32:
		return 4
	case TypeI16:
		return 2
	}
	return 1
}

// minSize is the fewest bytes one value of type t occupies on the wire.
func minSize(t Type) int {
	switch t {
	case TypeBool, TypeByte, TypeStruct:
		return 1
	case TypeI16:
		return 2
	case TypeI32, TypeString:
		return 4
	case TypeI64, TypeDouble:
		return 8
	case TypeMap:
		return 6
	case TypeList, TypeSet:
		return 5
	}
	return 1
}

// Skip reads and discards one value of type t. It must not be used for dsn placeholder types
// (blob, gpid, ...), which are raw values under a STRUCT type byte: their readers know the
// schema and decode them directly.
func (d *Decoder) Skip(t Type) {
	if d.err != nil {
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > MaxDepth {
		d.Fail(ErrTooDeep)
		return
	}
	switch t {
	case TypeBool, TypeByte:
		d.take(1)
	case TypeI16:
		d.take(2)
	case TypeI32:
		d.take(4)
	case TypeI64, TypeDouble:
		d.take(8)
	case TypeString:
		d.Binary()
	case TypeStruct:
		for {
			ft, _ := d.FieldBegin()
			if ft == TypeStop {
				return
			}
			d.Skip(ft)
		}
	case TypeList, TypeSet:
		elem, n := d.ListBegin()
		for i := 0; i < n && d.err == nil; i++ {
			d.Skip(elem)
		}
	case TypeMap:
		k, v, n := d.MapBegin()
		for i := 0; i < n && d.err == nil; i++ {
			d.Skip(k)
			d.Skip(v)
		}
	default:
		d.Fail(fmt.Errorf("idl: unknown thrift type %d", t))
	}
}

// Want reports whether a field of type got can be read as type want; if not, it skips the
// field's value so decoding can go on (a field of an unexpected type is treated as unknown,
// as generated thrift code does).
func (d *Decoder) Want(got, want Type) bool {
	if got == want {
		return true
	}
	d.Skip(got)
	return false
}

// Enter and Leave bracket the decoding of a nested struct, bounding recursion depth.
func (d *Decoder) Enter() bool {
	d.depth++
	if d.depth > MaxDepth {
		d.Fail(ErrTooDeep)
		return false
	}
	return true
}

// Leave ends a nested struct started with Enter.
func (d *Decoder) Leave() { d.depth-- }

// Bytes reads n raw bytes (no length prefix). The result aliases the input buffer.
func (d *Decoder) Bytes(n int) []byte { return d.take(n) }
