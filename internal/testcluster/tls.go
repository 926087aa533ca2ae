package testcluster

import (
	"crypto/tls"
	"testing"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/internal/certs"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// ClientUser is the common name of the client certificate [NewTLS] gives the cluster's
// helpers: the user the servers see them as.
const ClientUser = "testcluster"

// TLS is the TLS of a test cluster's client port ([Options].TLS).
type TLS struct {
	// CA issued the servers' certificate and the helpers' client certificate.
	CA *certs.CA
	// Server is every server's configuration: a certificate for 127.0.0.1, and client
	// certificates verified against CA when given (set ClientAuth to
	// tls.RequireAndVerifyClientCert for --client-cert-auth).
	Server *tls.Config
	// Client is what the cluster's helpers (MetaCall, OpenTable, Client, Admin's
	// configuration) connect with: it trusts CA and presents a certificate whose
	// common name is [ClientUser].
	Client *tls.Config
	// Mandatory refuses plaintext thrift and HTTP from clients (mandatory_tls).
	Mandatory bool
}

// NewTLS makes a CA, the servers' certificate and the helpers' client certificate.
func NewTLS(t testing.TB) *TLS {
	t.Helper()
	ca, err := certs.NewCA("testcluster CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("testcluster server", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Client(ClientUser)
	if err != nil {
		t.Fatal(err)
	}
	return &TLS{
		CA: ca,
		Server: &tls.Config{Certificates: []tls.Certificate{srv.TLS}, ClientCAs: ca.Pool(),
			ClientAuth: tls.VerifyClientCertIfGiven},
		Client: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cli.TLS}},
	}
}

// ClientTLS returns the TLS configuration of the cluster's clients, nil when the cluster
// serves plaintext only.
func (c *Cluster) ClientTLS() *tls.Config {
	if c.opts.TLS == nil {
		return nil
	}
	return c.opts.TLS.Client
}

// connConfig is the configuration of the helpers' client connections.
func (c *Cluster) connConfig() rpc.ConnConfig {
	return rpc.ConnConfig{TLS: c.ClientTLS(), Auth: c.opts.ClientAuth}
}

// ClientConfig returns the configuration of a Go client of the cluster: its metas, and
// its TLS when the cluster has TLS.
func (c *Cluster) ClientConfig() pegasus.Config {
	return pegasus.Config{MetaServers: c.MetaAddrs(), TLS: c.ClientTLS()}
}

// serverTLS returns what a server is given: its TLS and whether TLS is mandatory.
func (c *Cluster) serverTLS() (*tls.Config, bool) {
	if c.opts.TLS == nil {
		return nil, false
	}
	return c.opts.TLS.Server, c.opts.TLS.Mandatory
}
