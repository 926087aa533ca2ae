package sasl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The Kerberos V5 GSS-API mechanism (RFC 4121) as SASL GSSAPI (RFC 4752) carries it: the
// initiator's first token is an InitialContextToken holding an AP-REQ, the acceptor answers
// an AP-REP when mutual authentication was asked for, and the security layer is then agreed
// with one wrap token each way. Only what that exchange needs is here, and only the RFC 4121
// ("CFX") enctypes, the AES ones every current KDC issues by default; the security layer
// offered and accepted is "none" (Pegasus does not protect the traffic after the
// negotiation either).

// Token ids of the mechanism's context tokens (RFC 4121 §4.1).
var (
	tokAPReq = [2]byte{0x01, 0x00}
	tokAPRep = [2]byte{0x02, 0x00}
)

// The flags of a wrap token (RFC 4121 §4.2.2).
const (
	wrapSentByAcceptor = 0x01
	wrapSealed         = 0x02
	wrapAcceptorSubkey = 0x04
)

// The GSS checksum of an AP-REQ authenticator (RFC 4121 §4.1.1): its type, and the flags
// the initiator asks for.
const (
	gssChecksumType = 0x8003
	gssFlagMutual   = 0x02
	gssFlagInteg    = 0x20
)

// layerNone is the SASL GSSAPI security layer "no protection" (RFC 4752 §3.3).
const layerNone = 0x01

var errTokenTooShort = errors.New("sasl: token too short")

// contextToken frames a context token: the mechanism's OID, tokID, then body, in the
// [APPLICATION 0] wrapper of RFC 2743 §3.1.
func contextToken(tokID [2]byte, body []byte) ([]byte, error) {
	b, err := asn1.Marshal(gssapi.OIDKRB5.OID())
	if err != nil {
		return nil, err
	}
	b = append(b, tokID[:]...)
	b = append(b, body...)
	return asn1tools.AddASNAppTag(b, 0), nil
}

// parseContextToken returns the token id and body of a context token of the Kerberos
// mechanism.
func parseContextToken(b []byte) ([2]byte, []byte, error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.UnmarshalWithParams(b, &oid, "application,explicit,tag:0")
	if err != nil {
		return [2]byte{}, nil, fmt.Errorf("sasl: not a GSS-API context token: %w", err)
	}
	if !oid.Equal(gssapi.OIDKRB5.OID()) {
		return [2]byte{}, nil, fmt.Errorf("sasl: context token of mechanism %s, not Kerberos V5", oid)
	}
	if len(rest) < 2 {
		return [2]byte{}, nil, errTokenTooShort
	}
	return [2]byte{rest[0], rest[1]}, rest[2:], nil
}

// gssChecksum is the authenticator checksum an initiator sends: no channel bindings, and
// flags.
func gssChecksum(flags uint32) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:4], 16) // length of the (empty) channel bindings hash
	binary.LittleEndian.PutUint32(b[20:24], flags)
	return b
}

// checksumFlags returns the flags of an authenticator's GSS checksum.
func checksumFlags(c types.Checksum) (uint32, error) {
	if c.CksumType != gssChecksumType || len(c.Checksum) < 24 {
		return 0, errors.New("sasl: the authenticator has no GSS-API checksum")
	}
	return binary.LittleEndian.Uint32(c.Checksum[20:24]), nil
}

// marshalAPRep returns the AP-REP that answers an authenticator (its time echoed, so the
// initiator knows the acceptor could read it), encrypted in the ticket's session key.
func marshalAPRep(sessionKey types.EncryptionKey, auth types.Authenticator, seq int64) ([]byte, error) {
	part := messages.EncAPRepPart{CTime: auth.CTime.UTC().Truncate(time.Second), Cusec: auth.Cusec, SequenceNumber: seq}
	pb, err := asn1.Marshal(part)
	if err != nil {
		return nil, fmt.Errorf("sasl: marshal AP-REP: %w", err)
	}
	pb = asn1tools.AddASNAppTag(pb, asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(pb, sessionKey, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, fmt.Errorf("sasl: encrypt AP-REP: %w", err)
	}
	rep := messages.APRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed}
	rb, err := asn1.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("sasl: marshal AP-REP: %w", err)
	}
	return contextToken(tokAPRep, asn1tools.AddASNAppTag(rb, asnAppTag.APREP))
}

// wrap returns a wrap token without confidentiality carrying payload, from the acceptor
// or the initiator, protected with key (the acceptor's subkey when acceptorSubkey).
func wrap(payload []byte, key types.EncryptionKey, fromAcceptor, acceptorSubkey bool, seq uint64) ([]byte, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("sasl: wrap: %w", err)
	}
	var flags byte
	usage := uint32(keyusage.GSSAPI_INITIATOR_SEAL)
	if fromAcceptor {
		flags |= wrapSentByAcceptor
		usage = keyusage.GSSAPI_ACCEPTOR_SEAL
	}
	if acceptorSubkey {
		flags |= wrapAcceptorSubkey
	}
	wt := gssapi.WrapToken{Flags: flags, EC: uint16(et.GetHMACBitLength() / 8), SndSeqNum: seq, Payload: payload}
	if err := wt.SetCheckSum(key, usage); err != nil {
		return nil, fmt.Errorf("sasl: wrap: %w", err)
	}
	return wt.Marshal()
}

// unwrap checks a wrap token without confidentiality from the other side (the acceptor's
// when fromAcceptor) and returns its payload. A token rotated by its sender (RRC, RFC 4121
// §4.2.5) is turned back first.
func unwrap(tok []byte, key types.EncryptionKey, fromAcceptor bool) ([]byte, error) {
	if len(tok) < gssapi.HdrLen {
		return nil, errTokenTooShort
	}
	b := append([]byte(nil), tok...)
	if rrc := int(binary.BigEndian.Uint16(b[6:8])); rrc != 0 {
		body := b[gssapi.HdrLen:]
		if len(body) > 0 {
			rrc %= len(body)
			rotated := append(append([]byte(nil), body[rrc:]...), body[:rrc]...)
			copy(body, rotated)
		}
		b[6], b[7] = 0, 0
	}
	var wt gssapi.WrapToken
	if err := wt.Unmarshal(b, fromAcceptor); err != nil {
		return nil, fmt.Errorf("sasl: wrap token: %w", err)
	}
	if wt.Flags&wrapSealed != 0 {
		return nil, errors.New("sasl: sealed wrap tokens are not supported (the security layer is none)")
	}
	usage := uint32(keyusage.GSSAPI_INITIATOR_SEAL)
	if fromAcceptor {
		usage = keyusage.GSSAPI_ACCEPTOR_SEAL
	}
	if ok, err := wt.Verify(key, usage); !ok {
		return nil, fmt.Errorf("sasl: wrap token: %w", err)
	}
	return wt.Payload, nil
}

// layerMessage is the 4-byte security layer message: the layers (a bit mask) and the
// largest message the sender takes (0: no layer), then an authorization id.
func layerMessage(layers byte, authzID string) []byte {
	return append([]byte{layers, 0, 0, 0}, authzID...)
}
