// Package key implements Pegasus's record key encoding and partition hashing.
//
// A record is addressed by a hash key and a sort key. On the wire and on disk the two are
// joined into one encoded key: a big-endian uint16 length of the hash key, the hash key, then
// the sort key. Encoded keys sort bytewise, so all sort keys of one hash key are contiguous.
// A table's partition for a key is the CRC-64 of the hash key modulo the partition count.
//
// All functions are pure and safe for concurrent use.
package key

import (
	"errors"
	"hash/crc64"
)

// MaxHashKeyLen is the largest hash key length the encoding can carry (the uint16 prefix).
// Servers reject hash keys of this length or more where they build keys themselves, as
// Apache Pegasus asserts len(hashKey) < 65535.
const MaxHashKeyLen = 0xFFFF

// ErrMalformed is returned when an encoded key is shorter than its length prefix claims.
var ErrMalformed = errors.New("key: malformed encoded key")

// ErrHashKeyTooLong is returned when a hash key does not fit the uint16 length prefix.
var ErrHashKeyTooLong = errors.New("key: hash key length must be less than 65535 bytes")

// Encode returns the encoded key of (hashKey, sortKey) in a newly allocated slice.
// It panics if hashKey is longer than 65535 bytes; callers validate lengths first.
func Encode(hashKey, sortKey []byte) []byte {
	return Append(make([]byte, 0, 2+len(hashKey)+len(sortKey)), hashKey, sortKey)
}

// Append appends the encoded key of (hashKey, sortKey) to dst and returns the extended slice.
// It panics if hashKey is longer than 65535 bytes.
func Append(dst, hashKey, sortKey []byte) []byte {
	if len(hashKey) > MaxHashKeyLen {
		panic(ErrHashKeyTooLong)
	}
	dst = append(dst, byte(len(hashKey)>>8), byte(len(hashKey)))
	dst = append(dst, hashKey...)
	return append(dst, sortKey...)
}

// Decode splits an encoded key into its hash key and sort key. The returned slices alias k.
func Decode(k []byte) (hashKey, sortKey []byte, err error) {
	if len(k) < 2 {
		return nil, nil, ErrMalformed
	}
	n := int(k[0])<<8 | int(k[1])
	if 2+n > len(k) {
		return nil, nil, ErrMalformed
	}
	return k[2 : 2+n], k[2+n:], nil
}

var table = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// Hash returns Pegasus's CRC-64 of a raw hash key (reflected polynomial 0x9a6c9329ac4bc9b5,
// init and final xor all ones). Hash("123456789") is 0xae8b14860a799888.
func Hash(hashKey []byte) uint64 {
	return crc64.Checksum(hashKey, table)
}

// HashEncoded returns the partition hash of an encoded key: the hash of its hash key, or of
// its sort key when the hash key is empty, as the Pegasus server computes it.
func HashEncoded(k []byte) (uint64, error) {
	h, s, err := Decode(k)
	if err != nil {
		return 0, err
	}
	if len(h) == 0 {
		return Hash(s), nil
	}
	return Hash(h), nil
}

// Partition maps a hash to a partition index: the unsigned hash modulo count.
// count must be positive.
func Partition(hash uint64, count int) int {
	return int(hash % uint64(count))
}

// FirstCount returns the smallest power-of-two partition count that has a partition pidx
// (pidx >= 0): the table's count when splits made pidx. pidx's ancestors by splits are pidx
// modulo each smaller power of two.
func FirstCount(pidx int32) int32 {
	n := int32(1)
	for n <= pidx {
		n <<= 1
	}
	return n
}

// Successor returns the smallest byte string greater than every string that has k as a
// prefix: k with its last non-0xFF byte incremented and everything after it dropped. It
// returns nil when k is empty or all 0xFF, meaning "no upper bound". The result is a new slice.
func Successor(k []byte) []byte {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] != 0xFF {
			out := make([]byte, i+1)
			copy(out, k[:i+1])
			out[i]++
			return out
		}
	}
	return nil
}

// HashKeyEnd returns the exclusive upper bound of every encoded key under hashKey
// (the "next of hash key" of protocol.md §5.1). For the empty hash key it is 00 01.
func HashKeyEnd(hashKey []byte) []byte {
	return Successor(Encode(hashKey, nil))
}

// PrefixEnd returns the exclusive upper bound of the encoded keys under hashKey whose sort
// key starts with prefix.
func PrefixEnd(hashKey, prefix []byte) []byte {
	return Successor(Encode(hashKey, prefix))
}
