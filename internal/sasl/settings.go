package sasl

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gopegasus/pegasus/internal/config"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// Settings are a server's client authentication settings, section [security], with
// Pegasus's names.
type Settings struct {
	// EnableAuth turns client authentication on (enable_auth, default false: every
	// negotiation is answered SASL_AUTH_DISABLE).
	EnableAuth *config.Value[bool]
	// MandatoryAuth refuses the requests of connections that have not authenticated
	// (mandatory_auth, default false; mutable, as in Pegasus).
	MandatoryAuth *config.Value[bool]
	// Keytab and Principal: the server's keytab file and service principal
	// (krb5_keytab, krb5_principal), required with enable_auth.
	Keytab, Principal *config.Value[string]
	// Krb5Config is Pegasus's krb5_config; accepted, unused: a server never talks to the
	// KDC (it verifies tickets with its keytab, and its peers with the cluster secret).
	Krb5Config *config.Value[string]
}

// NewSettings registers the settings in reg.
func NewSettings(reg *config.Registry) *Settings {
	str := func(name, desc string) *config.Value[string] {
		return config.Define(reg, config.Spec[string]{Section: "security", Name: name, Description: desc})
	}
	return &Settings{
		EnableAuth: config.Define(reg, config.Spec[bool]{Section: "security", Name: "enable_auth",
			Description: "Whether clients may authenticate with Kerberos (SASL GSSAPI through RPC_NEGOTIATION); off, every negotiation is answered SASL_AUTH_DISABLE."}),
		MandatoryAuth: config.Define(reg, config.Spec[bool]{Section: "security", Name: "mandatory_auth", Mutable: true,
			Description: "With enable_auth, refuse (ERR_UNAUTHENTICATED) the requests of client connections that have not authenticated."}),
		Keytab:     str("krb5_keytab", "The keytab file holding the key of krb5_principal (required with enable_auth)."),
		Principal:  str("krb5_principal", "The server's Kerberos service principal, service/host@REALM, clients get tickets for (required with enable_auth)."),
		Krb5Config: str("krb5_config", "Pegasus's krb5.conf path; accepted and unused (servers verify tickets with their keytab and never contact the KDC)."),
	}
}

// Server returns the authenticator the settings describe, or nil when enable_auth is off.
// It reads the keytab.
func (s *Settings) Server(lg *slog.Logger) (*Server, error) {
	if s == nil || !s.EnableAuth.Get() {
		return nil, nil
	}
	path, principal := s.Keytab.Get(), s.Principal.Get()
	if path == "" || principal == "" {
		return nil, errors.New("sasl: enable_auth needs krb5_keytab and krb5_principal")
	}
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, fmt.Errorf("sasl: keytab %s: %w", path, err)
	}
	return NewServer(ServerConfig{Keytab: kt, Principal: principal, Mandatory: s.MandatoryAuth.Get, Logger: lg})
}

// Authenticator returns override when it is set, else the settings' [Settings.Server] as
// an rpc.Authenticator: nil (no authentication) when enable_auth is off.
func (s *Settings) Authenticator(override rpc.Authenticator, lg *slog.Logger) (rpc.Authenticator, error) {
	if override != nil {
		return override, nil
	}
	srv, err := s.Server(lg)
	if err != nil || srv == nil {
		return nil, err
	}
	return srv, nil
}
