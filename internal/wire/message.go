package wire

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/gopegasus/pegasus/internal/idl"
)

// Thrift message types (protocol.md §1.2).
const (
	MessageCall      byte = 1
	MessageReply     byte = 2
	MessageException byte = 3
	MessageOneway    byte = 4
)

// strictVersion is the high half of a strict-form thrift message header.
const strictVersion = 0x80010000

// MaxNameLen bounds RPC names read from the wire; the longest real one is under 48 bytes.
const MaxNameLen = 256

// AppendRequest appends a complete request frame to dst: h in its version's layout, then the
// thrift message (name, CALL, seqID) whose args struct carries args as field 1.
func AppendRequest(dst []byte, h *Header, name string, seqID int32, args idl.Value) []byte {
	dst, bodyAt := h.appendHeader(dst)
	bodyStart := len(dst)
	e := getEncoder(dst)
	appendMessageBegin(e, name, MessageCall, seqID)
	e.FieldBegin(args.ThriftType(), 1)
	args.Encode(e)
	e.FieldStop()
	dst = putEncoder(e)
	binary.BigEndian.PutUint32(dst[bodyAt:], uint32(len(dst)-bodyStart))
	return dst
}

// Encoders and decoders handed to an idl.Value's methods escape to the heap; pooling them
// keeps the per-call path free of allocations.
var (
	encoderPool = sync.Pool{New: func() any { return new(idl.Encoder) }}
	decoderPool = sync.Pool{New: func() any { return new(idl.Decoder) }}
)

func getEncoder(dst []byte) *idl.Encoder {
	e := encoderPool.Get().(*idl.Encoder)
	e.Buf = dst
	return e
}

// putEncoder returns e to the pool and gives back its buffer.
func putEncoder(e *idl.Encoder) []byte {
	b := e.Buf
	e.Buf = nil
	encoderPool.Put(e)
	return b
}

func appendMessageBegin(e *idl.Encoder, name string, typ byte, seqID int32) {
	e.I32(int32(strictVersion | uint32(typ)))
	e.String(name)
	e.I32(seqID)
}

// DecodeMessageBegin reads a thrift message header in the strict or the old non-strict
// form. name aliases the decoder's buffer.
func DecodeMessageBegin(d *idl.Decoder) (name []byte, typ byte, seqID int32, err error) {
	v := d.I32()
	if v < 0 {
		if uint32(v)&0xFFFF0000 != strictVersion {
			return nil, 0, 0, fmt.Errorf("%w: version %#x", ErrBadMessageHeader, uint32(v))
		}
		typ = byte(v)
		name = readName(d, d.I32())
	} else {
		name = readName(d, v)
		typ = d.Byte()
	}
	seqID = d.I32()
	if err := d.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("%w: %w", ErrBadMessageHeader, err)
	}
	return name, typ, seqID, nil
}

func readName(d *idl.Decoder, n int32) []byte {
	if n < 0 || n > MaxNameLen {
		d.Fail(fmt.Errorf("name length %d", n))
		return nil
	}
	return d.Bytes(int(n))
}

// ParseRequestBody splits a request body into its message header and the undecoded args
// struct. name and args alias body. Message types other than CALL and ONEWAY are rejected.
func ParseRequestBody(body []byte) (name []byte, seqID int32, args []byte, err error) {
	var d idl.Decoder
	d.Reset(body)
	name, typ, seqID, err := DecodeMessageBegin(&d)
	if err != nil {
		return nil, 0, nil, err
	}
	if typ != MessageCall && typ != MessageOneway {
		return nil, 0, nil, fmt.Errorf("%w: message type %d in a request", ErrBadMessageHeader, typ)
	}
	return name, seqID, d.Remaining(), nil
}

// DecodeArgs decodes an args struct, storing field 1 in v. Other fields are skipped; a
// missing field 1 leaves v as it is (the caller's defaults), as the Pegasus server tolerates.
func DecodeArgs(args []byte, v idl.Value) error {
	return decodeField(args, 1, v)
}

// decodeField reads a struct and decodes the field with the given id into v.
func decodeField(b []byte, id int16, v idl.Value) error {
	d := decoderPool.Get().(*idl.Decoder)
	defer decoderPool.Put(d)
	d.Reset(b)
	for {
		t, fid := d.FieldBegin()
		if t == idl.TypeStop {
			break
		}
		if fid == id && t == v.ThriftType() {
			v.Decode(d)
			continue
		}
		if t == idl.TypeStruct {
			// Could be a placeholder type, which cannot be skipped blindly; nothing but
			// the wanted field is expected here, so stop rather than guess.
			return fmt.Errorf("wire: unexpected struct field %d", fid)
		}
		d.Skip(t)
	}
	err := d.Err()
	d.Reset(nil)
	return err
}

// AppendReply appends a complete reply frame: total length, error name, the thrift message
// header (ackName, REPLY, seqID) and, only when code is OK and result is not nil, the result
// struct with result as field 0.
func AppendReply(dst []byte, ackName string, seqID int32, code Code, result idl.Value) []byte {
	start := len(dst)
	e := getEncoder(append(dst, 0, 0, 0, 0))
	e.String(code.Name())
	appendMessageBegin(e, ackName, MessageReply, seqID)
	if code == OK && result != nil {
		e.FieldBegin(result.ThriftType(), 0)
		result.Encode(e)
		e.FieldStop()
	}
	dst = putEncoder(e)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// Reply is a decoded reply frame. Name and Body alias the frame.
type Reply struct {
	// Err is nil for ERR_OK, a [Code] for a known error name, or an [UnknownCodeError].
	Err   error
	Name  []byte
	SeqID int32
	// Body is the result struct (field 0 holds the response); empty unless Err is nil.
	Body []byte
}

// DecodeReply decodes a whole reply frame, starting with its 4-byte total length.
func DecodeReply(frame []byte) (Reply, error) {
	var r Reply
	if len(frame) < 4 {
		return r, ErrTruncated
	}
	if n := binary.BigEndian.Uint32(frame); int64(n) != int64(len(frame)) {
		return r, fmt.Errorf("%w: total_length %d, frame %d bytes", ErrTruncated, n, len(frame))
	}
	var d idl.Decoder
	d.Reset(frame[4:])
	errName := readName(&d, d.I32())
	if err := d.Err(); err != nil {
		return r, fmt.Errorf("%w: error name: %w", ErrBadMessageHeader, err)
	}
	name, _, seqID, err := DecodeMessageBegin(&d)
	if err != nil {
		return r, err
	}
	r.Name, r.SeqID = name, seqID
	if c, ok := parseCodeBytes(errName); ok {
		r.Err = c.Err()
	} else {
		r.Err = UnknownCodeError{Name: string(errName)}
	}
	if r.Err == nil {
		r.Body = d.Remaining()
	}
	return r, nil
}

// DecodeResult decodes field 0 of a reply's result struct into v.
func DecodeResult(body []byte, v idl.Value) error {
	if err := decodeField(body, 0, v); err != nil {
		return fmt.Errorf("wire: decode result: %w", err)
	}
	return nil
}
