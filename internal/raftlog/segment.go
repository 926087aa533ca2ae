package raftlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A segment file is named by its sequence number (segmentName) and starts with a header:
//
//	magic   "PGRAFTLG"
//	seq     uint64   the sequence number, as in the name
//	version uint32   segmentVersion
//	crc     uint32   CRC-32C of the 20 bytes before it
//
// then records (record.go), up to a seal record or, in the last segment, to wherever the
// last round's write ended.
const (
	segHeaderSize  = 24
	segmentVersion = 1
	segmentMagic   = "PGRAFTLG"
	segmentExt     = ".seg"
	// spareName is a segment file that was dropped (or preallocated) and waits to be reused
	// as the next segment: its blocks are already allocated and written, so the fdatasyncs
	// of appends to it need not update the file's size.
	spareName = "spare"
	// spareTemp is a spare being preallocated.
	spareTemp = "spare.tmp"
)

// segment is one file of the log.
type segment struct {
	seq uint64

	// Guarded by Log.mu.
	size int64    // bytes staged into it, header included
	live int64    // bytes of its live records
	f    *os.File // nil until the round that first writes it creates it
	// spareAsked: the maintainer was asked for a spare to follow this segment.
	spareAsked bool

	// Owned by the round in progress (Log.round).
	written int64 // bytes written to f
	synced  int64 // bytes made durable
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

// parseSegmentName returns the sequence number of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(hex, 16, 64)
	return seq, err == nil && seq > 0
}

func appendSegmentHeader(buf []byte, seq uint64) []byte {
	start := len(buf)
	buf = append(buf, segmentMagic...)
	buf = binary.LittleEndian.AppendUint64(buf, seq)
	buf = binary.LittleEndian.AppendUint32(buf, segmentVersion)
	return binary.LittleEndian.AppendUint32(buf, crc32Castagnoli(buf[start:]))
}

func crc32Castagnoli(b []byte) uint32 { return recordCRC(0, b) }

// checkSegmentHeader verifies the header of segment seq.
func checkSegmentHeader(h []byte, seq uint64) error {
	switch {
	case len(h) < segHeaderSize:
		return fmt.Errorf("%w: segment header cut off", ErrCorrupt)
	case string(h[:8]) != segmentMagic || binary.LittleEndian.Uint32(h[20:]) != crc32Castagnoli(h[:20]):
		return fmt.Errorf("%w: bad segment header", ErrCorrupt)
	case binary.LittleEndian.Uint64(h[8:]) != seq:
		return fmt.Errorf("%w: segment header of %d", ErrCorrupt, binary.LittleEndian.Uint64(h[8:]))
	case binary.LittleEndian.Uint32(h[16:]) != segmentVersion:
		return fmt.Errorf("raftlog: segment format version %d, want %d", binary.LittleEndian.Uint32(h[16:]), segmentVersion)
	}
	return nil
}

// listSegments returns the sequence numbers of dir's segments, in order.
func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, de := range des {
		if seq, ok := parseSegmentName(de.Name()); ok {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// scanResult is what scanning a segment found.
type scanResult struct {
	end    int64 // where its valid records end
	sealed bool  // it ended with a seal record
	// bad is why the records stopped before a seal: errShort, errZero, an ErrCorrupt, or
	// io.EOF at a record boundary. nil when sealed.
	bad error
}

// scanSegment reads the records of segment seq from f, passing each with its location to
// fn, until a seal record or the first record that is cut off or fails its check. An error
// is returned for a failure to read the file, a bad header or fn's error; a bad record is
// reported in the result.
func scanSegment(f *os.File, seq uint64, fn func(rec record, off, size int64) error) (scanResult, error) {
	r := bufio.NewReaderSize(f, 256<<10)
	var hdr [segHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return scanResult{}, fmt.Errorf("%w: segment header cut off", ErrCorrupt)
		}
		return scanResult{}, err
	}
	if err := checkSegmentHeader(hdr[:], seq); err != nil {
		return scanResult{}, err
	}
	off := int64(segHeaderSize)
	var buf []byte
	for {
		buf = slices.Grow(buf[:0], recordHeaderSize)[:recordHeaderSize]
		n, err := io.ReadFull(r, buf)
		switch {
		case errors.Is(err, io.EOF):
			return scanResult{end: off, bad: io.EOF}, nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			_, _, bad := decodeRecord(buf[:n], seq)
			return scanResult{end: off, bad: bad}, nil
		case err != nil:
			return scanResult{}, err
		}
		if allZero(buf) {
			return scanResult{end: off, bad: errZero}, nil
		}
		size, err := recordLength(buf)
		if err != nil {
			return scanResult{end: off, bad: err}, nil
		}
		buf = slices.Grow(buf, size)[:recordHeaderSize+size]
		if n, err := io.ReadFull(r, buf[recordHeaderSize:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				_, _, bad := decodeRecord(buf[:recordHeaderSize+n], seq)
				return scanResult{end: off, bad: bad}, nil
			}
			return scanResult{}, err
		}
		rec, _, bad := decodeRecord(buf, seq)
		if bad != nil {
			return scanResult{end: off, bad: bad}, nil
		}
		if rec.kind == kindSeal {
			return scanResult{end: off + int64(len(buf)), sealed: true}, nil
		}
		if err := fn(rec, off, int64(len(buf))); err != nil {
			return scanResult{}, err
		}
		off += int64(len(buf))
	}
}

// openSegmentFile opens the file of segment seq for writing: the spare file renamed, when
// there is one, or a new file.
func openSegmentFile(dir string, seq uint64, spare bool) (*os.File, error) {
	name := filepath.Join(dir, segmentName(seq))
	if spare {
		if err := os.Rename(filepath.Join(dir, spareName), name); err != nil {
			return nil, err
		}
		return os.OpenFile(name, os.O_RDWR, 0)
	}
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
}
