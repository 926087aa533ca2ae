package raftnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/idl"
)

// frameVersion is the first byte of every frame this package writes and accepts.
const frameVersion = 1

// recordHeaderLen is the group id and the length that precede each message in a frame.
const recordHeaderLen = 8 + 4

// ErrBadFrame is wrapped by the error of [Transport.Receive] for a frame that is not one
// this package writes: another version, a truncated record, a message that does not decode.
var ErrBadFrame = errors.New("raftnet: malformed frame")

// envelope is a message of a frame with the group it belongs to.
type envelope struct {
	group idl.GPID
	msg   raftpb.Message
}

// frame is a decoded frame.
type frame struct {
	from string
	msgs []envelope
}

// appendFrameHeader appends the version and the sender's address to b.
func appendFrameHeader(b []byte, from string) []byte {
	b = append(b, frameVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(from)))
	return append(b, from...)
}

// appendRecord appends m, with its group and length, to b.
func appendRecord(b []byte, group idl.GPID, m *raftpb.Message) ([]byte, error) {
	n := m.Size()
	if uint64(n) > math.MaxUint32 {
		return b, fmt.Errorf("raftnet: message of %d bytes", n)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(group.AppID))
	b = binary.BigEndian.AppendUint32(b, uint32(group.PartitionIndex))
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	start := len(b)
	b = append(b, make([]byte, n)...)
	if _, err := m.MarshalTo(b[start:]); err != nil {
		return b[:start-recordHeaderLen], err
	}
	return b, nil
}

// appendTo encodes f after b.
func (f *frame) appendTo(b []byte) ([]byte, error) {
	if len(f.from) > math.MaxUint16 {
		return b, fmt.Errorf("raftnet: sender address of %d bytes", len(f.from))
	}
	b = appendFrameHeader(b, f.from)
	for i := range f.msgs {
		var err error
		if b, err = appendRecord(b, f.msgs[i].group, &f.msgs[i].msg); err != nil {
			return b, err
		}
	}
	return b, nil
}

// decodeFrame decodes a whole frame; nothing of b is retained. It fails, wrapping
// [ErrBadFrame], unless b is one well-formed frame with at least one message.
func decodeFrame(b []byte) (frame, error) {
	var f frame
	if len(b) < 1+2 {
		return f, fmt.Errorf("%w: %d bytes", ErrBadFrame, len(b))
	}
	if b[0] != frameVersion {
		return f, fmt.Errorf("%w: version %d", ErrBadFrame, b[0])
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	b = b[3:]
	if len(b) < n {
		return f, fmt.Errorf("%w: sender address of %d bytes, %d left", ErrBadFrame, n, len(b))
	}
	f.from, b = string(b[:n]), b[n:]
	if len(b) == 0 {
		return f, fmt.Errorf("%w: no message", ErrBadFrame)
	}
	for len(b) > 0 {
		if len(b) < recordHeaderLen {
			return f, fmt.Errorf("%w: record header truncated (%d bytes)", ErrBadFrame, len(b))
		}
		group := idl.GPID{AppID: int32(binary.BigEndian.Uint32(b)), PartitionIndex: int32(binary.BigEndian.Uint32(b[4:]))}
		size := uint64(binary.BigEndian.Uint32(b[8:]))
		b = b[recordHeaderLen:]
		if uint64(len(b)) < size {
			return f, fmt.Errorf("%w: message of %d bytes, %d left", ErrBadFrame, size, len(b))
		}
		var m raftpb.Message
		if err := m.Unmarshal(b[:size]); err != nil {
			return f, fmt.Errorf("%w: message %d of group %s: %w", ErrBadFrame, len(f.msgs), group, err)
		}
		f.msgs = append(f.msgs, envelope{group: group, msg: m})
		b = b[size:]
	}
	return f, nil
}
