package rocksdb

import (
	"encoding/binary"
	"hash/crc32"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// checksumType is the footer's checksum type byte, which applies to every block trailer.
type checksumType uint8

const (
	checksumNone     checksumType = 0
	checksumCRC32C   checksumType = 1
	checksumXXHash   checksumType = 2 // XXH32, seed 0
	checksumXXHash64 checksumType = 3 // low 32 bits of XXH64, seed 0
	checksumXXH3     checksumType = 4 // low 32 bits of XXH3-64 over the data, mixed with the type byte
)

func (c checksumType) String() string {
	switch c {
	case checksumNone:
		return "none"
	case checksumCRC32C:
		return "crc32c"
	case checksumXXHash:
		return "xxhash"
	case checksumXXHash64:
		return "xxhash64"
	case checksumXXH3:
		return "xxh3"
	}
	return "unknown"
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskCRC is RocksDB's (and LevelDB's) masking of a stored CRC, so that a CRC computed over
// data that itself holds CRCs does not degenerate.
func maskCRC(c uint32) uint32 { return (c>>15 | c<<17) + 0xa282ead8 }

// lastByteMix folds the block trailer's type byte into an XXH3 block checksum: RocksDB hashes
// the block contents alone and then mixes in the byte, rather than hashing both.
const lastByteMix = 0x6b9083d9

// blockChecksum computes the trailer checksum of b, which is the block contents followed by
// the trailer's compression type byte (so len(b) >= 1).
func blockChecksum(t checksumType, b []byte) uint32 {
	switch t {
	case checksumCRC32C:
		return maskCRC(crc32.Checksum(b, castagnoli))
	case checksumXXHash:
		return xxh32(b)
	case checksumXXHash64:
		return uint32(xxhash.Sum64(b))
	case checksumXXH3:
		n := len(b) - 1
		return uint32(xxh3(b[:n])) ^ uint32(b[n])*lastByteMix
	}
	return 0
}

// contextModifier is what format_version 6 adds to every checksum: a per-file random base
// mixed with the block's offset, so a block copied to another place or file fails its check.
func contextModifier(base uint32, off uint64) uint32 {
	if base == 0 {
		return 0
	}
	return base ^ (uint32(off) + uint32(off>>32))
}

const (
	prime32x1 = 0x9E3779B1
	prime32x2 = 0x85EBCA77
	prime32x3 = 0xC2B2AE3D
	prime32x4 = 0x27D4EB2F
	prime32x5 = 0x165667B1

	prime64x1 = 0x9E3779B185EBCA87
	prime64x2 = 0xC2B2AE3D27D4EB4F
	prime64x3 = 0x165667B19E3779F9
	prime64x4 = 0x85EBCA77C2B2AE63
	prime64x5 = 0x27D4EB2F165667C5

	primeMx1 = 0x165667919E3779F9
	primeMx2 = 0x9FB21C651E98DF25
)

// xxh32 is XXH32 with seed 0.
func xxh32(p []byte) uint32 {
	n := len(p)
	var h uint32
	if n >= 16 {
		p1, p2 := uint32(prime32x1), uint32(prime32x2)
		v1 := p1 + p2
		v2 := p2
		v3 := uint32(0)
		v4 := -p1
		for len(p) >= 16 {
			v1 = xxh32Round(v1, binary.LittleEndian.Uint32(p[0:]))
			v2 = xxh32Round(v2, binary.LittleEndian.Uint32(p[4:]))
			v3 = xxh32Round(v3, binary.LittleEndian.Uint32(p[8:]))
			v4 = xxh32Round(v4, binary.LittleEndian.Uint32(p[12:]))
			p = p[16:]
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) +
			bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = prime32x5
	}
	h += uint32(n)
	for len(p) >= 4 {
		h += binary.LittleEndian.Uint32(p) * prime32x3
		h = bits.RotateLeft32(h, 17) * prime32x4
		p = p[4:]
	}
	for _, c := range p {
		h += uint32(c) * prime32x5
		h = bits.RotateLeft32(h, 11) * prime32x1
	}
	h ^= h >> 15
	h *= prime32x2
	h ^= h >> 13
	h *= prime32x3
	h ^= h >> 16
	return h
}

func xxh32Round(acc, in uint32) uint32 {
	return bits.RotateLeft32(acc+in*prime32x2, 13) * prime32x1
}

// xxh3Secret is XXH3's default 192-byte secret (kSecret).
var xxh3Secret = [192]byte{
	0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
	0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
	0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
	0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
	0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
	0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
	0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
	0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
	0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
	0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
	0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
	0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

func fold64(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func xxh3Avalanche(h uint64) uint64 {
	h ^= h >> 37
	h *= primeMx1
	return h ^ h>>32
}

func xxh64Avalanche(h uint64) uint64 {
	h ^= h >> 33
	h *= prime64x2
	h ^= h >> 29
	h *= prime64x3
	return h ^ h>>32
}

func xxh3Mix16(p, s []byte) uint64 {
	return fold64(le64(p)^le64(s), le64(p[8:])^le64(s[8:]))
}

// xxh3 is XXH3_64bits with seed 0 and the default secret.
func xxh3(p []byte) uint64 {
	s := xxh3Secret[:]
	n := len(p)
	switch {
	case n == 0:
		return xxh64Avalanche(le64(s[56:]) ^ le64(s[64:]))
	case n <= 3:
		c := uint32(p[0])<<16 | uint32(p[n>>1])<<24 | uint32(p[n-1]) | uint32(n)<<8
		return xxh64Avalanche(uint64(c) ^ uint64(le32(s)^le32(s[4:])))
	case n <= 8:
		in := uint64(le32(p[n-4:])) | uint64(le32(p))<<32
		h := in ^ (le64(s[8:]) ^ le64(s[16:]))
		h ^= bits.RotateLeft64(h, 49) ^ bits.RotateLeft64(h, 24)
		h *= primeMx2
		h ^= h>>35 + uint64(n)
		h *= primeMx2
		return h ^ h>>28
	case n <= 16:
		lo := le64(p) ^ (le64(s[24:]) ^ le64(s[32:]))
		hi := le64(p[n-8:]) ^ (le64(s[40:]) ^ le64(s[48:]))
		acc := uint64(n) + bits.ReverseBytes64(lo) + hi + fold64(lo, hi)
		return xxh3Avalanche(acc)
	case n <= 128:
		acc := uint64(n) * prime64x1
		if n > 32 {
			if n > 64 {
				if n > 96 {
					acc += xxh3Mix16(p[48:], s[96:])
					acc += xxh3Mix16(p[n-64:], s[112:])
				}
				acc += xxh3Mix16(p[32:], s[64:])
				acc += xxh3Mix16(p[n-48:], s[80:])
			}
			acc += xxh3Mix16(p[16:], s[32:])
			acc += xxh3Mix16(p[n-32:], s[48:])
		}
		acc += xxh3Mix16(p, s)
		acc += xxh3Mix16(p[n-16:], s[16:])
		return xxh3Avalanche(acc)
	case n <= 240:
		acc := uint64(n) * prime64x1
		for i := 0; i < 8; i++ {
			acc += xxh3Mix16(p[16*i:], s[16*i:])
		}
		acc = xxh3Avalanche(acc)
		for i := 8; i < n/16; i++ {
			acc += xxh3Mix16(p[16*i:], s[16*(i-8)+3:])
		}
		// The last 16 bytes use the secret at 136-17 (136 is the minimum secret size).
		acc += xxh3Mix16(p[n-16:], s[119:])
		return xxh3Avalanche(acc)
	}
	return xxh3Long(p)
}

const (
	xxh3StripeLen       = 64
	xxh3StripesPerBlock = (len(xxh3Secret) - xxh3StripeLen) / 8
	xxh3BlockLen        = xxh3StripeLen * xxh3StripesPerBlock
)

func xxh3Long(p []byte) uint64 {
	s := xxh3Secret[:]
	acc := [8]uint64{prime32x3, prime64x1, prime64x2, prime64x3, prime64x4, prime32x2, prime64x5, prime32x1}
	n := len(p)
	blocks := (n - 1) / xxh3BlockLen
	for b := 0; b < blocks; b++ {
		blk := p[b*xxh3BlockLen:]
		for i := 0; i < xxh3StripesPerBlock; i++ {
			xxh3Accumulate(&acc, blk[i*xxh3StripeLen:], s[i*8:])
		}
		xxh3Scramble(&acc, s[len(s)-xxh3StripeLen:])
	}
	tail := p[blocks*xxh3BlockLen:]
	stripes := (n - 1 - blocks*xxh3BlockLen) / xxh3StripeLen
	for i := 0; i < stripes; i++ {
		xxh3Accumulate(&acc, tail[i*xxh3StripeLen:], s[i*8:])
	}
	xxh3Accumulate(&acc, p[n-xxh3StripeLen:], s[len(s)-xxh3StripeLen-7:])
	h := uint64(n) * prime64x1
	for i := 0; i < 4; i++ {
		h += fold64(acc[2*i]^le64(s[11+16*i:]), acc[2*i+1]^le64(s[11+16*i+8:]))
	}
	return xxh3Avalanche(h)
}

func xxh3Accumulate(acc *[8]uint64, p, s []byte) {
	p = p[:64]
	s = s[:64]
	for i := 0; i < 8; i++ {
		v := le64(p[8*i:])
		k := v ^ le64(s[8*i:])
		acc[i^1] += v
		acc[i] += uint64(uint32(k)) * (k >> 32)
	}
}

func xxh3Scramble(acc *[8]uint64, s []byte) {
	s = s[:64]
	for i := 0; i < 8; i++ {
		a := acc[i]
		a ^= a >> 47
		a ^= le64(s[8*i:])
		acc[i] = a * prime32x1
	}
}
