package replica

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// forwardCallTimeout bounds the call that carries a forwarded request to the leader (the
// handler's own context has no deadline: clients' timeouts are not trusted, protocol.md
// §1.3). A client that gives up earlier sees its own timeout, as it would without the hop.
const forwardCallTimeout = 10 * time.Second

// forwardCounters count what the server did with the requests for partitions it did not
// lead (metrics.go); every field is updated atomically.
type forwardCounters struct {
	forwarded atomic.Int64
	held      atomic.Int64
	failed    atomic.Int64
	// split counts the requests sent on to the partition a split moved their key to
	// (splitforward.go).
	split atomic.Int64
	// toAncestor counts the requests addressed to a split child not hosted here, served by
	// its ancestor here (splitforward.go, toAncestor).
	toAncestor atomic.Int64
}

// forwarding wraps the handler of a client RPC (already counted, see metrics.go) with the
// hold and the forward of doc.go, "Leadership changes": a request for a partition hosted
// here that this replica cannot serve because it does not lead (or hands its leadership
// over) goes to the leader, and its answer is relayed. Only ERR_INVALID_STATE is acted on:
// the handlers answer it only for a request that had no effect here, so sending it on
// cannot apply a write twice. A split's refusal of a request's key sends it on to the
// partition that owns the key now (splitforward.go).
func (s *Server) forwarding(name string, h rpc.HandlerFunc) rpc.HandlerFunc {
	// A scan continues a context that lives where get_scanner ran: here first.
	localFirst := name == idl.RPCScan || name == idl.RPCClearScanner
	return func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		p := s.partition(idl.GPID{AppID: req.Header.AppID, PartitionIndex: req.Header.PartitionIndex})
		var v idl.Value
		var code wire.Code
		forwarded := false
		if p != nil && !localFirst {
			if l := p.leadership(); l.lead != 0 && l.lead != p.id && !p.isLeader.Load() {
				// A client that has not seen the change: straight to the leader.
				forwarded = true
				v, code = s.forward(ctx, p, req, h)
			}
		}
		if !forwarded {
			v, code = h(ctx, req)
		}
		if p == nil {
			return v, code
		}
		if code == wire.ErrInvalidState && !forwarded {
			v, code = s.forward(ctx, p, req, h)
		}
		if splitRefused(code) {
			// A key a split moved to another partition (the refusal had no effect).
			return s.forwardSplit(ctx, p, req, code)
		}
		return v, code
	}
}

// forward serves req, which this replica of p could not serve, at p's leader: at once when
// the leader is known, otherwise once it is, waiting for at most leader_change_hold_ms and
// the request's timeout. When this replica leads again (a handover that failed) it serves
// req itself. A refusal by the member taken for the leader (it lost its leadership
// meanwhile) waits for the next leader as well. Past the hold, the answer is
// ERR_INVALID_STATE, as without forwarding.
func (s *Server) forward(ctx context.Context, p *partition, req *rpc.Request, local rpc.HandlerFunc) (idl.Value, wire.Code) {
	hold := time.Duration(s.settings.LeaderChangeHoldMS.Get()) * time.Millisecond
	if t := time.Duration(req.Header.ClientTimeout) * time.Millisecond; t > 0 {
		hold = min(hold, t)
	}
	if hold <= 0 {
		return nil, wire.ErrInvalidState
	}
	timer := time.NewTimer(hold)
	defer timer.Stop()
	held := false
	for {
		v := p.leadership()
		switch {
		case v.lead == p.id && !v.handing:
			if reply, code := local(ctx, req); code != wire.ErrInvalidState {
				return reply, code
			}
		case v.lead != 0 && v.lead != p.id:
			if addr := p.addressOf(v.lead); addr != "" {
				reply, code, again := s.forwardTo(ctx, addr, req)
				if !again {
					return reply, code
				}
			}
		}
		if !held {
			held = true
			s.forwards.held.Add(1)
		}
		select {
		case <-v.changed:
		case <-timer.C:
			s.forwards.failed.Add(1)
			return nil, wire.ErrInvalidState
		case <-p.done:
			return nil, wire.ErrInvalidState
		case <-ctx.Done():
			return nil, wire.ErrTimeout
		}
	}
}

// forwardTo sends req to the replica server at addr and returns its answer. again is set
// when req certainly had no effect there and may be sent again once another leader is known:
// the server could not be reached, or refused it with ERR_INVALID_STATE (it does not lead
// the partition either). A call that failed after the request may have left gets
// ERR_TIMEOUT, the answer clients give an unknown outcome.
func (s *Server) forwardTo(ctx context.Context, addr string, req *rpc.Request) (reply idl.Value, code wire.Code, again bool) {
	desc, ok := idl.LookupRPC(req.Name)
	conn, err := s.peers.Get(addr)
	if !ok || err != nil {
		return nil, wire.ErrInvalidState, false
	}
	if desc.NewReply != nil {
		reply = desc.NewReply()
	} else {
		reply = new(idl.Blob) // one-way (clear_scanner): the answer is only a code
	}
	// The client gives up after its timeout: the call to the leader is bounded by it, so
	// that the client gets an answer (ERR_TIMEOUT, on which it refreshes its configuration)
	// rather than its own timeout while this server still waits.
	if t := time.Duration(req.Header.ClientTimeout) * time.Millisecond; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	args := idl.Blob(appendForwarded(nil, req))
	h := wire.Header{AppID: req.Header.AppID, PartitionIndex: req.Header.PartitionIndex,
		ThreadHash: req.Header.ThreadHash, PartitionHash: req.Header.PartitionHash}
	err = conn.Call(ctx, h, idl.RPCForward, &args, reply)
	if err == nil {
		s.forwards.forwarded.Add(1)
		return reply, wire.OK, false
	}
	if isDialError(err) {
		return nil, wire.ErrInvalidState, true
	}
	if c, ok := wire.AsCode(err); ok {
		switch c {
		case wire.ErrInvalidState:
			return nil, c, true
		case wire.ErrHandlerNotFound:
			// A server that does not take forwarded requests: the client must find the
			// leader itself.
			return nil, wire.ErrInvalidState, false
		}
		s.forwards.forwarded.Add(1)
		return nil, c, false
	}
	return nil, wire.ErrTimeout, false
}

// isDialError reports whether err is a failure to connect: the request was never sent.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// serveForwarded serves RPC_GP_FORWARD: a request another replica server forwarded here,
// answered as if its client had sent it here. It is not forwarded again for a leader change:
// a replica that does not lead answers ERR_INVALID_STATE and the forwarder looks for the
// leader; a key a split moved is sent on to its partition.
func (s *Server) serveForwarded(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	fr, err := decodeForwarded(*req.Args.(*idl.Blob))
	if err != nil {
		s.lg.Debug("bad forwarded request", "remote", req.Remote.String(), "err", err)
		return nil, wire.ErrInvalidParameters
	}
	h, ok := s.local[fr.name]
	desc, known := idl.LookupRPC(fr.name)
	if !ok || !known {
		return nil, wire.ErrHandlerNotFound
	}
	args := desc.NewRequest()
	if err := idl.Unmarshal(fr.args, args); err != nil {
		return nil, wire.ErrInvalidParameters
	}
	fwd := &rpc.Request{Header: fr.header, Name: fr.name, SeqID: req.SeqID, Args: args,
		Remote: req.Remote, BodySize: len(fr.args)}
	v, code := h(ctx, fwd)
	if splitRefused(code) {
		// Sent here by a split's forward, or by a leader change's to a partition split since:
		// on to the partition that owns the key now (splitforward.go).
		if p := s.partition(idl.GPID{AppID: fr.header.AppID, PartitionIndex: fr.header.PartitionIndex}); p != nil {
			return s.forwardSplitHops(ctx, p, fwd, code, splitHops-1)
		}
	}
	return v, code
}

// forwardedRequest is the blob RPC_GP_FORWARD carries, a thrift struct of its own:
//
//	1: string name            the client's RPC
//	2: i32    app_id          its header's routing fields
//	3: i32    partition_index
//	4: i32    thread_hash
//	5: i64    partition_hash
//	6: i32    client_timeout
//	7: bool   is_backup_request
//	8: binary args            its args, thrift encoded
type forwardedRequest struct {
	name   string
	header wire.Header
	args   []byte
}

// appendForwarded appends the encoding of req as a forwardedRequest to dst.
func appendForwarded(dst []byte, req *rpc.Request) []byte {
	e := idl.Encoder{Buf: dst}
	h := &req.Header
	e.FieldString(1, req.Name)
	e.FieldI32(2, h.AppID)
	e.FieldI32(3, h.PartitionIndex)
	e.FieldI32(4, h.ThreadHash)
	e.FieldI64(5, int64(h.PartitionHash))
	e.FieldI32(6, int32(h.ClientTimeout))
	e.FieldBool(7, h.IsBackupRequest)
	e.FieldBinary(8, idl.Marshal(req.Args))
	e.FieldStop()
	return e.Buf
}

// forwardedFields are the types of forwardedRequest's fields, by id.
var forwardedFields = [...]idl.Type{1: idl.TypeString, 2: idl.TypeI32, 3: idl.TypeI32, 4: idl.TypeI32,
	5: idl.TypeI64, 6: idl.TypeI32, 7: idl.TypeBool, 8: idl.TypeString}

// errBadForward is wrapped by decodeForwarded's errors.
var errBadForward = errors.New("replica: bad forwarded request")

// decodeForwarded decodes a forwardedRequest; its args alias b.
func decodeForwarded(b []byte) (forwardedRequest, error) {
	var fr forwardedRequest
	d := idl.NewDecoder(b)
	var haveName, haveArgs bool
	for d.Err() == nil {
		t, id := d.FieldBegin()
		if t == idl.TypeStop {
			break
		}
		if id < 1 || int(id) >= len(forwardedFields) || t != forwardedFields[id] {
			d.Skip(t)
			continue
		}
		switch id {
		case 1:
			fr.name, haveName = d.String(), true
		case 2:
			fr.header.AppID = d.I32()
		case 3:
			fr.header.PartitionIndex = d.I32()
		case 4:
			fr.header.ThreadHash = d.I32()
		case 5:
			fr.header.PartitionHash = uint64(d.I64())
		case 6:
			fr.header.ClientTimeout = uint32(d.I32())
		case 7:
			fr.header.IsBackupRequest = d.Bool()
		case 8:
			fr.args, haveArgs = d.Binary(), true
		}
	}
	if err := d.Err(); err != nil {
		return fr, fmt.Errorf("%w: %w", errBadForward, err)
	}
	if len(d.Remaining()) > 0 {
		return fr, fmt.Errorf("%w: trailing bytes", errBadForward)
	}
	if !haveName || !haveArgs {
		return fr, fmt.Errorf("%w: name or args missing", errBadForward)
	}
	return fr, nil
}
