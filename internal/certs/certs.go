// Package certs makes and loads the X.509 certificates of TLS on the client port: a small
// certificate authority for tests and the onebox (ECDSA P-256, crypto/x509), and the
// tls.Config of a server or a client from PEM files, with etcd's meaning of the files.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority that issues server and client certificates. It is safe
// for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA's certificate, PEM encoded: what clients and servers trust.
	PEM []byte
}

// validity of what a CA issues (and of the CA): long enough for a onebox never to see
// its certificates expire.
const validity = 10 * 365 * 24 * time.Hour

// NewCA returns a new self-signed CA whose subject's common name is name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"gopegasus"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("certs: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Pool returns a pool holding only the CA's certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issued is a certificate a CA issued, with its key, both as tls wants them and PEM
// encoded (as files hold them).
type Issued struct {
	TLS             tls.Certificate
	CertPEM, KeyPEM []byte
}

// Server issues a server certificate for hosts (IP addresses and DNS names).
func (ca *CA) Server(cn string, hosts ...string) (*Issued, error) {
	return ca.issue(cn, hosts, x509.ExtKeyUsageServerAuth)
}

// Client issues a client certificate whose subject's common name, cn, is the identity
// servers see.
func (ca *CA) Client(cn string) (*Issued, error) {
	return ca.issue(cn, nil, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(cn string, hosts []string, usage x509.ExtKeyUsage) (*Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("certs: issue %q: %w", cn, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := &Issued{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	if out.TLS, err = tls.X509KeyPair(out.CertPEM, out.KeyPEM); err != nil {
		return nil, err
	}
	return out, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // never fails (crypto/rand)
	return n
}

// ServerConfig returns the TLS configuration of a server from PEM files, as etcd reads
// its flags: certFile and keyFile are the server's certificate and key (both required);
// caFile, if not empty, is the CA client certificates are verified against (a client
// that presents one that does not verify is refused); clientCertAuth also refuses
// clients without a certificate, and needs caFile.
func ServerConfig(certFile, keyFile, caFile string, clientCertAuth bool) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("certs: a server needs both a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch {
	case caFile != "":
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if clientCertAuth {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	case clientCertAuth:
		return nil, errors.New("certs: client certificate authentication needs a trusted CA file")
	}
	return cfg, nil
}

// ClientConfig returns the TLS configuration of a client from PEM files: caFile, if not
// empty, is the CA the servers' certificates are verified against (empty: the system's
// roots); certFile and keyFile, both or neither, are the client's certificate, its
// identity to the servers.
func ClientConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("certs: a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("certs: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("certs: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Files are the paths of a onebox's certificates (see [EnsureFiles]).
type Files struct {
	CA                    string // the CA's certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string // a client certificate, common name "onebox"
}

// FilesIn returns the paths of the certificates EnsureFiles keeps in dir.
func FilesIn(dir string) Files {
	return Files{
		CA:         filepath.Join(dir, "ca.crt"),
		ServerCert: filepath.Join(dir, "server.crt"),
		ServerKey:  filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"),
		ClientKey:  filepath.Join(dir, "client.key"),
	}
}

// EnsureFiles returns the certificates kept in dir, making them first when the CA's
// certificate is not there yet: a new CA, a server certificate for hosts, and a client
// certificate. Keys are written with mode 0600; the CA's key is not kept (nothing more
// is issued).
func EnsureFiles(dir string, hosts ...string) (Files, bool, error) {
	f := FilesIn(dir)
	if _, err := os.Stat(f.CA); err == nil {
		return f, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return f, false, fmt.Errorf("certs: %w", err)
	}
	ca, err := NewCA("gopegasus onebox CA")
	if err != nil {
		return f, false, err
	}
	srv, err := ca.Server("gopegasus onebox server", hosts...)
	if err != nil {
		return f, false, err
	}
	cli, err := ca.Client("onebox")
	if err != nil {
		return f, false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, false, fmt.Errorf("certs: %w", err)
	}
	// The CA's certificate is written last: its presence says the others are complete.
	for _, w := range []struct {
		path string
		b    []byte
		mode os.FileMode
	}{
		{f.ServerCert, srv.CertPEM, 0o644}, {f.ServerKey, srv.KeyPEM, 0o600},
		{f.ClientCert, cli.CertPEM, 0o644}, {f.ClientKey, cli.KeyPEM, 0o600},
		{f.CA, ca.PEM, 0o644},
	} {
		if err := writeFile(w.path, w.b, w.mode); err != nil {
			return f, false, err
		}
	}
	return f, true, nil
}

// writeFile writes b to path through a temporary file renamed into place.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
