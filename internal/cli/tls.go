package cli

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"

	"github.com/gopegasus/pegasus/internal/certs"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// tlsFlags are the flags of TLS on the client port of `pegasus meta` and `pegasus
// replica`, etcd's names, each backed by a [security] setting of a config file (a flag
// given wins).
type tlsFlags struct {
	certFile, keyFile, caFile *string
	clientCertAuth, mandatory *bool

	sCert, sKey, sCA        *config.Value[string]
	sClientAuth, sMandatory *config.Value[bool]
}

func newTLSFlags(fs *flag.FlagSet, reg *config.Registry) *tlsFlags {
	return &tlsFlags{
		certFile:       fs.String("cert-file", "", "the server's TLS certificate (PEM): clients may then connect with TLS on the same port (thrift and https://); it must name the address clients dial (an IP SAN for ip:port)"),
		keyFile:        fs.String("key-file", "", "the key of --cert-file (PEM)"),
		caFile:         fs.String("trusted-ca-file", "", "CA certificates (PEM) client certificates are verified against: a client presenting one that does not verify is refused, a verified one's subject CN is the client's user"),
		clientCertAuth: fs.Bool("client-cert-auth", false, "refuse TLS clients without a client certificate verified against --trusted-ca-file"),
		mandatory:      fs.Bool("mandatory-tls", false, "refuse plaintext thrift and HTTP from clients (the official Pegasus clients cannot do TLS); the servers' own traffic keeps its cluster-secret authentication"),

		sCert: config.Define(reg, config.Spec[string]{Section: "security", Name: "cert_file",
			Description: "The server's TLS certificate for the client port (--cert-file)."}),
		sKey: config.Define(reg, config.Spec[string]{Section: "security", Name: "key_file",
			Description: "The key of cert_file (--key-file)."}),
		sCA: config.Define(reg, config.Spec[string]{Section: "security", Name: "trusted_ca_file",
			Description: "The CA client certificates are verified against (--trusted-ca-file)."}),
		sClientAuth: config.Define(reg, config.Spec[bool]{Section: "security", Name: "client_cert_auth",
			Description: "Refuse TLS clients without a verified client certificate (--client-cert-auth)."}),
		sMandatory: config.Define(reg, config.Spec[bool]{Section: "security", Name: "mandatory_tls",
			Description: "Refuse plaintext thrift and HTTP from clients on the client port; peer traffic keeps its own authentication (--mandatory-tls)."}),
	}
}

func orSetting(flagValue string, v *config.Value[string]) string {
	if flagValue != "" {
		return flagValue
	}
	return v.Get()
}

// config returns the server's TLS configuration (nil: plaintext only) and whether TLS
// is mandatory. Mandatory TLS needs a certificate and a cluster secret: without a
// secret the servers' traffic to each other is plaintext that is not a peer's, and
// would be refused.
func (f *tlsFlags) config(secret *rpc.Secret, lg *slog.Logger) (*tls.Config, bool, error) {
	cert, key, ca := orSetting(*f.certFile, f.sCert), orSetting(*f.keyFile, f.sKey), orSetting(*f.caFile, f.sCA)
	clientAuth := *f.clientCertAuth || f.sClientAuth.Get()
	mandatory := *f.mandatory || f.sMandatory.Get()
	if cert == "" && key == "" {
		switch {
		case ca != "" || clientAuth:
			return nil, false, fmt.Errorf("%w: --trusted-ca-file and --client-cert-auth need --cert-file and --key-file", errUsage)
		case mandatory:
			return nil, false, fmt.Errorf("%w: mandatory TLS needs --cert-file and --key-file", errUsage)
		}
		return nil, false, nil
	}
	if mandatory && secret == nil {
		return nil, false, fmt.Errorf("%w: mandatory TLS needs a cluster secret (the servers' own traffic authenticates with it instead of TLS)", errUsage)
	}
	cfg, err := certs.ServerConfig(cert, key, ca, clientAuth)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", errUsage, err)
	}
	lg.Info("tls on the client port", "cert", cert, "client_ca", ca, "client_cert_auth", clientAuth, "mandatory", mandatory)
	return cfg, mandatory, nil
}

// dupTLSFlags are the TLS of a server's connections to its duplications' follower
// clusters (the meta leader's to their metas, the shippers' to their metas and replica
// servers), each flag backed by a [replication] setting of a config file (a flag given
// wins).
type dupTLSFlags struct {
	on                *bool
	caFile, cert, key *string

	sOn              *config.Value[bool]
	sCA, sCert, sKey *config.Value[string]
}

func newDupTLSFlags(fs *flag.FlagSet, reg *config.Registry) *dupTLSFlags {
	return &dupTLSFlags{
		on:     fs.Bool("dup-tls", false, "connect to the follower clusters of duplications with TLS (needed when they have mandatory TLS); without --dup-ca-file the system's roots verify them"),
		caFile: fs.String("dup-ca-file", "", "the CA (PEM) the follower clusters' certificates are verified against"),
		cert:   fs.String("dup-cert-file", "", "the client certificate (PEM) presented to the follower clusters: its subject CN is the user they see"),
		key:    fs.String("dup-key-file", "", "the key of --dup-cert-file (PEM)"),

		sOn: config.Define(reg, config.Spec[bool]{Section: "replication", Name: "dup_tls",
			Description: "Connect to the duplications' follower clusters with TLS (--dup-tls)."}),
		sCA: config.Define(reg, config.Spec[string]{Section: "replication", Name: "dup_ca_file",
			Description: "The CA the follower clusters' certificates are verified against; empty: the system's roots (--dup-ca-file)."}),
		sCert: config.Define(reg, config.Spec[string]{Section: "replication", Name: "dup_cert_file",
			Description: "The client certificate presented to the follower clusters (--dup-cert-file)."}),
		sKey: config.Define(reg, config.Spec[string]{Section: "replication", Name: "dup_key_file",
			Description: "The key of dup_cert_file (--dup-key-file)."}),
	}
}

// config returns the TLS of the connections to follower clusters, nil for plaintext. The
// files need dup_tls: a CA or certificate alone does not turn TLS on, so that a server
// does not quietly change how it dials.
func (f *dupTLSFlags) config(lg *slog.Logger) (*tls.Config, error) {
	on := *f.on || f.sOn.Get()
	ca, cert, key := orSetting(*f.caFile, f.sCA), orSetting(*f.cert, f.sCert), orSetting(*f.key, f.sKey)
	if !on {
		if ca != "" || cert != "" || key != "" {
			return nil, fmt.Errorf("%w: dup_ca_file, dup_cert_file and dup_key_file (--dup-ca-file, --dup-cert-file, --dup-key-file) need dup_tls (--dup-tls)", errUsage)
		}
		return nil, nil
	}
	cfg, err := certs.ClientConfig(ca, cert, key)
	if err != nil {
		return nil, fmt.Errorf("%w: dup_tls: %v", errUsage, err)
	}
	lg.Info("tls to the duplications' follower clusters", "ca", ca, "cert", cert)
	return cfg, nil
}

// clientTLSFlags are the TLS flags of the shell and bench, etcdctl's names.
type clientTLSFlags struct {
	cacert, cert, key *string
	on                *bool
}

func newClientTLSFlags(fs *flag.FlagSet) *clientTLSFlags {
	return &clientTLSFlags{
		cacert: fs.String("cacert", "", "connect with TLS, verifying the servers' certificates against this CA (PEM); the onebox's is <data>/tls/ca.crt"),
		cert:   fs.String("cert", "", "connect with TLS, presenting this client certificate (PEM; its subject CN is the user the servers see)"),
		key:    fs.String("key", "", "the key of --cert (PEM)"),
		on:     fs.Bool("tls", false, "connect with TLS (implied by --cacert and --cert); without --cacert the system's roots verify the servers"),
	}
}

// config returns the client's TLS configuration, nil for plaintext.
func (f *clientTLSFlags) config() (*tls.Config, error) {
	if !*f.on && *f.cacert == "" && *f.cert == "" && *f.key == "" {
		return nil, nil
	}
	cfg, err := certs.ClientConfig(*f.cacert, *f.cert, *f.key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, nil
}
