package idl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Placeholder ("dsn") types: on the wire they sit under a STRUCT type byte but carry a raw
// value with no field headers and no STOP (protocol.md §1.8). Lists of them have element type
// STRUCT.

// Blob is the dsn blob placeholder: a raw i32 length and bytes. It is the args payload of
// GET, REMOVE, TTL (an encoded key) and SORTKEY_COUNT (a raw hash key). Inside structs blobs
// are plain []byte fields. A decoded Blob aliases the decoder's input; it is non-nil (maybe
// empty) when decoding succeeded. A nil Blob encodes like an empty one.
type Blob []byte

// ThriftType implements [Value].
func (Blob) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (b Blob) Encode(e *Encoder) { e.Binary(b) }

// Decode implements [Value].
func (b *Blob) Decode(d *Decoder) { *b = d.Binary() }

// GPID identifies a partition: table (app) id and partition index. On the wire it is one i64
// whose low 32 bits are AppID and high 32 bits PartitionIndex.
type GPID struct {
	AppID          int32
	PartitionIndex int32
}

// ThriftType implements [Value].
func (GPID) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (p GPID) Encode(e *Encoder) { e.I64(p.raw()) }

// Decode implements [Value].
func (p *GPID) Decode(d *Decoder) {
	v := uint64(d.I64())
	*p = GPID{AppID: int32(uint32(v)), PartitionIndex: int32(uint32(v >> 32))}
}

func (p GPID) raw() int64 {
	return int64(uint64(uint32(p.PartitionIndex))<<32 | uint64(uint32(p.AppID)))
}

// String returns "app_id.partition_index", as Pegasus prints a gpid.
func (p GPID) String() string {
	return strconv.Itoa(int(p.AppID)) + "." + strconv.Itoa(int(p.PartitionIndex))
}

// ErrInvalidAddress is returned (wrapped) when an address is not an IPv4 host:port.
var ErrInvalidAddress = errors.New("idl: not an IPv4 address")

// RPCAddress is the dsn rpc_address placeholder, a raw i64: bits 63..32 hold the IPv4
// address, bits 31..16 the port, bits 1..0 the host type (1 = IPv4). Zero is the invalid
// (empty) address, sent for example as the primary of a partition that has none.
type RPCAddress uint64

const rpcAddressIPv4 = 1

// NewRPCAddress returns the IPv4 address ip:port.
func NewRPCAddress(ip [4]byte, port uint16) RPCAddress {
	return RPCAddress(uint64(binary.BigEndian.Uint32(ip[:]))<<32 | uint64(port)<<16 | rpcAddressIPv4)
}

// RPCAddressFrom converts ap to an RPCAddress. IPv4-mapped IPv6 addresses are accepted; any
// other non-IPv4 address yields an error wrapping [ErrInvalidAddress].
func RPCAddressFrom(ap netip.AddrPort) (RPCAddress, error) {
	ip := ap.Addr().Unmap()
	if !ip.Is4() {
		return 0, fmt.Errorf("%w: %s", ErrInvalidAddress, ap)
	}
	return NewRPCAddress(ip.As4(), ap.Port()), nil
}

// ParseRPCAddress parses "a.b.c.d:port" (for example "127.0.0.1:34801"). Host names are not
// resolved. Errors wrap [ErrInvalidAddress].
func ParseRPCAddress(s string) (RPCAddress, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidAddress, err)
	}
	return RPCAddressFrom(ap)
}

// ThriftType implements [Value].
func (RPCAddress) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (a RPCAddress) Encode(e *Encoder) { e.I64(int64(a)) }

// Decode implements [Value].
func (a *RPCAddress) Decode(d *Decoder) { *a = RPCAddress(d.I64()) }

// IsZero reports whether a is the invalid (empty) address.
func (a RPCAddress) IsZero() bool { return a == 0 }

// IsIPv4 reports whether a's host type says IPv4.
func (a RPCAddress) IsIPv4() bool { return a&3 == rpcAddressIPv4 }

// IP returns the IPv4 address held in a (0.0.0.0 for the zero address).
func (a RPCAddress) IP() netip.Addr {
	var ip [4]byte
	binary.BigEndian.PutUint32(ip[:], uint32(a>>32))
	return netip.AddrFrom4(ip)
}

// Port returns the port held in a.
func (a RPCAddress) Port() uint16 { return uint16(a >> 16) }

// AddrPort returns a as a netip.AddrPort.
func (a RPCAddress) AddrPort() netip.AddrPort { return netip.AddrPortFrom(a.IP(), a.Port()) }

// String returns "a.b.c.d:port", or "invalid" when a's host type is not IPv4 (the zero
// address included), so a log line never shows a plausible-looking 0.0.0.0:0.
func (a RPCAddress) String() string {
	if !a.IsIPv4() {
		return "invalid"
	}
	return a.AddrPort().String()
}

// HostPort is the dsn host_port placeholder: host name (or IP text), port and host type
// (0 invalid, 1 IPv4). On the wire: thrift string host, i16 port (the u16 bits), byte type.
type HostPort struct {
	Host string
	Port uint16
	Type byte
}

// NewHostPort returns host:port with type IPv4 (1), the only valid type a peer may send.
func NewHostPort(host string, port uint16) HostPort {
	return HostPort{Host: host, Port: port, Type: rpcAddressIPv4}
}

// ThriftType implements [Value].
func (HostPort) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (h HostPort) Encode(e *Encoder) {
	e.String(h.Host)
	e.I16(int16(h.Port))
	e.Byte(h.Type)
}

// Decode implements [Value].
func (h *HostPort) Decode(d *Decoder) {
	h.Host = d.String()
	h.Port = uint16(d.I16())
	h.Type = d.Byte()
}

// IsZero reports whether h is the zero (invalid, empty) host_port.
func (h HostPort) IsZero() bool { return h == HostPort{} }

// String returns "host:port" (IPv6 literals bracketed), or "invalid" when h's type is not 1.
func (h HostPort) String() string {
	if h.Type != rpcAddressIPv4 {
		return "invalid"
	}
	return net.JoinHostPort(h.Host, strconv.Itoa(int(h.Port)))
}

// ErrorCode is the dsn error_code placeholder: the error's name ("ERR_OK", ...) as a raw
// thrift string. Meta replies carry one in their err field; the mapping of names to Go errors
// lives elsewhere. The zero ErrorCode encodes as an empty name, which no client understands.
type ErrorCode string

// ThriftType implements [Value].
func (ErrorCode) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (c ErrorCode) Encode(e *Encoder) { e.String(string(c)) }

// Decode implements [Value].
func (c *ErrorCode) Decode(d *Decoder) { *c = ErrorCode(d.String()) }
