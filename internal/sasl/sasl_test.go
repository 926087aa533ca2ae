package sasl_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/krbtest"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/sasl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// whoami serves RPC_CLI_CLI_CALL with the caller's identity.
func whoami(_ context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	t := idl.Text("user=" + req.User)
	return &t, wire.OK
}

// startServer runs an rpc.Server authenticating with principal's keytab.
func startServer(t testing.TB, ktPath, principal string, mandatory *atomic.Bool) string {
	t.Helper()
	kt, err := keytab.Load(ktPath)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := sasl.NewServer(sasl.ServerConfig{Keytab: kt, Principal: principal, Mandatory: mandatory.Load})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rpc.NewServer(rpc.ServerConfig{Listen: "127.0.0.1:0", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle(idl.RPCCLICall, whoami)
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = s.Close()
		<-done
	})
	return s.Addr().String()
}

func call(t testing.TB, addr string, auth rpc.ClientAuthenticator) (string, error) {
	t.Helper()
	c := rpc.NewConn(addr, rpc.ConnConfig{Auth: auth})
	defer c.Close()
	var out idl.Text
	err := c.Call(t.Context(), wire.Header{}, idl.RPCCLICall, &idl.Command{Cmd: "x", Arguments: []string{}}, &out)
	return string(out), err
}

// TestNegotiationAgainstRealKDC runs the GSSAPI exchange between our client and server with
// tickets of a real MIT KDC: the authenticated user reaches the handlers; with mandatory
// auth an anonymous connection is refused; a ticket for another service, a server without
// the service's key, and a user from a keytab or a kinit ccache.
func TestNegotiationAgainstRealKDC(t *testing.T) {
	kdc := krbtest.Start(t)
	svcKT := kdc.AddService(t, "pegasus/127.0.0.1")
	aliceKT := kdc.AddUser(t, "alice")
	bobKT := kdc.AddUser(t, "etl/host1")
	otherKT := kdc.AddService(t, "pegasus/otherhost")
	var mandatory atomic.Bool
	addr := startServer(t, svcKT, "pegasus/127.0.0.1@"+krbtest.Realm, &mandatory)

	alice, err := sasl.NewClient(sasl.ClientConfig{Principal: "alice@" + krbtest.Realm, Keytab: aliceKT, Krb5Config: kdc.Krb5Conf})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	got, err := call(t, addr, alice)
	if err != nil || got != "user=alice" {
		t.Fatalf("alice's call: %q, %v; want user=alice", got, err)
	}

	cc := kdc.Kinit(t, "etl/host1", bobKT)
	bob, err := sasl.NewClient(sasl.ClientConfig{CCache: cc, Krb5Config: kdc.Krb5Conf})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if got, err := call(t, addr, bob); err != nil || got != "user=etl/host1" {
		t.Fatalf("ccache user's call: %q, %v; want user=etl/host1", got, err)
	}

	// Anonymous: served while auth is optional, refused once it is mandatory.
	if got, err := call(t, addr, nil); err != nil || got != "user=" {
		t.Fatalf("anonymous call with optional auth: %q, %v", got, err)
	}
	mandatory.Store(true)
	if _, err := call(t, addr, nil); !errors.Is(err, wire.ErrUnauthenticated) {
		t.Fatalf("anonymous call with mandatory auth: %v, want ERR_UNAUTHENTICATED", err)
	}
	if got, err := call(t, addr, alice); err != nil || got != "user=alice" {
		t.Fatalf("alice's call with mandatory auth: %q, %v", got, err)
	}

	// A client asking a ticket for another service principal than the server's.
	wrongSvc, err := sasl.NewClient(sasl.ClientConfig{Principal: "alice", Keytab: aliceKT, Krb5Config: kdc.Krb5Conf, ServiceHost: "otherhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer wrongSvc.Close()
	if _, err := call(t, addr, wrongSvc); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("ticket for another service: %v, want ErrAuthFailed", err)
	}
	// A server that holds another principal's key cannot pass for this one.
	impostor := startServer(t, otherKT, "pegasus/otherhost@"+krbtest.Realm, &mandatory)
	_, port, _ := net.SplitHostPort(impostor)
	if _, err := call(t, net.JoinHostPort("127.0.0.1", port), alice); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Fatalf("server without the service's key: %v, want ErrAuthFailed", err)
	}
}

// TestServerRefusesOutOfOrderSteps checks the server's state machine: a negotiation that
// skips a step fails and closes the connection; garbage tokens fail.
func TestServerRefusesOutOfOrderSteps(t *testing.T) {
	kdc := krbtest.Start(t)
	svcKT := kdc.AddService(t, "pegasus/127.0.0.1")
	var mandatory atomic.Bool
	mandatory.Store(true)
	addr := startServer(t, svcKT, "pegasus/127.0.0.1@"+krbtest.Realm, &mandatory)
	for _, steps := range [][]idl.NegotiationRequest{
		{{Status: idl.NegotiationSASLInitiate, Msg: []byte("junk")}},
		{{Status: idl.NegotiationSASLListMechanisms}, {Status: idl.NegotiationSASLSelectMechanisms, Msg: []byte("PLAIN")}},
		{{Status: idl.NegotiationSASLListMechanisms}, {Status: idl.NegotiationSASLSelectMechanisms, Msg: []byte("GSSAPI")},
			{Status: idl.NegotiationSASLInitiate, Msg: []byte{0x60, 0x03, 0x06, 0x01, 0x00}}},
	} {
		c := rpc.NewConn(addr, rpc.ConnConfig{})
		var last idl.NegotiationResponse
		for _, st := range steps {
			if err := c.Call(t.Context(), wire.Header{}, idl.RPCNegotiation, &st, &last); err != nil {
				t.Fatalf("negotiation step %v: %v", st.Status, err)
			}
		}
		if last.Status != idl.NegotiationSASLAuthFail {
			t.Fatalf("steps %v: last answer %v, want SASL_AUTH_FAIL", steps, last.Status)
		}
		var out idl.Text
		if err := c.Call(t.Context(), wire.Header{}, idl.RPCCLICall, &idl.Command{Cmd: "x", Arguments: []string{}}, &out); err == nil {
			t.Fatalf("a call after a failed negotiation was served: %q", out)
		}
		_ = c.Close()
	}
}

// BenchmarkDialKerberos measures a connection's setup and first call, anonymous and with the
// Kerberos negotiation (the service ticket is cached after the first): the price of client
// authentication, paid once per connection.
func BenchmarkDialKerberos(b *testing.B) {
	kdc := krbtest.Start(b)
	svcKT := kdc.AddService(b, "pegasus/127.0.0.1")
	aliceKT := kdc.AddUser(b, "alice")
	var mandatory atomic.Bool
	addr := startServer(b, svcKT, "pegasus/127.0.0.1@"+krbtest.Realm, &mandatory)
	alice, err := sasl.NewClient(sasl.ClientConfig{Principal: "alice", Keytab: aliceKT, Krb5Config: kdc.Krb5Conf})
	if err != nil {
		b.Fatal(err)
	}
	defer alice.Close()
	for _, bc := range []struct {
		name string
		auth rpc.ClientAuthenticator
	}{{"anonymous", nil}, {"kerberos", alice}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := call(b, addr, bc.auth); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
