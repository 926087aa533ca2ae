package hotkey

// Hash is the 64-bit FNV-1a hash of a hash key, the hash a [Detector] buckets keys by and a
// [TopK] matches them by. Compute it once per request and pass it to both.
func Hash(hashKey []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range hashKey {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Escape renders a hash key as Pegasus's c_escape_string does: backslash, double and single
// quote, tab, new line and carriage return as C escapes, other bytes outside printable ASCII
// as \xHH, the rest as they are.
func Escape(b []byte) string {
	out := make([]byte, 0, len(b))
	const hexDigits = "0123456789ABCDEF"
	for _, c := range b {
		switch {
		case c == '\\', c == '"', c == '\'':
			out = append(out, '\\', c)
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c == '\t':
			out = append(out, '\\', 't')
		case c >= 0x20 && c < 0x7f:
			out = append(out, c)
		default:
			out = append(out, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return string(out)
}
