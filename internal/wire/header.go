package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gopegasus/pegasus/internal/idl"
)

// Request header sizes (protocol.md §1.3, §1.4).
const (
	// PrefixLen is the fixed start of every request header: magic, version and two lengths.
	// It is enough to learn the whole header's length ([HeaderLen]).
	PrefixLen = 16
	// HeaderV0Len is the length of a version 0 header (go, python and nodejs clients).
	HeaderV0Len = 48
	// MaxMetaLen bounds the thrift meta struct of a version 1 header. The Java client's is 37
	// bytes; anything much larger is not a Pegasus client.
	MaxMetaLen = 1024
)

var magic = [4]byte{'T', 'H', 'F', 'T'}

// Header errors. A server that meets one closes the connection: the stream cannot be
// resynchronised.
var (
	ErrBadMagic         = errors.New("wire: request does not start with THFT")
	ErrBadVersion       = errors.New("wire: unsupported request header version")
	ErrBadHeaderLength  = errors.New("wire: bad request header length")
	ErrTruncated        = errors.New("wire: truncated frame")
	ErrFrameTooLarge    = errors.New("wire: frame larger than the configured maximum")
	ErrBadMessageHeader = errors.New("wire: bad thrift message header")
)

// Header is a decoded request header of either version. The zero value is a valid version 0
// header for a meta RPC.
type Header struct {
	// Version is 0 (48-byte header) or 1 (16 bytes + thrift meta struct, the Java client's).
	Version int
	// AppID and PartitionIndex route the request; both are 0 for meta RPCs.
	AppID          int32
	PartitionIndex int32
	// ClientTimeout is the client's timeout in milliseconds. The go-client's value wraps
	// above ~4.29 s (protocol.md §1.3), so a server must not trust it.
	ClientTimeout uint32
	// ThreadHash is app_id*7919+partition_index. Version 1 headers do not carry it; decoding
	// computes it.
	ThreadHash int32
	// PartitionHash is the CRC-64 of the request's hash key (0 for meta RPCs).
	PartitionHash uint64
	// IsBackupRequest (version 1 only) allows a secondary to serve a read.
	IsBackupRequest bool
}

// ThreadHash returns the thread hash Pegasus expects for a partition.
func ThreadHash(appID, partitionIndex int32) int32 { return appID*7919 + partitionIndex }

// HeaderLen inspects the first [PrefixLen] bytes of a request and returns the length of its
// whole header (48 for version 0, 16 plus the meta struct for version 1).
func HeaderLen(prefix []byte) (int, error) {
	if len(prefix) < PrefixLen {
		return 0, ErrTruncated
	}
	if [4]byte(prefix[0:4]) != magic {
		return 0, ErrBadMagic
	}
	switch v := binary.BigEndian.Uint32(prefix[4:]); v {
	case 0:
		if n := binary.BigEndian.Uint32(prefix[8:]); n != HeaderV0Len {
			return 0, fmt.Errorf("%w: version 0 header_length %d, want 48", ErrBadHeaderLength, n)
		}
		return HeaderV0Len, nil
	case 1:
		n := binary.BigEndian.Uint32(prefix[8:])
		if n > MaxMetaLen {
			return 0, fmt.Errorf("%w: version 1 meta_length %d", ErrBadHeaderLength, n)
		}
		return PrefixLen + int(n), nil
	default:
		return 0, fmt.Errorf("%w: %d", ErrBadVersion, v)
	}
}

// DecodeHeader decodes a whole request header (as sized by [HeaderLen]) and returns it with
// the length of the body that follows. CRC fields are ignored, as the Pegasus server does.
func DecodeHeader(b []byte) (h Header, bodyLen int, err error) {
	n, err := HeaderLen(b)
	if err != nil {
		return h, 0, err
	}
	if len(b) < n {
		return h, 0, ErrTruncated
	}
	if n == HeaderV0Len {
		h.Version = 0
		bodyLen = int(binary.BigEndian.Uint32(b[16:]))
		h.AppID = int32(binary.BigEndian.Uint32(b[24:]))
		h.PartitionIndex = int32(binary.BigEndian.Uint32(b[28:]))
		h.ClientTimeout = binary.BigEndian.Uint32(b[32:])
		h.ThreadHash = int32(binary.BigEndian.Uint32(b[36:]))
		h.PartitionHash = binary.BigEndian.Uint64(b[40:])
		return h, bodyLen, nil
	}
	h.Version = 1
	bodyLen = int(binary.BigEndian.Uint32(b[12:]))
	if err := h.decodeMeta(b[PrefixLen:n]); err != nil {
		return h, 0, err
	}
	h.ThreadHash = ThreadHash(h.AppID, h.PartitionIndex)
	return h, bodyLen, nil
}

// decodeMeta reads the version 1 meta struct. Every field is optional; unknown ones are
// skipped.
func (h *Header) decodeMeta(b []byte) error {
	var d idl.Decoder
	d.Reset(b)
	for {
		t, id := d.FieldBegin()
		if t == idl.TypeStop {
			break
		}
		switch {
		case id == 1 && t == idl.TypeI32:
			h.AppID = d.I32()
		case id == 2 && t == idl.TypeI32:
			h.PartitionIndex = d.I32()
		case id == 3 && t == idl.TypeI32:
			h.ClientTimeout = uint32(d.I32())
		case id == 4 && t == idl.TypeI64:
			h.PartitionHash = uint64(d.I64())
		case id == 5 && t == idl.TypeBool:
			h.IsBackupRequest = d.Bool()
		default:
			d.Skip(t)
		}
	}
	if err := d.Err(); err != nil {
		return fmt.Errorf("wire: version 1 header meta: %w", err)
	}
	return nil
}

// appendHeader appends h in its version's layout, with a zero body length that
// [patchBodyLen] fills in once the body is written. It returns the extended slice and the
// offset of the body-length field.
func (h *Header) appendHeader(dst []byte) ([]byte, int) {
	dst = append(dst, magic[:]...)
	if h.Version == 1 {
		dst = binary.BigEndian.AppendUint32(dst, 1)
		metaAt := len(dst)
		dst = binary.BigEndian.AppendUint32(dst, 0) // meta_length, patched below
		bodyAt := len(dst)
		dst = binary.BigEndian.AppendUint32(dst, 0)
		e := idl.Encoder{Buf: dst}
		e.FieldI32(1, h.AppID)
		e.FieldI32(2, h.PartitionIndex)
		e.FieldI32(3, int32(h.ClientTimeout))
		e.FieldI64(4, int64(h.PartitionHash))
		e.FieldBool(5, h.IsBackupRequest)
		e.FieldStop()
		dst = e.Buf
		binary.BigEndian.PutUint32(dst[metaAt:], uint32(len(dst)-bodyAt-4))
		return dst, bodyAt
	}
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, HeaderV0Len)
	dst = binary.BigEndian.AppendUint32(dst, 0) // header crc32: never checked, always 0
	bodyAt := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, 0) // body crc32
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.AppID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.PartitionIndex))
	dst = binary.BigEndian.AppendUint32(dst, h.ClientTimeout)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.ThreadHash))
	dst = binary.BigEndian.AppendUint64(dst, h.PartitionHash)
	return dst, bodyAt
}
