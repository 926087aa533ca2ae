package rpc

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Peer authentication. The servers of one cluster share a secret; a server that dials
// another proves, on the new connection and before anything else is sent, that it holds
// the secret, and the server it dialled proves the same back (HMAC-SHA256 challenge and
// response, fresh nonces on both sides, so no proof can be replayed). The exchange, all
// integers big endian:
//
//	dialer -> server  "GPAU" | version 1 | 32-byte dialer nonce | u16 n | n bytes: the dialer's address
//	server -> dialer  version 1 | 32-byte server nonce | 32-byte server proof
//	dialer -> server  32-byte dialer proof
//	server -> dialer  1 byte: 1 accepted (anything else, or a closed connection: refused)
//
// The server proof is HMAC(secret, "gopegasus peer server" | 0 | dialer nonce | server
// nonce | address), the dialer proof the same with "gopegasus peer client": the two labels
// keep either proof from standing for the other. After it the connection carries thrift or
// HTTP as any other, and everything that arrives on it is from the authenticated peer at
// the address it named (any member may name any address: members trust each other; what
// the secret keeps out is every process that does not hold it). The exchange authenticates
// the connection, it does not encrypt it: an attacker able to take over established TCP
// connections on the path is not in this threat model (see the README's Security section).

// peerMagic opens a connection that authenticates as a peer.
const peerMagic = "GPAU"

const (
	peerAuthVersion = 1
	nonceLen        = 32
	proofLen        = sha256.Size
	// MinSecretLen is the shortest cluster secret [NewSecret] accepts, in bytes.
	MinSecretLen = 16
	// peerHandshakeTimeout bounds the exchange on the server's side.
	peerHandshakeTimeout = 10 * time.Second
	maxPeerAddrLen       = 255
)

// ErrPeerRefused is wrapped by the error of a dial whose peer exchange failed: the other
// side does not hold this cluster's secret, or refused this one's.
var ErrPeerRefused = errors.New("rpc: peer authentication failed")

// Secret is a cluster secret: the key every member of a cluster authenticates its
// connections to the other members with. It is immutable and safe for concurrent use.
type Secret struct {
	key []byte
}

// NewSecret returns the secret whose key is b (copied). It fails for a key shorter than
// [MinSecretLen] bytes.
func NewSecret(b []byte) (*Secret, error) {
	if len(b) < MinSecretLen {
		return nil, fmt.Errorf("rpc: cluster secret of %d bytes, want at least %d", len(b), MinSecretLen)
	}
	return &Secret{key: append([]byte(nil), b...)}, nil
}

// GenerateSecret returns a new random secret key of 32 bytes, hex encoded (64 bytes), as
// a secret file holds it.
func GenerateSecret() []byte {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	const hexDigits = "0123456789abcdef"
	out := make([]byte, 0, 64)
	for _, c := range b {
		out = append(out, hexDigits[c>>4], hexDigits[c&15])
	}
	return out
}

func (s *Secret) proof(label string, dialerNonce, serverNonce []byte, addr string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(dialerNonce)
	m.Write(serverNonce)
	m.Write([]byte(addr))
	return m.Sum(nil)
}

const (
	serverLabel = "gopegasus peer server"
	dialerLabel = "gopegasus peer client"
)

// PeerCredentials is what a server dials its peers with: the cluster's secret and its own
// advertised address, the identity its peers know it by.
type PeerCredentials struct {
	Secret *Secret
	Addr   string
}

// DialPeer connects to addr and authenticates the connection with creds (see the package's
// peer authentication); the connection is then ready for thrift or HTTP. ctx bounds the dial
// and the exchange. The error wraps [ErrPeerRefused] when the exchange fails.
func DialPeer(ctx context.Context, addr string, creds *PeerCredentials, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: connect to %s: %w", addr, err)
	}
	if err := authenticateDialer(ctx, nc, creds, timeout); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("rpc: connect to %s: %w", addr, err)
	}
	return nc, nil
}

// bindExchange bounds an exchange a dialer runs on nc before its reader and writer start:
// every read and write fails once timeout has passed, or ctx's deadline, or ctx ends. It
// returns the deadline, and release, which lifts the bounds.
func bindExchange(ctx context.Context, nc net.Conn, timeout time.Duration) (deadline time.Time, release func()) {
	deadline = time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	return deadline, func() {
		stop()
		_ = nc.SetDeadline(time.Time{})
	}
}

// authenticateDialer runs the dialer's side of the exchange on nc.
func authenticateDialer(ctx context.Context, nc net.Conn, creds *PeerCredentials, timeout time.Duration) error {
	if creds.Secret == nil || len(creds.Addr) > maxPeerAddrLen {
		return fmt.Errorf("%w: bad credentials", ErrPeerRefused)
	}
	_, release := bindExchange(ctx, nc, timeout)
	defer release()

	dn := make([]byte, nonceLen)
	_, _ = rand.Read(dn)
	hello := make([]byte, 0, 4+1+nonceLen+2+len(creds.Addr))
	hello = append(hello, peerMagic...)
	hello = append(hello, peerAuthVersion)
	hello = append(hello, dn...)
	hello = binary.BigEndian.AppendUint16(hello, uint16(len(creds.Addr)))
	hello = append(hello, creds.Addr...)
	if _, err := nc.Write(hello); err != nil {
		return err
	}
	var challenge [1 + nonceLen + proofLen]byte
	if _, err := io.ReadFull(nc, challenge[:]); err != nil {
		return fmt.Errorf("%w: no challenge: %v", ErrPeerRefused, err)
	}
	if challenge[0] != peerAuthVersion {
		return fmt.Errorf("%w: the server speaks version %d", ErrPeerRefused, challenge[0])
	}
	sn, sproof := challenge[1:1+nonceLen], challenge[1+nonceLen:]
	if !hmac.Equal(sproof, creds.Secret.proof(serverLabel, dn, sn, creds.Addr)) {
		return fmt.Errorf("%w: the server does not hold this cluster's secret", ErrPeerRefused)
	}
	if _, err := nc.Write(creds.Secret.proof(dialerLabel, dn, sn, creds.Addr)); err != nil {
		return err
	}
	var ok [1]byte
	if _, err := io.ReadFull(nc, ok[:]); err != nil || ok[0] != 1 {
		return fmt.Errorf("%w: refused by the server", ErrPeerRefused)
	}
	return nil
}

// authenticatePeer runs the server's side of the exchange on a connection whose first four
// bytes (still in br) are [peerMagic], and returns the peer's address.
func authenticatePeer(c net.Conn, br *bufio.Reader, secret *Secret) (string, error) {
	_ = c.SetDeadline(time.Now().Add(peerHandshakeTimeout))
	defer c.SetDeadline(time.Time{})
	var hello [4 + 1 + nonceLen + 2]byte
	if _, err := io.ReadFull(br, hello[:]); err != nil {
		return "", err
	}
	if hello[4] != peerAuthVersion {
		return "", fmt.Errorf("peer exchange version %d", hello[4])
	}
	dn := hello[5 : 5+nonceLen]
	n := int(binary.BigEndian.Uint16(hello[5+nonceLen:]))
	if n == 0 || n > maxPeerAddrLen {
		return "", fmt.Errorf("peer address of %d bytes", n)
	}
	ab := make([]byte, n)
	if _, err := io.ReadFull(br, ab); err != nil {
		return "", err
	}
	addr := string(ab)
	if secret == nil {
		// This server has no secret: it cannot authenticate anyone, nor prove anything.
		_, _ = c.Write([]byte{0})
		return "", errors.New("peer exchange on a server without a cluster secret")
	}
	sn := make([]byte, nonceLen)
	_, _ = rand.Read(sn)
	challenge := make([]byte, 0, 1+nonceLen+proofLen)
	challenge = append(challenge, peerAuthVersion)
	challenge = append(challenge, sn...)
	challenge = append(challenge, secret.proof(serverLabel, dn, sn, addr)...)
	if _, err := c.Write(challenge); err != nil {
		return "", err
	}
	var proof [proofLen]byte
	if _, err := io.ReadFull(br, proof[:]); err != nil {
		return "", err
	}
	if !hmac.Equal(proof[:], secret.proof(dialerLabel, dn, sn, addr)) {
		_, _ = c.Write([]byte{0})
		return "", fmt.Errorf("peer %q does not hold this cluster's secret", addr)
	}
	if _, err := c.Write([]byte{1}); err != nil {
		return "", err
	}
	return addr, nil
}

// peerKey is the context key of the authenticated peer of an HTTP request.
type peerKey struct{}

// PeerOf returns the address of the authenticated peer an HTTP request came from (the ctx
// of the request, as the [Server] serves it), or "" when its connection is not
// authenticated.
func PeerOf(ctx context.Context) string {
	p, _ := ctx.Value(peerKey{}).(string)
	return p
}
