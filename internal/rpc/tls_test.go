package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/certs"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/wire"
)

// tlsFixture is a CA, a server certificate for 127.0.0.1 and client configurations.
type tlsFixture struct {
	ca     *certs.CA
	server *tls.Config // the server's, without client certificates asked
}

func newTLSFixture(t testing.TB) *tlsFixture {
	t.Helper()
	ca, err := certs.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	return &tlsFixture{ca: ca, server: &tls.Config{Certificates: []tls.Certificate{srv.TLS}}}
}

// client returns a client configuration trusting the fixture's CA, with a client
// certificate named cn issued by from (none when from is nil).
func (f *tlsFixture) client(t testing.TB, from *certs.CA, cn string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: f.ca.Pool()}
	if from != nil {
		c, err := from.Client(cn)
		if err != nil {
			t.Fatal(err)
		}
		// Presented whatever CAs the server names as acceptable (a Go client would
		// otherwise keep quiet a certificate the server cannot verify).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c.TLS, nil }
	}
	return cfg
}

// verifying returns the server configuration that verifies client certificates against
// the fixture's CA (required or only when given).
func (f *tlsFixture) verifying(required bool) *tls.Config {
	cfg := f.server.Clone()
	cfg.ClientCAs = f.ca.Pool()
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	if required {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// whoGet answers a GET with the request's user and peer, and whether it came over TLS
// is told by the HTTP side.
func whoGet(_ context.Context, req *Request) (idl.Value, wire.Code) {
	return &idl.ReadResponse{Value: []byte(req.User + "|" + req.Peer), AppID: 1, PartitionIndex: 2}, wire.OK
}

// whoHTTP answers with the request's user, peer and whether r.TLS is set.
var whoHTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s|%s|%v", UserOf(r.Context()), PeerOf(r.Context()), r.TLS != nil)
})

func startTLSServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	cfg.HTTP = whoHTTP
	return startServer(t, cfg, map[string]HandlerFunc{idl.RPCGet: whoGet})
}

func httpsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: nil}}
}

func httpGet(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// One port serves thrift and HTTP both in plaintext and inside TLS; the server's name
// is verified against the address's IP.
func TestTLSOnClientPort(t *testing.T) {
	f := newTLSFixture(t)
	s := startTLSServer(t, ServerConfig{TLS: f.server})
	addr := s.Addr().String()
	ctx := t.Context()

	tc := NewConn(addr, ConnConfig{TLS: f.client(t, nil, "")})
	defer tc.Close()
	for i := range 20 { // several requests over one TLS connection
		if got, err := get(ctx, tc, i%2, "k"); err != nil || string(got) != "|" {
			t.Fatalf("over TLS: %q, %v", got, err)
		}
	}
	plain := NewConn(addr, ConnConfig{})
	defer plain.Close()
	if _, err := get(ctx, plain, 0, "k"); err != nil {
		t.Fatalf("plaintext beside TLS: %v", err)
	}
	if code, body, err := httpGet(t, httpsClient(f.client(t, nil, "")), "https://"+addr+"/who"); err != nil || code != 200 || body != "||true" {
		t.Fatalf("https: %d %q %v", code, body, err)
	}
	if code, body, err := httpGet(t, httpsClient(nil), "http://"+addr+"/who"); err != nil || code != 200 || body != "||false" {
		t.Fatalf("http beside https: %d %q %v", code, body, err)
	}
	// A client that does not trust the server's CA fails the handshake, clearly.
	other, err := certs.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	bad := NewConn(addr, ConnConfig{TLS: &tls.Config{RootCAs: other.Pool()}})
	defer bad.Close()
	var uerr x509UnknownAuthority
	if _, err := get(ctx, bad, 0, "k"); !errors.As(err, &uerr.err) {
		t.Fatalf("untrusted server: %v, want an unknown authority error", err)
	}
	// The name is checked: a certificate for 127.0.0.1 is not one for 127.0.0.2.
	wrong := NewConn(addr, ConnConfig{TLS: &tls.Config{RootCAs: f.ca.Pool(), ServerName: "pegasus.example"}})
	defer wrong.Close()
	if _, err := get(ctx, wrong, 0, "k"); err == nil {
		t.Fatal("a certificate for another name was accepted")
	}
	poll.Until(t, "2 TLS connections and 2 failed handshakes counted", func() bool {
		m := s.Metrics()
		return m.TLSConnections >= 2 && m.TLSHandshakeFailures >= 2
	})
	// The server goes on serving after the failed handshakes.
	if _, err := get(ctx, tc, 0, "k"); err != nil {
		t.Fatal(err)
	}
}

// x509UnknownAuthority holds the error type of a certificate signed by an unknown CA.
type x509UnknownAuthority struct {
	err *tls.CertificateVerificationError
}

// Under MandatoryTLS a plaintext thrift connection gets ERR_UNAUTHENTICATED and is
// closed, plaintext HTTP gets 403, TLS works, and a peer's plaintext connection (its
// own authentication) still works.
func TestMandatoryTLSRefusesPlaintext(t *testing.T) {
	f := newTLSFixture(t)
	secret := mustSecret(t)
	s := startTLSServer(t, ServerConfig{TLS: f.server, MandatoryTLS: true, Secret: secret})
	addr := s.Addr().String()
	ctx := t.Context()

	// As an official client sends it: a negotiation first, then a get.
	raw := dialRaw(t, addr)
	raw.write(frame(idl.RPCNegotiation, 1, &idl.NegotiationRequest{Status: idl.NegotiationInvalid}))
	if rep := raw.readReply(); rep.SeqID != 1 || !errors.Is(rep.Err, wire.ErrUnauthenticated) {
		t.Fatalf("plaintext negotiation: %+v, want ERR_UNAUTHENTICATED", rep)
	}
	raw.expectClosed()
	plain := NewConn(addr, ConnConfig{})
	defer plain.Close()
	if _, err := get(ctx, plain, 0, "k"); !errors.Is(err, wire.ErrUnauthenticated) {
		t.Fatalf("plaintext get: %v, want ERR_UNAUTHENTICATED", err)
	}
	code, body, err := httpGet(t, httpsClient(nil), "http://"+addr+"/who")
	if err != nil || code != http.StatusForbidden || !strings.Contains(body, "https://") {
		t.Fatalf("plaintext http: %d %q %v, want 403 naming https", code, body, err)
	}

	tc := NewConn(addr, ConnConfig{TLS: f.client(t, nil, "")})
	defer tc.Close()
	if _, err := get(ctx, tc, 0, "k"); err != nil {
		t.Fatalf("TLS under mandatory_tls: %v", err)
	}
	if code, body, err := httpGet(t, httpsClient(f.client(t, nil, "")), "https://"+addr+"/who"); err != nil || code != 200 || body != "||true" {
		t.Fatalf("https under mandatory_tls: %d %q %v", code, body, err)
	}
	peer := NewConn(addr, ConnConfig{Peer: &PeerCredentials{Secret: secret, Addr: "10.0.0.9:34801"}})
	defer peer.Close()
	if got, err := get(ctx, peer, 0, "k"); err != nil || string(got) != "|10.0.0.9:34801" {
		t.Fatalf("peer under mandatory_tls: %q, %v", got, err)
	}
	if m := s.Metrics(); m.PlaintextRefused != 3 {
		t.Fatalf("PlaintextRefused = %d, want 3", m.PlaintextRefused)
	}
	if _, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", MandatoryTLS: true}); err == nil {
		t.Fatal("mandatory TLS without a TLS configuration was accepted")
	}
}

// A verified client certificate's common name is the connection's user, for thrift and
// HTTP; with client-cert-auth a client without one, or with one of another CA, is
// refused; without it, one without a certificate is anonymous.
func TestClientCertificateIdentity(t *testing.T) {
	f := newTLSFixture(t)
	other, err := certs.NewCA("another cluster's CA")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprintf("required=%v", required), func(t *testing.T) {
			s := startTLSServer(t, ServerConfig{TLS: f.verifying(required)})
			addr := s.Addr().String()
			alice := NewConn(addr, ConnConfig{TLS: f.client(t, f.ca, "alice")})
			defer alice.Close()
			if got, err := get(ctx, alice, 1, "k"); err != nil || string(got) != "alice|" {
				t.Fatalf("alice: %q, %v", got, err)
			}
			if code, body, err := httpGet(t, httpsClient(f.client(t, f.ca, "bob")), "https://"+addr+"/who"); err != nil || code != 200 || body != "bob||true" {
				t.Fatalf("https as bob: %d %q %v", code, body, err)
			}
			mallory := NewConn(addr, ConnConfig{TLS: f.client(t, other, "alice")})
			defer mallory.Close()
			if got, err := get(ctx, mallory, 0, "k"); err == nil {
				t.Fatalf("a certificate of another CA was taken: %q", got)
			}
			if _, _, err := httpGet(t, httpsClient(f.client(t, other, "alice")), "https://"+addr+"/who"); err == nil {
				t.Fatal("https with a certificate of another CA was taken")
			}
			anon := NewConn(addr, ConnConfig{TLS: f.client(t, nil, "")})
			defer anon.Close()
			got, err := get(ctx, anon, 0, "k")
			if required && err == nil {
				t.Fatalf("client-cert-auth: a client without a certificate was taken: %q", got)
			}
			if !required && (err != nil || string(got) != "|") {
				t.Fatalf("without client-cert-auth, anonymous: %q, %v", got, err)
			}
			poll.Until(t, "the failed handshakes counted", func() bool { return s.Metrics().TLSHandshakeFailures >= 2 })
		})
	}
}

// Garbage after a TLS record byte, a stalled handshake and a plaintext client speaking
// to a TLS-only listener do not disturb the server.
func TestBrokenTLSDoesNotDisturbOthers(t *testing.T) {
	f := newTLSFixture(t)
	s := startTLSServer(t, ServerConfig{TLS: f.server, MandatoryTLS: true})
	addr := s.Addr().String()
	junk := dialRaw(t, addr)
	junk.write([]byte{0x16, 3, 1, 0xff, 0xff, 1, 2, 3})
	junk.expectClosedOrReset()
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := stalled.Write([]byte{0x16, 3, 1}); err != nil {
		t.Fatal(err)
	}
	tc := NewConn(addr, ConnConfig{TLS: f.client(t, nil, "")})
	defer tc.Close()
	if _, err := get(t.Context(), tc, 0, "k"); err != nil {
		t.Fatal(err)
	}
}
