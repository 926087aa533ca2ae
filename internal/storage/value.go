package storage

import (
	"encoding/binary"
	"time"
)

// EpochUnix is the start of Pegasus's time base (2016-01-01 00:00:00 UTC) in Unix seconds.
// Every expire timestamp is a number of seconds since this instant.
const EpochUnix = 1451606400

// Data versions of the value schema (protocol.md §5.2).
const (
	dataVersion0 = 0 // u32 expire_ts || user value
	dataVersion1 = 1 // u32 expire_ts || u64 timetag || user value
)

// EpochNow returns t in Pegasus's time base: seconds since 2016-01-01 UTC.
func EpochNow(t time.Time) uint32 {
	s := t.Unix() - EpochUnix
	if s < 0 {
		return 0
	}
	return uint32(s)
}

// expired reports whether a stored expire timestamp has passed at epoch second now.
func expired(expireTS, now uint32) bool {
	return expireTS > 0 && expireTS <= now
}

// headerLen returns the length of the value header of a data version.
func headerLen(version uint32) int {
	if version == dataVersion0 {
		return 4
	}
	return 12
}

// splitValue splits a stored value into its expire timestamp and user value. The user value
// aliases raw. ok is false when raw is shorter than the header.
func splitValue(version uint32, raw []byte) (expireTS uint32, user []byte, ok bool) {
	n := headerLen(version)
	if len(raw) < n {
		return 0, nil, false
	}
	return binary.BigEndian.Uint32(raw), raw[n:], true
}

// putValue writes the stored form of user into dst, which must be exactly
// headerLen(version)+len(user) bytes long.
func putValue(dst []byte, version uint32, expireTS uint32, timetag uint64, user []byte) {
	binary.BigEndian.PutUint32(dst, expireTS)
	if version != dataVersion0 {
		binary.BigEndian.PutUint64(dst[4:], timetag)
	}
	copy(dst[headerLen(version):], user)
}

// makeTimetag builds the duplication timetag of a value: a 56-bit microsecond timestamp, the
// 7-bit cluster id and a delete flag that is always 0 for stored values.
func makeTimetag(timestampUS uint64, clusterID uint8) uint64 {
	return timestampUS<<8 | uint64(clusterID&0x7F)<<1
}

// parseInt parses b the way C strtoll with base 0 does when it must consume the whole input:
// leading white space, one optional sign, then a 0x/0X hexadecimal, 0 octal or decimal number.
// Anything left over, no digits at all, or a value outside int64 makes ok false.
func parseInt(b []byte) (v int64, ok bool) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	base := uint64(10)
	switch {
	case i+1 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X'):
		// strtoll only takes the prefix when a hex digit follows; otherwise it parses "0"
		// and stops at the 'x', which is a leftover character here.
		if i+2 >= len(b) || digitVal(b[i+2]) >= 16 {
			return 0, false
		}
		base = 16
		i += 2
	case i < len(b) && b[i] == '0':
		base = 8
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	var mag uint64
	digits := 0
	for ; i < len(b); i++ {
		d := digitVal(b[i])
		if d >= base {
			return 0, false
		}
		if mag > (limit-d)/base {
			return 0, false
		}
		mag = mag*base + d
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		return int64(-mag), true // -(1<<63) wraps to MinInt64 as intended
	}
	return int64(mag), true
}

func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// digitVal returns the value of c as a digit in bases up to 16, or 255.
func digitVal(c byte) uint64 {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0')
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10
	}
	return 255
}
