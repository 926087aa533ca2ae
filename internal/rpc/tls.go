package rpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// TLS on the client port. A server with [ServerConfig].TLS takes TLS beside plaintext on
// its one port: the first byte of a TLS connection (0x16, a handshake record) is none of
// the other openings the server sniffs ("THFT", an HTTP method, the peer exchange's
// "GPAU"), so no second port is needed. Inside TLS the connection carries thrift or
// HTTP/1.1, sniffed again. A client certificate verified against the server's ClientCAs
// is the client's identity: its subject's common name becomes the connection's user.

// tlsKey and userKey are the context keys of an HTTP request's TLS state and user.
type (
	tlsKey  struct{}
	userKey struct{}
)

// UserOf returns the authenticated client identity of an HTTP request (the ctx of the
// request, as the [Server] serves it): the common name of its connection's verified TLS
// client certificate, or "" when anonymous.
func UserOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// clientTLS returns cfg for a connection to addr: when cfg names no server, the host of
// addr is verified (an IP address against the certificate's IP SANs).
func clientTLS(cfg *tls.Config, addr string) *tls.Config {
	if cfg.ServerName != "" || cfg.InsecureSkipVerify {
		return cfg
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	cfg = cfg.Clone()
	cfg.ServerName = host
	return cfg
}

// DialTLS connects to addr and completes a TLS handshake with cfg (see [ConnConfig].TLS);
// ctx and timeout bound both.
func DialTLS(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: connect to %s: %w", addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	tc := tls.Client(nc, clientTLS(cfg, addr))
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("rpc: tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}
