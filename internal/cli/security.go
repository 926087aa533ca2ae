package cli

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// oneboxSecretFile is the onebox's cluster secret, in its data directory.
const oneboxSecretFile = "cluster_secret"

// securityFlags are the peer authentication flags of `pegasus meta` and `pegasus replica`,
// backed by the [security] settings of a config file.
type securityFlags struct {
	secretFile *string
	insecure   *bool
	setting    *config.Value[string]
}

func newSecurityFlags(fs *flag.FlagSet, reg *config.Registry) *securityFlags {
	return &securityFlags{
		secretFile: fs.String("cluster-secret-file", "", "file holding the cluster's secret (at least 16 bytes; every server of the cluster reads the same one): "+
			"the servers authenticate each other with it, and refuse internal requests from anyone else. Make one with: head -c 32 /dev/urandom | xxd -p -c 64 > FILE; chmod 600 FILE"),
		insecure: fs.Bool("insecure", false, "run without a cluster secret: anyone who reaches the port can act as a member of the cluster (send raft messages and snapshots, register replica servers, change the metas' group)"),
		setting: config.Define(reg, config.Spec[string]{Section: "security", Name: "cluster_secret_file",
			Description: "The file holding the cluster's secret, which the servers authenticate each other with (--cluster-secret-file)."}),
	}
}

// secret returns the cluster's secret from --cluster-secret-file or the config file. Without
// one it fails, unless --insecure was given: it then warns and returns nil.
func (f *securityFlags) secret(lg *slog.Logger) (*rpc.Secret, error) {
	path := *f.secretFile
	if path == "" {
		path = f.setting.Get()
	}
	if path != "" {
		if *f.insecure {
			return nil, fmt.Errorf("%w: --insecure and a cluster secret file (%s) both given", errUsage, path)
		}
		return readSecretFile(path, lg)
	}
	if !*f.insecure {
		return nil, fmt.Errorf("%w: a cluster needs a secret its servers authenticate each other with: "+
			"give --cluster-secret-file (or [security] cluster_secret_file), the same file on every server; "+
			"or --insecure to run without one (anyone who reaches a port can then act as a member)", errUsage)
	}
	lg.Warn("running without a cluster secret (--insecure): anyone who reaches this server's port can act as a member of the cluster")
	return nil, nil
}

// readSecretFile reads a cluster secret: the file's content, surrounding whitespace
// trimmed. A file others can read is used, with a warning.
func readSecretFile(path string, lg *slog.Logger) (*rpc.Secret, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		lg.Warn("cluster secret file is readable by others; chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	s, err := rpc.NewSecret(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("cluster secret %s: %w", path, err)
	}
	return s, nil
}

// oneboxSecret returns the onebox's secret, from its data directory, made (mode 0600) on the
// first start.
func oneboxSecret(dir string, lg *slog.Logger) (*rpc.Secret, error) {
	path := filepath.Join(dir, oneboxSecretFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		_, werr := f.Write(append(rpc.GenerateSecret(), '\n'))
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("cluster secret: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	return readSecretFile(path, lg)
}

// kerberosFlags are the Kerberos credentials of the client commands (shell), as Pegasus's
// Java client takes them: a principal with a keytab, or a kinit credential cache.
type kerberosFlags struct {
	principal, keytab, ccache, conf, service, serviceHost *string
}

func newKerberosFlags(fs *flag.FlagSet) *kerberosFlags {
	return &kerberosFlags{
		principal: fs.String("krb5-principal", "", "authenticate with Kerberos as this principal (user@REALM), with --krb5-keytab; for clusters with [security] enable_auth"),
		keytab:    fs.String("krb5-keytab", "", "the keytab holding --krb5-principal's keys"),
		ccache:    fs.String("krb5-ccache", "", "authenticate with Kerberos with the ticket in this credential cache (kinit -c FILE), instead of a keytab"),
		conf:      fs.String("krb5-config", "", "the krb5.conf naming the KDC (default: $KRB5_CONFIG, else /etc/krb5.conf)"),
		service:   fs.String("krb5-service", "pegasus", "the service name of the servers' principals (service/host@REALM)"),
		serviceHost: fs.String("krb5-service-host", "", "the host of the servers' principal, one for the whole cluster "+
			"(default: each server's own address host, pegasus/<ip>)"),
	}
}

// config returns the Kerberos configuration the flags give, or nil when none is given.
func (f *kerberosFlags) config() (*pegasus.Kerberos, error) {
	if *f.keytab == "" && *f.ccache == "" {
		if *f.principal != "" {
			return nil, fmt.Errorf("%w: --krb5-principal needs --krb5-keytab (or give --krb5-ccache)", errUsage)
		}
		return nil, nil
	}
	return &pegasus.Kerberos{Principal: *f.principal, Keytab: *f.keytab, CCache: *f.ccache, Krb5Config: *f.conf,
		ServiceName: *f.service, ServiceHost: *f.serviceHost}, nil
}

// authFlags are the client authentication and access control flags of `pegasus meta` and
// `pegasus replica`: each sets the [security] setting of its name (flags given win over
// --config).
var authFlags = []struct{ flag, setting, help string }{
	{"enable-auth", "enable_auth", "let clients authenticate with Kerberos (SASL GSSAPI); needs --krb5-keytab and --krb5-principal ([security] enable_auth)"},
	{"mandatory-auth", "mandatory_auth", "refuse (ERR_UNAUTHENTICATED) the requests of clients that did not authenticate ([security] mandatory_auth)"},
	{"krb5-keytab", "krb5_keytab", "the server's keytab, holding --krb5-principal's key ([security] krb5_keytab)"},
	{"krb5-principal", "krb5_principal", "the server's Kerberos principal, service/host@REALM, e.g. pegasus/10.0.0.1@EXAMPLE.COM ([security] krb5_principal)"},
	{"enable-acl", "enable_acl", "access control: only --super-users may do everything ([security] enable_acl)"},
	{"super-users", "super_users", "users allowed everything with --enable-acl, comma separated ([security] super_users)"},
	{"meta-acl-rpc-allow-list", "meta_acl_rpc_allow_list", "meta RPCs every user may call with --enable-acl, comma separated ([security] meta_acl_rpc_allow_list)"},
	{"super-user-token-file", "super_user_token_file", "a file holding the token (at least 16 bytes) that makes an HTTP request a super user's: Authorization: Bearer <token> ([security] super_user_token_file)"},
}

// addAuthFlags registers authFlags on fs; the returned function applies the ones given to
// reg, after the configuration file is loaded.
func addAuthFlags(fs *flag.FlagSet) func(reg *config.Registry) error {
	for _, a := range authFlags {
		if strings.HasPrefix(a.flag, "enable-") || a.flag == "mandatory-auth" {
			fs.Bool(a.flag, false, a.help)
		} else {
			fs.String(a.flag, "", a.help)
		}
	}
	return func(reg *config.Registry) error {
		var err error
		fs.Visit(func(f *flag.Flag) {
			for _, a := range authFlags {
				if a.flag == f.Name && err == nil {
					if e := reg.Set(a.setting, f.Value.String()); e != nil {
						err = fmt.Errorf("%w: --%s: %v", errUsage, f.Name, e)
					}
				}
			}
		})
		return err
	}
}

// serverSecurity are every security flag of `pegasus meta` and `pegasus replica`: the
// cluster secret, TLS on the client port and to follower clusters, and client
// authentication and ACLs.
type serverSecurity struct {
	peer      *securityFlags
	tls       *tlsFlags
	dupTLS    *dupTLSFlags
	applyAuth func(reg *config.Registry) error
}

func newServerSecurity(fs *flag.FlagSet, reg *config.Registry) serverSecurity {
	return serverSecurity{peer: newSecurityFlags(fs, reg), tls: newTLSFlags(fs, reg), dupTLS: newDupTLSFlags(fs, reg), applyAuth: addAuthFlags(fs)}
}

// resolvedSecurity is what [serverSecurity.resolve] gives a server.
type resolvedSecurity struct {
	secret       *rpc.Secret
	tls          *tls.Config // the client port's; nil: plaintext only
	mandatoryTLS bool
	dupTLS       *tls.Config // to the follower clusters; nil: plaintext
}

// resolve, once the flags are parsed and the config file loaded into reg, applies the
// authentication flags to reg and returns the cluster secret, the client port's TLS and
// the TLS to follower clusters.
func (s serverSecurity) resolve(reg *config.Registry, lg *slog.Logger) (r resolvedSecurity, err error) {
	if err = s.applyAuth(reg); err != nil {
		return r, err
	}
	if r.secret, err = s.peer.secret(lg); err != nil {
		return r, err
	}
	if r.tls, r.mandatoryTLS, err = s.tls.config(r.secret, lg); err != nil {
		return r, err
	}
	r.dupTLS, err = s.dupTLS.config(lg)
	return r, err
}
