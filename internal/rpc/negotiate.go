package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Client authentication. A client that has credentials negotiates its identity on a new
// connection with RPC_NEGOTIATION requests before anything else, as Pegasus's Java client
// does (SASL: list mechanisms, select one, then challenges and responses until SASL_SUCC or
// SASL_AUTH_FAIL). The server answers them from the connection's reader, one at a time and
// in order, so the requests that follow a SASL_SUCC are the authenticated user's
// ([Request].User). A server without an [Authenticator] answers every negotiation
// SASL_AUTH_DISABLE, as Pegasus with [security] enable_auth = false does, and the clients
// then go on unauthenticated.
//
// With a mandatory Authenticator (mandatory_auth), a connection that has not authenticated
// (and is not a peer's, see peerauth.go) gets ERR_UNAUTHENTICATED for every request other
// than RPC_NEGOTIATION and the peer routes (HandlePeer), and nothing for one-way ones: the
// request is not executed. Pegasus
// drops such requests without an answer; an answer tells the client at once why, instead
// of after its timeout, and says nothing an unauthenticated client could use.

// Authenticator authenticates the clients of a [Server] (ServerConfig.Auth). Its methods
// are called concurrently, for different connections.
type Authenticator interface {
	// Mandatory reports whether connections that have not authenticated are refused. It is
	// asked for every request of such a connection, so it may change while the server runs.
	Mandatory() bool
	// NewNegotiation starts the negotiation of the connection from remote, at its first
	// RPC_NEGOTIATION request.
	NewNegotiation(remote net.Addr) Negotiation
}

// Negotiation is the server side of one connection's negotiation. Step is called for each
// RPC_NEGOTIATION request of the connection, one at a time.
type Negotiation interface {
	// Step answers one request. The user returned, with a SASL_SUCC answer, is the
	// identity the connection's later requests carry; a SASL_AUTH_FAIL answer closes the
	// connection once it is written.
	Step(req *idl.NegotiationRequest) (resp *idl.NegotiationResponse, user string)
}

// Exchange sends one negotiation request on a connection being set up and returns the
// server's answer.
type Exchange func(ctx context.Context, req *idl.NegotiationRequest) (*idl.NegotiationResponse, error)

// ClientAuthenticator negotiates the identity of a client's connections
// (ConnConfig.Auth). Negotiate is called once for each new connection, before any request,
// possibly for several connections at once.
type ClientAuthenticator interface {
	// Negotiate runs the client side of the negotiation with the server at addr, through
	// exchange. An error closes the connection and fails the calls waiting for it.
	Negotiate(ctx context.Context, addr string, exchange Exchange) error
}

// errNegotiationFailed ends a connection whose negotiation failed, once the answer is out.
var errNegotiationFailed = errors.New("rpc: client authentication failed")

// authCounters count what the server's Authenticator decided.
type authCounters struct {
	authenticated atomic.Int64
	failed        atomic.Int64
	refused       atomic.Int64
}

// AuthMetrics are a server's client authentication counters.
type AuthMetrics struct {
	// Authenticated and Failed count the negotiations that ended in SASL_SUCC and
	// SASL_AUTH_FAIL.
	Authenticated, Failed int64
	// Refused counts the requests refused because their connection had not authenticated
	// while authentication was mandatory.
	Refused int64
}

// AuthMetrics returns a snapshot of the server's client authentication counters. Safe for
// concurrent use.
func (s *Server) AuthMetrics() AuthMetrics {
	return AuthMetrics{Authenticated: s.auth.authenticated.Load(), Failed: s.auth.failed.Load(), Refused: s.auth.refused.Load()}
}

// Wrap replaces the handler of every route registered so far, but RPC_NEGOTIATION's, by
// wrap's: what every request of the server goes through (an access control). peer tells
// the routes only the cluster's servers send (HandlePeer, RequirePeer). It is not safe to
// call concurrently with Run.
func (s *Server) Wrap(wrap func(name string, peer bool, h HandlerFunc) HandlerFunc) {
	for name, r := range s.routes {
		if name != idl.RPCNegotiation {
			r.handler = wrap(name, r.peer, r.handler)
		}
	}
}

// negotiate answers one RPC_NEGOTIATION request, on the connection's reader.
func (sc *serverConn) negotiate(ctx context.Context, rt *route, seqID int32, args []byte, body, hold int64) error {
	defer sc.free(body, hold)
	req := &idl.NegotiationRequest{}
	if err := wire.DecodeArgs(args, req); err != nil {
		return fmt.Errorf("decode %s args: %w", rt.rpc.Name, err)
	}
	if sc.nego == nil {
		sc.nego = sc.s.cfg.Auth.NewNegotiation(sc.c.RemoteAddr())
	}
	resp, user := sc.step(req)
	// Counted before the answer leaves: a client that has it sees the metrics include it.
	switch {
	case resp.Status == idl.NegotiationSASLAuthFail:
		sc.s.auth.failed.Add(1)
	case resp.Status == idl.NegotiationSASLSucc && user != "":
		sc.s.auth.authenticated.Add(1)
		sc.user = user
	}
	sc.send(ctx, rt.rpc.AckName, seqID, wire.OK, resp)
	if resp.Status == idl.NegotiationSASLAuthFail {
		return errNegotiationFailed
	}
	return nil
}

// step runs one step of the connection's negotiation. A step that panics (a token the
// mechanism's parser chokes on) fails the negotiation, and the server goes on.
func (sc *serverConn) step(req *idl.NegotiationRequest) (resp *idl.NegotiationResponse, user string) {
	defer func() {
		if p := recover(); p != nil {
			sc.lg.Error("negotiation step panicked", "panic", p, "stack", string(debug.Stack()))
			resp, user = &idl.NegotiationResponse{Status: idl.NegotiationSASLAuthFail, Msg: []byte{}}, ""
		}
	}()
	return sc.nego.Step(req)
}

// refuseUnauthenticated refuses rt's request when authentication is mandatory and the
// connection has not authenticated: ERR_UNAUTHENTICATED, nothing for a one-way RPC. It
// reports whether it refused.
func (sc *serverConn) refuseUnauthenticated(ctx context.Context, rt *route, seqID int32) bool {
	a := sc.s.cfg.Auth
	// Peer routes are the servers' own traffic, guarded by the cluster secret (or, on an
	// insecure cluster, by nothing): not a client's to authenticate.
	if a == nil || sc.user != "" || sc.peer != "" || rt.peer || rt.rpc.Name == idl.RPCNegotiation || !a.Mandatory() {
		return false
	}
	sc.s.auth.refused.Add(1)
	sc.lg.Debug("rpc refused: the connection has not authenticated", "rpc", rt.rpc.Name)
	if !rt.rpc.IsOneWay() {
		sc.send(ctx, rt.rpc.AckName, seqID, wire.ErrUnauthenticated, nil)
	}
	return true
}

// negotiateClient runs auth's negotiation on nc, a new connection to addr, before its
// reader and writer start: each request is written and its answer read in turn.
func negotiateClient(ctx context.Context, nc net.Conn, addr string, auth ClientAuthenticator, timeout time.Duration, maxReply int) error {
	deadline, release := bindExchange(ctx, nc, timeout)
	defer release()
	var seq int32
	exchange := func(ctx context.Context, req *idl.NegotiationRequest) (*idl.NegotiationResponse, error) {
		seq++
		h := wire.Header{ClientTimeout: uint32(max(time.Until(deadline).Milliseconds(), 1))}
		if _, err := nc.Write(wire.AppendRequest(nil, &h, idl.RPCNegotiation, seq, req)); err != nil {
			return nil, err
		}
		var lenBuf [4]byte
		if _, err := io.ReadFull(nc, lenBuf[:]); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint32(lenBuf[:]))
		if n < 8 || n > maxReply {
			return nil, fmt.Errorf("%w: reply of %d bytes", wire.ErrFrameTooLarge, n)
		}
		frame := make([]byte, n)
		copy(frame, lenBuf[:])
		if _, err := io.ReadFull(nc, frame[4:]); err != nil {
			return nil, err
		}
		r, err := wire.DecodeReply(frame)
		if err != nil {
			return nil, err
		}
		if r.SeqID != seq {
			return nil, fmt.Errorf("rpc: negotiation reply for request %d, want %d", r.SeqID, seq)
		}
		if r.Err != nil {
			return nil, r.Err
		}
		resp := &idl.NegotiationResponse{}
		if err := wire.DecodeResult(r.Body, resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
	if err := auth.Negotiate(ctx, addr, exchange); err != nil {
		return fmt.Errorf("rpc: authenticate to %s: %w", addr, err)
	}
	return nil
}
