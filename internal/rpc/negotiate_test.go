package rpc

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// tokenAuth is a test Authenticator: a client authenticates as user by sending
// SASL_INITIATE with msg "user:<name>" ("user:" alone fails).
type tokenAuth struct{ mandatory atomic.Bool }

func (a *tokenAuth) Mandatory() bool { return a.mandatory.Load() }

func (a *tokenAuth) NewNegotiation(net.Addr) Negotiation { return &tokenNegotiation{} }

type tokenNegotiation struct{ done bool }

func (n *tokenNegotiation) Step(req *idl.NegotiationRequest) (*idl.NegotiationResponse, string) {
	if user, ok := strings.CutPrefix(string(req.Msg), "user:"); ok && user != "" && !n.done && req.Status == idl.NegotiationSASLInitiate {
		n.done = true
		return &idl.NegotiationResponse{Status: idl.NegotiationSASLSucc, Msg: []byte{}}, user
	}
	return &idl.NegotiationResponse{Status: idl.NegotiationSASLAuthFail, Msg: []byte{}}, ""
}

// tokenClient is the client side of tokenAuth.
type tokenClient struct{ user string }

func (c tokenClient) Negotiate(ctx context.Context, _ string, exchange Exchange) error {
	resp, err := exchange(ctx, &idl.NegotiationRequest{Status: idl.NegotiationSASLInitiate, Msg: []byte("user:" + c.user)})
	if err != nil {
		return err
	}
	if resp.Status != idl.NegotiationSASLSucc {
		return errors.New("refused")
	}
	return nil
}

// TestNegotiatedUserAndMandatoryAuth checks the server's side of client authentication:
// the user a connection negotiated reaches the handlers (Request.User), later connections
// start anonymous; with mandatory auth an anonymous connection gets ERR_UNAUTHENTICATED
// (the handler does not run) while peers and authenticated clients are served; a failed
// negotiation closes the connection.
func TestNegotiatedUserAndMandatoryAuth(t *testing.T) {
	auth := &tokenAuth{}
	secret, err := NewSecret(GenerateSecret())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", Auth: auth, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	var ran atomic.Int64
	s.Handle(idl.RPCCLICall, func(_ context.Context, req *Request) (idl.Value, wire.Code) {
		ran.Add(1)
		t := idl.Text(req.User)
		return &t, wire.OK
	})
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	defer func() {
		_ = s.Close()
		<-done
	}()
	addr := s.Addr().String()
	who := func(cfg ConnConfig) (string, error) {
		c := NewConn(addr, cfg)
		defer c.Close()
		var out idl.Text
		err := c.Call(t.Context(), wire.Header{}, idl.RPCCLICall, &idl.Command{Cmd: "x", Arguments: []string{}}, &out)
		return string(out), err
	}
	if got, err := who(ConnConfig{Auth: tokenClient{"alice"}}); err != nil || got != "alice" {
		t.Fatalf("authenticated: %q, %v", got, err)
	}
	if got, err := who(ConnConfig{}); err != nil || got != "" {
		t.Fatalf("anonymous, auth optional: %q, %v", got, err)
	}
	auth.mandatory.Store(true)
	before := ran.Load()
	if _, err := who(ConnConfig{}); !errors.Is(err, wire.ErrUnauthenticated) {
		t.Fatalf("anonymous, auth mandatory: %v, want ERR_UNAUTHENTICATED", err)
	}
	if ran.Load() != before {
		t.Fatal("the handler ran for a refused request")
	}
	if got, err := who(ConnConfig{Peer: &PeerCredentials{Secret: secret, Addr: "127.0.0.1:1"}}); err != nil || got != "" {
		t.Fatalf("peer, auth mandatory: %q, %v", got, err)
	}
	if got, err := who(ConnConfig{Auth: tokenClient{"bob"}}); err != nil || got != "bob" {
		t.Fatalf("authenticated, auth mandatory: %q, %v", got, err)
	}
	if _, err := who(ConnConfig{Auth: tokenClient{""}}); err == nil {
		t.Fatal("a refused negotiation let the call through")
	}
	// A failed negotiation closes the connection once its answer is written.
	c := NewConn(addr, ConnConfig{})
	defer c.Close()
	var resp idl.NegotiationResponse
	if err := c.Call(t.Context(), wire.Header{}, idl.RPCNegotiation, &idl.NegotiationRequest{Status: idl.NegotiationSASLInitiate, Msg: []byte("junk")}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != idl.NegotiationSASLAuthFail {
		t.Fatalf("junk negotiation: %v", resp.Status)
	}
	m := s.AuthMetrics()
	if m.Authenticated != 2 || m.Refused != 1 || m.Failed != 2 {
		t.Fatalf("auth metrics %+v", m)
	}
}

// TestMandatoryAuthLeavesPeerRoutesToTheSecret checks that mandatory authentication does
// not refuse the servers' own routes (HandlePeer): on an insecure server (no secret) they
// stay open, as without authentication; the client routes are refused.
func TestMandatoryAuthLeavesPeerRoutesToTheSecret(t *testing.T) {
	auth := &tokenAuth{}
	auth.mandatory.Store(true)
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	s.HandlePeer(idl.RPCGet, echoGet)
	s.Handle(idl.RPCCLICall, func(context.Context, *Request) (idl.Value, wire.Code) {
		t := idl.Text("ran")
		return &t, wire.OK
	})
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	defer func() {
		_ = s.Close()
		<-done
	}()
	c := NewConn(s.Addr().String(), ConnConfig{})
	defer c.Close()
	if _, err := get(t.Context(), c, 0, "k"); err != nil {
		t.Fatalf("peer route on an insecure server: %v", err)
	}
	var out idl.Text
	if err := c.Call(t.Context(), wire.Header{}, idl.RPCCLICall, &idl.Command{Cmd: "x", Arguments: []string{}}, &out); !errors.Is(err, wire.ErrUnauthenticated) {
		t.Fatalf("client route: %v, want ERR_UNAUTHENTICATED", err)
	}
}
