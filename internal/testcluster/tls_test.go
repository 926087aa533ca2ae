package testcluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/certs"
	"github.com/gopegasus/pegasus/internal/golden"
	"github.com/gopegasus/pegasus/internal/wire"
)

// plaintextOfficial sends frame as an official client does (plaintext, no negotiation
// for the Go client) and returns the reply, checking the connection is then closed.
func plaintextOfficial(t *testing.T, addr string, frame []byte) wire.Reply {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	var lb [4]byte
	if _, err := io.ReadFull(br, lb[:]); err != nil {
		t.Fatalf("no reply from %s: %v", addr, err)
	}
	f := make([]byte, binary.BigEndian.Uint32(lb[:]))
	copy(f, lb[:])
	if _, err := io.ReadFull(br, f[4:]); err != nil {
		t.Fatal(err)
	}
	rep, err := wire.DecodeReply(f)
	if err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("connection to %s not closed after the refusal: %d more bytes, %v", addr, len(rest), err)
	}
	return rep
}

func httpsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: cfg, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
}

// Under mandatory_tls an official client's plaintext requests (the golden vectors: the
// configuration query to a meta, a get to a replica server) and plaintext HTTP are
// refused, while our client over TLS and https:// work, a follower meta redirecting
// https to the leader's https.
func TestMandatoryTLSRefusesOfficialClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	tl := NewTLS(t)
	tl.Mandatory = true
	c := Start(t, Options{Metas: 3, Replicas: 3, TLS: tl})
	c.CreateTableReplicas(t, "temp", 4, 3)
	dir := golden.Dir(t)

	leader := c.MetaLeader(t)
	if rep := plaintextOfficial(t, leader, golden.Frame(t, dir, "01")); !errors.Is(rep.Err, wire.ErrUnauthenticated) {
		t.Fatalf("plaintext configuration query: %+v, want ERR_UNAUTHENTICATED", rep)
	}
	rep := plaintextOfficial(t, c.ReplicaAddrs()[0], golden.Frame(t, dir, "02"))
	if !errors.Is(rep.Err, wire.ErrUnauthenticated) {
		t.Fatalf("plaintext get: %+v, want ERR_UNAUTHENTICATED", rep)
	}
	plainHTTP := httpsClient(nil)
	for _, addr := range []string{leader, c.ReplicaAddrs()[1]} {
		resp, err := plainHTTP.Get("http://" + addr + "/version")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "https://") {
			t.Fatalf("plaintext http to %s: %d %q, want 403", addr, resp.StatusCode, body)
		}
	}

	// Our client over TLS: data operations.
	cl, err := pegasus.New(c.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tb, err := cl.OpenTable(t.Context(), "temp")
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Set(t.Context(), []byte("h"), []byte("s"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := tb.Get(t.Context(), []byte("h"), []byte("s")); err != nil || string(v) != "v" {
		t.Fatalf("Get over TLS = %q, %v", v, err)
	}

	// https:// on the same port, a follower redirecting to the leader's https.
	hc := httpsClient(tl.Client)
	resp, err := hc.Get("https://" + c.ReplicaAddrs()[0] + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("https /version: %d", resp.StatusCode)
	}
	for _, m := range c.MetaAddrs() {
		if m == leader {
			continue
		}
		resp, err := hc.Get("https://" + m + "/meta/apps")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, "https://"+leader+"/") {
			t.Fatalf("https /meta/apps on a follower: %d, Location %q; want 307 to https://%s/", resp.StatusCode, loc, leader)
		}
		break
	}
	resp, err = hc.Get("https://" + leader + "/meta/apps")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "temp") {
		t.Fatalf("https /meta/apps on the leader: %d %q", resp.StatusCode, body)
	}
	// The servers went on talking to each other (peer traffic, its own authentication):
	// the table took a write replicated to 3 servers; and they counted the refusals.
	var refused int64
	for _, a := range c.MetaAddrs() {
		refused += c.Meta(t, a).RPCMetrics().PlaintextRefused
	}
	for _, a := range c.ReplicaAddrs() {
		refused += c.Replica(t, a).RPCMetrics().PlaintextRefused
	}
	if refused < 4 {
		t.Fatalf("PlaintextRefused summed over the servers = %d, want >= 4", refused)
	}
}

// With client-cert-auth a client with a certificate of another CA, or none, is refused;
// one with a certificate of the cluster's CA works.
func TestClientCertAuthRefusesOtherCA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	tl := NewTLS(t)
	tl.Mandatory = true
	tl.Server.ClientAuth = tls.RequireAndVerifyClientCert
	c := Start(t, Options{Replicas: 1, TLS: tl})
	c.CreateTable(t, "temp", 2)

	other, err := certs.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := other.Client(ClientUser)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*tls.Config{
		"another CA's certificate": {RootCAs: tl.CA.Pool(), GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &mallory.TLS, nil
		}},
		"no certificate": {RootCAs: tl.CA.Pool()},
	} {
		adm, err := admin.New(admin.Config{MetaServers: c.MetaAddrs(), TLS: cfg, MaxRounds: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err = adm.ListTables(ctx)
		cancel()
		_ = adm.Close()
		if err == nil {
			t.Fatalf("%s: served under client-cert-auth", name)
		}
		if _, _, err := getHTTPS(httpsClient(cfg), "https://"+c.ReplicaAddrs()[0]+"/version"); err == nil {
			t.Fatalf("%s: https served under client-cert-auth", name)
		}
	}
	tb := c.OpenTable(t, "temp") // the cluster's client certificate
	if err := tb.Set(t.Context(), []byte("h"), []byte("s"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if code, _, err := getHTTPS(httpsClient(tl.Client), "https://"+c.ReplicaAddrs()[0]+"/version"); err != nil || code != http.StatusOK {
		t.Fatalf("https with the cluster's certificate: %d %v", code, err)
	}
	m := c.Replica(t, c.ReplicaAddrs()[0]).RPCMetrics()
	if m.TLSHandshakeFailures == 0 || m.TLSConnections == 0 {
		t.Fatalf("replica metrics %+v: want TLS connections and failed handshakes", m)
	}
}

func getHTTPS(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
