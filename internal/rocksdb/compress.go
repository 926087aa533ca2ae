package rocksdb

import (
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// compressionType is a block trailer's first byte.
type compressionType uint8

const (
	compressionNone         compressionType = 0x0
	compressionSnappy       compressionType = 0x1
	compressionZlib         compressionType = 0x2
	compressionBZip2        compressionType = 0x3
	compressionLZ4          compressionType = 0x4
	compressionLZ4HC        compressionType = 0x5
	compressionXpress       compressionType = 0x6
	compressionZSTD         compressionType = 0x7
	compressionZSTDNotFinal compressionType = 0x40
)

func (c compressionType) String() string {
	switch c {
	case compressionNone:
		return "none"
	case compressionSnappy:
		return "snappy"
	case compressionZlib:
		return "zlib"
	case compressionBZip2:
		return "bzip2"
	case compressionLZ4:
		return "lz4"
	case compressionLZ4HC:
		return "lz4hc"
	case compressionXpress:
		return "xpress"
	case compressionZSTD, compressionZSTDNotFinal:
		return "zstd"
	}
	return fmt.Sprintf("compression type %#x", uint8(c))
}

// Upper bounds of how much each codec can expand its input, used to refuse a block whose
// declared size no input of its length could produce, before allocating for it.
const (
	snappyMaxRatio  = 22    // a 3-byte copy element yields at most 64 bytes
	lz4MaxRatio     = 256   // each extra length byte adds at most 255 bytes
	deflateMaxRatio = 1040  // a 258-byte match costs at least 2 bits
	zstdMaxRatio    = 32768 // a 128 KiB RLE block costs at least 4 bytes
	ratioSlack      = 1024
)

// errBlockTooLarge is wrapped with the declared and allowed sizes.
var errBlockTooLarge = errors.New("decompressed size too large")

// sizeLimit is the largest decompressed size a block of n compressed bytes may claim.
func (t *Table) sizeLimit(n int, ratio int) int {
	limit := t.opts.MaxBlockSize
	if ratio > 0 && n < limit/ratio {
		limit = n*ratio + ratioSlack
	}
	return limit
}

// decompress decodes a compressed block's contents into dst (reusing its capacity) and
// returns the decoded bytes. Block formats follow format_version: from 2 on, every codec
// except snappy stores the decompressed size as a varint32 in front of its data; before
// that, zlib and bzip2 store none and lz4 stores it in the first 4 of 8 bytes.
func (t *Table) decompress(c compressionType, src, dst []byte) ([]byte, error) {
	declared := -1
	if c != compressionSnappy && c != compressionNone {
		switch {
		case c == compressionZSTD || c == compressionZSTDNotFinal || t.footer.formatVersion >= 2:
			v, n := binary.Uvarint(src)
			if n <= 0 || v > 1<<32-1 {
				return nil, errors.New("bad decompressed size prefix")
			}
			declared, src = int(v), src[n:]
		case c == compressionLZ4 || c == compressionLZ4HC:
			if len(src) < 8 {
				return nil, errors.New("lz4 block shorter than its 8-byte header")
			}
			declared, src = int(binary.LittleEndian.Uint32(src)), src[8:]
		}
	}
	grow := func(n, ratio int) ([]byte, error) {
		if limit := t.sizeLimit(len(src), ratio); n > limit {
			return nil, fmt.Errorf("%w: %s block of %d bytes claims %d (limit %d)", errBlockTooLarge, c, len(src), n, limit)
		}
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		return dst[:n], nil
	}
	switch c {
	case compressionSnappy:
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		out, err := grow(n, snappyMaxRatio)
		if err != nil {
			return nil, err
		}
		got, err := snappy.Decode(out, src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		return got, nil
	case compressionLZ4, compressionLZ4HC:
		out, err := grow(declared, lz4MaxRatio)
		if err != nil {
			return nil, err
		}
		if declared == 0 {
			// The decoder needs room to write into; the one empty LZ4 block is a zero token.
			if len(src) != 1 || src[0] != 0 {
				return nil, errors.New("lz4: data for an empty block")
			}
			return out, nil
		}
		var n int
		if len(t.dict) > 0 {
			n, err = lz4.UncompressBlockWithDict(src, out, t.dict)
		} else {
			n, err = lz4.UncompressBlock(src, out)
		}
		if err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if n != declared {
			return nil, fmt.Errorf("lz4: decoded %d bytes, block header says %d", n, declared)
		}
		return out, nil
	case compressionZSTD, compressionZSTDNotFinal:
		out, err := grow(declared, zstdMaxRatio)
		if err != nil {
			return nil, err
		}
		dec, err := t.zstdDecoder()
		if err != nil {
			return nil, err
		}
		got, err := dec.DecodeAll(src, out[:0])
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(got) != declared {
			return nil, fmt.Errorf("zstd: decoded %d bytes, size prefix says %d", len(got), declared)
		}
		return got, nil
	case compressionZlib:
		var r io.ReadCloser
		if len(t.dict) > 0 {
			r = flate.NewReaderDict(bytes.NewReader(src), t.dict)
		} else {
			r = flate.NewReader(bytes.NewReader(src))
		}
		defer r.Close()
		return t.readAllLimited(r, declared, deflateMaxRatio, len(src), dst, "zlib")
	case compressionBZip2:
		return t.readAllLimited(bzip2.NewReader(bytes.NewReader(src)), declared, 0, len(src), dst, "bzip2")
	}
	return nil, errUnsupportedCompression
}

var errUnsupportedCompression = errors.New("unsupported compression")

// readAllLimited decodes a stream whose size is declared (format_version >= 2) or unknown
// (declared < 0), growing the buffer only as output arrives and never past the size limit.
func (t *Table) readAllLimited(r io.Reader, declared, ratio, n int, dst []byte, codec string) ([]byte, error) {
	limit := t.sizeLimit(n, ratio)
	if declared > limit {
		return nil, fmt.Errorf("%w: %s block of %d bytes claims %d (limit %d)", errBlockTooLarge, codec, n, declared, limit)
	}
	if declared >= 0 {
		limit = declared
	}
	buf := bytes.NewBuffer(dst[:0])
	got, err := buf.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", codec, err)
	}
	if got > int64(limit) {
		if declared >= 0 {
			return nil, fmt.Errorf("%s: more than the %d bytes the size prefix says", codec, declared)
		}
		return nil, fmt.Errorf("%w: %s block of %d bytes decodes past %d", errBlockTooLarge, codec, n, limit)
	}
	if declared >= 0 && int(got) != declared {
		return nil, fmt.Errorf("%s: decoded %d bytes, size prefix says %d", codec, got, declared)
	}
	return buf.Bytes(), nil
}

// zstdDecoder returns the table's zstd decoder, made on first use with the table's
// compression dictionary, if any. It decodes whole blocks only (DecodeAll), so it starts no
// goroutines; DecodeAll is safe for concurrent iterators.
func (t *Table) zstdDecoder() (*zstd.Decoder, error) {
	t.zstdOnce.Do(func() {
		opts := []zstd.DOption{
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxMemory(uint64(t.opts.MaxBlockSize)),
		}
		if len(t.dict) > 0 {
			// A dictionary trained by zstd starts with its magic number and carries its own
			// ID; anything else is raw content, which frames reference as dictionary 0.
			if len(t.dict) >= 8 && binary.LittleEndian.Uint32(t.dict) == 0xEC30A437 {
				opts = append(opts, zstd.WithDecoderDicts(t.dict))
			} else {
				opts = append(opts, zstd.WithDecoderDictRaw(0, t.dict))
			}
		}
		t.zstd, t.zstdErr = zstd.NewReader(nil, opts...)
		if t.zstdErr != nil {
			t.zstdErr = fmt.Errorf("zstd dictionary: %w", t.zstdErr)
		}
	})
	return t.zstd, t.zstdErr
}
