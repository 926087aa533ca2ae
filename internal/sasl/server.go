package sasl

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// Mechanism is the only SASL mechanism offered and spoken, as in Pegasus.
const Mechanism = "GSSAPI"

// DefaultMaxClockSkew bounds the difference between a client's clock and the server's
// (Kerberos's usual 5 minutes).
const DefaultMaxClockSkew = 5 * time.Minute

// ServerConfig configures a [Server].
type ServerConfig struct {
	// Keytab holds the key of Principal (required).
	Keytab *keytab.Keytab
	// Principal is the server's service principal, "service/host@REALM" (required):
	// clients must present a ticket for it.
	Principal string
	// Mandatory reports whether connections that have not authenticated are refused
	// (setting mandatory_auth, read on every request; nil: false).
	Mandatory func() bool
	// MaxClockSkew bounds client clock differences (default DefaultMaxClockSkew).
	MaxClockSkew time.Duration
	// Logger receives failed negotiations, at info (default: discard).
	Logger *slog.Logger
}

// Server authenticates the clients of an rpc.Server with Kerberos: it is the server side of
// RPC_NEGOTIATION (an [rpc.Authenticator]). Safe for concurrent use.
type Server struct {
	cfg   ServerConfig
	lg    *slog.Logger
	sname types.PrincipalName
	realm string

	replays replayCache
	ok      atomic.Int64
	failed  atomic.Int64
}

var _ rpc.Authenticator = (*Server)(nil)

// NewServer returns a Server for cfg. It fails when the keytab holds no key of the principal.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Keytab == nil || cfg.Principal == "" {
		return nil, errors.New("sasl: a server needs a keytab and its principal")
	}
	name, realm, _ := strings.Cut(cfg.Principal, "@")
	if realm == "" {
		return nil, fmt.Errorf("sasl: principal %q: want service/host@REALM", cfg.Principal)
	}
	sname := types.NewPrincipalName(2, name) // KRB_NT_SRV_INST
	if !hasPrincipal(cfg.Keytab, sname, realm) {
		return nil, fmt.Errorf("sasl: the keytab holds no key of %s", cfg.Principal)
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = DefaultMaxClockSkew
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, lg: lg, sname: sname, realm: realm, replays: replayCache{seen: map[string]time.Time{}}}, nil
}

// hasPrincipal reports whether kt has any entry of name@realm.
func hasPrincipal(kt *keytab.Keytab, name types.PrincipalName, realm string) bool {
	for _, e := range kt.Entries {
		if e.Principal.Realm == realm && strings.Join(e.Principal.Components, "/") == name.PrincipalNameString() {
			return true
		}
	}
	return false
}

// Mandatory implements [rpc.Authenticator].
func (s *Server) Mandatory() bool { return s.cfg.Mandatory != nil && s.cfg.Mandatory() }

// Stats returns how many negotiations succeeded and failed.
func (s *Server) Stats() (succeeded, failed int64) { return s.ok.Load(), s.failed.Load() }

// NewNegotiation implements [rpc.Authenticator].
func (s *Server) NewNegotiation(remote net.Addr) rpc.Negotiation {
	return &negotiation{s: s, remote: remote, state: idl.NegotiationSASLListMechanisms}
}

// negotiation is the server side of one connection's negotiation. Its steps come one at a
// time, from the connection's reader.
type negotiation struct {
	s      *Server
	remote net.Addr
	// state is the request status expected next; NegotiationSASLSucc once done,
	// NegotiationSASLAuthFail once failed.
	state idl.NegotiationStatus
	// After the AP-REQ: the key of the wrap tokens, the authenticated user, and the
	// sequence number of the acceptor's tokens.
	key       types.EncryptionKey
	user      string
	principal string
	seq       uint64
	// awaitingEmpty: the AP-REP was sent, the initiator's empty answer comes next.
	awaitingEmpty bool
}

// Step implements [rpc.Negotiation].
func (n *negotiation) Step(req *idl.NegotiationRequest) (*idl.NegotiationResponse, string) {
	resp, err := n.step(req)
	if err != nil {
		n.state = idl.NegotiationSASLAuthFail
		n.s.failed.Add(1)
		n.s.lg.Info("client authentication failed", "remote", n.remote.String(), "err", err)
		return &idl.NegotiationResponse{Status: idl.NegotiationSASLAuthFail, Msg: []byte{}}, ""
	}
	if resp.Status == idl.NegotiationSASLSucc {
		n.s.ok.Add(1)
		n.s.lg.Debug("client authenticated", "remote", n.remote.String(), "user", n.user)
		return resp, n.user
	}
	return resp, ""
}

func (n *negotiation) step(req *idl.NegotiationRequest) (*idl.NegotiationResponse, error) {
	got := req.Status
	if got != n.state {
		return nil, fmt.Errorf("negotiation status %s while expecting %s", got, n.state)
	}
	switch got {
	case idl.NegotiationSASLListMechanisms:
		n.state = idl.NegotiationSASLSelectMechanisms
		return &idl.NegotiationResponse{Status: idl.NegotiationSASLListMechanismsResp, Msg: []byte(Mechanism)}, nil
	case idl.NegotiationSASLSelectMechanisms:
		if string(req.Msg) != Mechanism {
			return nil, fmt.Errorf("mechanism %q not supported (only %s)", req.Msg, Mechanism)
		}
		n.state = idl.NegotiationSASLInitiate
		return &idl.NegotiationResponse{Status: idl.NegotiationSASLSelectMechanismsResp, Msg: []byte{}}, nil
	case idl.NegotiationSASLInitiate:
		return n.initiate(req.Msg)
	case idl.NegotiationSASLChallengeResp:
		if n.awaitingEmpty {
			if len(req.Msg) != 0 {
				return nil, errors.New("unexpected token after the AP-REP")
			}
			n.awaitingEmpty = false
			return n.offerLayers()
		}
		return n.chooseLayer(req.Msg)
	}
	return nil, fmt.Errorf("negotiation status %s", got)
}

// initiate verifies the client's AP-REQ.
func (n *negotiation) initiate(msg []byte) (*idl.NegotiationResponse, error) {
	id, body, err := parseContextToken(msg)
	if err != nil {
		return nil, err
	}
	if id != tokAPReq {
		return nil, fmt.Errorf("context token %x, want an AP-REQ", id)
	}
	var tok messages.APReq
	if err := tok.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("AP-REQ: %w", err)
	}
	s := n.s
	ok, err := tok.Verify(s.cfg.Keytab, s.cfg.MaxClockSkew, types.HostAddress{}, &s.sname)
	if err != nil || !ok {
		return nil, fmt.Errorf("AP-REQ not valid: %v", err)
	}
	if tok.Ticket.Realm != s.realm || !tok.Ticket.SName.Equal(s.sname) {
		return nil, fmt.Errorf("ticket for %s@%s, not this server's %s", tok.Ticket.SName.PrincipalNameString(), tok.Ticket.Realm, s.cfg.Principal)
	}
	auth := tok.Authenticator
	if !s.replays.add(tok.Ticket.DecryptedEncPart.CName.PrincipalNameString()+"@"+tok.Ticket.DecryptedEncPart.CRealm, auth.CTime, auth.Cusec, s.cfg.MaxClockSkew) {
		return nil, errors.New("AP-REQ replayed")
	}
	flags, err := checksumFlags(auth.Cksum)
	if err != nil {
		return nil, err
	}
	enc := tok.Ticket.DecryptedEncPart
	n.key = enc.Key
	if auth.SubKey.KeyType != 0 && len(auth.SubKey.KeyValue) > 0 {
		n.key = auth.SubKey // RFC 4121 §2: the initiator's subkey, no acceptor subkey asserted
	}
	if !cfxEnctype(n.key.KeyType) {
		return nil, fmt.Errorf("enctype %d: only the AES (RFC 4121) enctypes are supported", n.key.KeyType)
	}
	n.principal = enc.CName.PrincipalNameString() + "@" + enc.CRealm
	n.user = UserName(enc.CName.PrincipalNameString(), enc.CRealm, s.realm)
	var sb [8]byte
	_, _ = rand.Read(sb[:])
	n.seq = uint64(binary.BigEndian.Uint32(sb[:4]) & 0x3fffffff)
	n.state = idl.NegotiationSASLChallengeResp
	if flags&gssFlagMutual != 0 {
		rep, err := marshalAPRep(enc.Key, auth, int64(n.seq))
		if err != nil {
			return nil, err
		}
		n.awaitingEmpty = true
		return &idl.NegotiationResponse{Status: idl.NegotiationSASLChallenge, Msg: rep}, nil
	}
	return n.offerLayers()
}

// offerLayers sends the security layers offered: none only.
func (n *negotiation) offerLayers() (*idl.NegotiationResponse, error) {
	tok, err := wrap(layerMessage(layerNone, ""), n.key, true, false, n.seq)
	if err != nil {
		return nil, err
	}
	n.seq++
	return &idl.NegotiationResponse{Status: idl.NegotiationSASLChallenge, Msg: tok}, nil
}

// chooseLayer checks the client's choice of layer and its authorization id.
func (n *negotiation) chooseLayer(msg []byte) (*idl.NegotiationResponse, error) {
	p, err := unwrap(msg, n.key, false)
	if err != nil {
		return nil, err
	}
	if len(p) < 4 {
		return nil, errors.New("security layer message too short")
	}
	if p[0] != layerNone {
		return nil, fmt.Errorf("security layer %#x chosen, only none (1) offered", p[0])
	}
	if authz := string(p[4:]); authz != "" && authz != n.user && authz != n.principal {
		return nil, fmt.Errorf("%s may not act as %q", n.principal, authz)
	}
	n.state = idl.NegotiationSASLSucc
	return &idl.NegotiationResponse{Status: idl.NegotiationSASLSucc, Msg: []byte{}}, nil
}

// UserName is the user a client principal authenticates as, the name super_users and
// allowed_users list: the principal's name without its realm when the realm is the
// server's ("alice", "etl/host1"), the whole principal otherwise ("bob@OTHER.REALM"), as
// Cyrus SASL's GSSAPI plugin names users in Pegasus.
func UserName(name, realm, serverRealm string) string {
	if realm == serverRealm {
		return name
	}
	return name + "@" + realm
}

// cfxEnctype reports whether the enctype has RFC 4121 tokens: the AES ones (17, 18, 19, 20).
func cfxEnctype(t int32) bool { return t >= 17 && t <= 20 }

// replayCache remembers the authenticators seen within the clock skew, so a recorded
// negotiation cannot be replayed.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time // client|ctime|cusec -> when it may be forgotten
}

// add records an authenticator and reports whether it is new.
func (c *replayCache) add(client string, ctime time.Time, cusec int, skew time.Duration) bool {
	k := fmt.Sprintf("%s|%d|%d", client, ctime.Unix(), cusec)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) >= 1024 {
		for k, until := range c.seen {
			if now.After(until) {
				delete(c.seen, k)
			}
		}
	}
	if until, ok := c.seen[k]; ok && now.Before(until) {
		return false
	}
	c.seen[k] = now.Add(2 * skew)
	return true
}
