package wire

import (
	"errors"
	"fmt"
)

// Code is a Pegasus (rDSN) error code: the value behind an error name such as
// "ERR_INVALID_STATE". Codes are comparable and implement error, so
// errors.Is(err, wire.ErrInvalidState) works on wrapped errors. OK is a Code too; use
// [Code.Err] to turn a code into a nil-or-error value.
type Code uint8

// Error returns the wire name of the code, e.g. "ERR_INVALID_STATE".
func (c Code) Error() string { return c.Name() }

// Name returns the wire name of the code.
func (c Code) Name() string {
	if c < numCodes {
		return names[c]
	}
	return fmt.Sprintf("ERR_CODE_%d", uint8(c))
}

// Err returns nil for OK and c otherwise.
func (c Code) Err() error {
	if c == OK {
		return nil
	}
	return c
}

// ForClients reports whether every official client can parse this name. Servers send only
// such codes: the go-client stops reading a connection on an unknown name (protocol.md §1.6).
func (c Code) ForClients() bool { return c < firstNotForClients }

var byName = func() map[string]Code {
	m := make(map[string]Code, numCodes)
	for i, n := range names {
		m[n] = Code(i)
	}
	return m
}()

// ParseCode returns the Code of a wire error name. ok is false for a name this package does
// not know.
func ParseCode(name string) (c Code, ok bool) {
	c, ok = byName[name]
	return c, ok
}

// parseCodeBytes is ParseCode for a name still in a buffer; it does not allocate.
func parseCodeBytes(name []byte) (Code, bool) {
	c, ok := byName[string(name)]
	return c, ok
}

// UnknownCodeError is the error for an error name this package does not know. It keeps the
// name so it can be reported; it is comparable.
type UnknownCodeError struct {
	Name string
}

func (e UnknownCodeError) Error() string { return fmt.Sprintf("unknown error code %q", e.Name) }

// CodeError converts an error name as found in a reply or a struct's err field into an error:
// nil for "ERR_OK", the [Code] for a known name, an [UnknownCodeError] otherwise.
func CodeError(name string) error {
	c, ok := ParseCode(name)
	if !ok {
		return UnknownCodeError{Name: name}
	}
	return c.Err()
}

// AsCode extracts the Code carried by err (possibly wrapped). It reports false when err
// carries none.
func AsCode(err error) (Code, bool) {
	var c Code
	if errors.As(err, &c) {
		return c, true
	}
	return OK, false
}
