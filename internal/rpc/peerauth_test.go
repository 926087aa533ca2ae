package rpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/wire"
)

func mustSecret(t *testing.T) *Secret {
	t.Helper()
	s, err := NewSecret(GenerateSecret())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startPeerServer serves GET as a peer route that answers with the caller's peer address,
// and an HTTP endpoint, refused to non-peers, that answers the same.
func startPeerServer(t *testing.T, secret *Secret) *Server {
	t.Helper()
	mux := http.NewServeMux()
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", Secret: secret,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
		HTTP:   mux})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/peer", s.RefusePeerless(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, PeerOf(r.Context()))
	})))
	s.HandlePeer(idl.RPCGet, func(_ context.Context, req *Request) (idl.Value, wire.Code) {
		return &idl.ReadResponse{Value: []byte(req.Peer), AppID: 1, PartitionIndex: 2}, wire.OK
	})
	s.Handle(idl.RPCTTL, func(_ context.Context, req *Request) (idl.Value, wire.Code) {
		return &idl.TTLResponse{TTLSeconds: 7}, wire.OK
	})
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("server run: %v", err)
		}
	})
	return s
}

func TestPeerAuthentication(t *testing.T) {
	secret := mustSecret(t)
	s := startPeerServer(t, secret)
	addr := s.Addr().String()
	ctx := t.Context()

	// A member: authenticated, named by the address it claims.
	member := NewConn(addr, ConnConfig{Peer: &PeerCredentials{Secret: secret, Addr: "10.0.0.1:34801"}})
	defer member.Close()
	got, err := get(ctx, member, 1, "k")
	if err != nil || string(got) != "10.0.0.1:34801" {
		t.Fatalf("member: got %q, %v; want its address", got, err)
	}

	// No secret: the peer route is refused, the client route still served.
	plain := NewConn(addr, ConnConfig{})
	defer plain.Close()
	if _, err := get(ctx, plain, 1, "k"); !errors.Is(err, wire.ErrUnauthenticated) {
		t.Fatalf("no secret: %v, want ERR_UNAUTHENTICATED", err)
	}
	var ttl idl.TTLResponse
	b := idl.Blob("k")
	if err := plain.Call(ctx, wire.Header{}, idl.RPCTTL, &b, &ttl); err != nil || ttl.TTLSeconds != 7 {
		t.Fatalf("client route: %+v, %v", ttl, err)
	}

	// Another cluster's secret: the dial fails, the server counts it.
	other := NewConn(addr, ConnConfig{Peer: &PeerCredentials{Secret: mustSecret(t), Addr: "10.0.0.2:34801"}})
	defer other.Close()
	if _, err := get(ctx, other, 1, "k"); !errors.Is(err, ErrPeerRefused) {
		t.Fatalf("other cluster: %v, want ErrPeerRefused", err)
	}

	// HTTP: a peer connection is known to the handler; another is refused.
	peerHTTP := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, a string) (net.Conn, error) {
		return DialPeer(ctx, a, &PeerCredentials{Secret: secret, Addr: "10.0.0.3:34801"}, DefaultDialTimeout)
	}}}
	resp, err := peerHTTP.Get("http://" + addr + "/peer")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "10.0.0.3:34801" {
		t.Fatalf("peer HTTP: %s %q", resp.Status, body)
	}
	resp, err = http.Get("http://" + addr + "/peer")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("plain HTTP: %s, want 403", resp.Status)
	}

	// The server counts the refused exchange once it sees the dialer give up.
	poll.Until(t, "the refused exchange counted", func() bool { return s.Metrics().PeerConnectionsRefused > 0 })
	m := s.Metrics()
	if m.PeerConnections != 2 || m.PeerConnectionsRefused != 1 || m.PeerRequestsRefused != 2 {
		t.Fatalf("metrics %+v", m)
	}
}

// A server without a secret (an insecure cluster) serves peer routes to anyone, and
// refuses peer exchanges: it can prove nothing.
func TestPeerRoutesOpenWithoutSecret(t *testing.T) {
	s := startPeerServer(t, nil)
	addr := s.Addr().String()
	plain := NewConn(addr, ConnConfig{})
	defer plain.Close()
	if got, err := get(t.Context(), plain, 1, "k"); err != nil || len(got) != 0 {
		t.Fatalf("insecure server: %q, %v", got, err)
	}
	peer := NewConn(addr, ConnConfig{Peer: &PeerCredentials{Secret: mustSecret(t), Addr: "10.0.0.1:1"}})
	defer peer.Close()
	if _, err := get(t.Context(), peer, 1, "k"); !errors.Is(err, ErrPeerRefused) {
		t.Fatalf("peer exchange with an insecure server: %v", err)
	}
}

// Every server answers a SASL negotiation that client authentication is off, as Pegasus
// does with enable_auth = false (operations.md §7).
func TestNegotiationAnswersAuthDisabled(t *testing.T) {
	s := startPeerServer(t, mustSecret(t))
	conn := NewConn(s.Addr().String(), ConnConfig{})
	defer conn.Close()
	for _, st := range []idl.NegotiationStatus{idl.NegotiationSASLListMechanisms, idl.NegotiationSASLInitiate} {
		var resp idl.NegotiationResponse
		if err := conn.Call(t.Context(), wire.Header{}, idl.RPCNegotiation, &idl.NegotiationRequest{Status: st}, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Status != idl.NegotiationSASLAuthDisable {
			t.Fatalf("negotiation %v answered %v, want SASL_AUTH_DISABLE", st, resp.Status)
		}
	}
}

// BenchmarkDial measures a connection's setup and first call, plain and authenticated as a
// peer: the price of the exchange, paid once per connection.
func BenchmarkDial(b *testing.B) {
	secret, err := NewSecret(GenerateSecret())
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", Secret: secret})
	if err != nil {
		b.Fatal(err)
	}
	s.Handle(idl.RPCGet, echoGet)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	defer func() { _ = s.Close(); <-done }()
	for _, bc := range []struct {
		name string
		peer *PeerCredentials
	}{{"plain", nil}, {"peer", &PeerCredentials{Secret: secret, Addr: "10.0.0.1:34801"}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := NewConn(s.Addr().String(), ConnConfig{Peer: bc.peer})
				if _, err := get(b.Context(), c, 1, "k"); err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
		})
	}
}
