package replica

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/storage"
	"github.com/gopegasus/pegasus/internal/wire"
)

func (s *Server) registerHandlers() {
	s.local = make(map[string]rpc.HandlerFunc)
	// Client operations are counted and timed where they are served; a request for a
	// partition this server does not lead is forwarded to the leader (forward.go).
	h := func(name string, serve rpc.HandlerFunc) {
		serve = s.counted(name, s.throttled(name, serve))
		s.local[name] = serve
		outer := s.checkACL(name, s.denying(name, s.forwarding(name, serve)))
		if _, keyed := s.keys[name]; keyed {
			outer = s.toAncestor(outer) // before the acl: it names the partition served
		}
		s.rpc.Handle(name, outer)
	}
	s.keys = map[string]requestKey{
		idl.RPCGet:          func(a idl.Value) ([]byte, keyCheck) { return *a.(*idl.Blob), encodedKey },
		idl.RPCTTL:          func(a idl.Value) ([]byte, keyCheck) { return *a.(*idl.Blob), encodedKey },
		idl.RPCSortKeyCount: func(a idl.Value) ([]byte, keyCheck) { return *a.(*idl.Blob), rawHashKey },
		idl.RPCMultiGet:     func(a idl.Value) ([]byte, keyCheck) { return a.(*idl.MultiGetRequest).HashKey, rawHashKey },
	}
	for name, w := range s.writeRPCs() {
		s.keys[name] = w.key
		h(name, s.writeHandler(w))
	}
	h(idl.RPCGet, s.handleGet)
	h(idl.RPCMultiGet, s.handleMultiGet)
	h(idl.RPCBatchGet, s.handleBatchGet)
	h(idl.RPCSortKeyCount, s.handleSortKeyCount)
	h(idl.RPCTTL, s.handleTTL)
	h(idl.RPCGetScanner, s.handleGetScanner)
	h(idl.RPCScan, s.handleScan)
	h(idl.RPCClearScanner, s.handleClearScanner)
	s.rpc.Handle(idl.RPCForward, s.serveForwarded)
	h(idl.RPCDuplicate, s.handleDuplicate)
	h(idl.RPCCLICall, s.cmds.Handler())
	s.rpc.Handle(idl.RPCDetectHotkey, s.handleDetectHotkey)
	// Raft messages of one peer arrive on one connection; handling them inline keeps their
	// order (out-of-order appends are rejected by raft and cost a probe round trip).
	s.rpc.HandleInline(idl.RPCRaft, s.transport.HandleRPC)
	// Only the cluster's replica servers send these: refused from anyone else when the
	// cluster has a secret.
	s.rpc.RequirePeer(idl.RPCRaft, idl.RPCForward)
}

// receiveRaft hands a message from another replica server to its partition; messages for
// partitions not here, or arriving faster than the partition handles them, are dropped
// (raft retries). A message for a partition not here is most often from a new group whose
// first member campaigns before this server heard of it: it asks the meta at once rather
// than at its next report, at most once per unknownSyncEvery.
func (s *Server) receiveRaft(from string, pid idl.GPID, m raftpb.Message) {
	if s.cutOff.Load() {
		return
	}
	if cluster.MemberID(from) != m.From {
		// Not the raft id of the address the frame comes from (authenticated, with a
		// secret): a member speaks for itself only.
		s.raftRefused.Add(1)
		return
	}
	s.live.noteHeard(from, time.Now().UnixNano())
	if pid == livenessGroup {
		return // a liveness ping: hearing it was all (quiesce.go)
	}
	p := s.partition(pid)
	if p == nil {
		now := time.Now().UnixNano()
		if last := s.unknownSync.Load(); now-last >= int64(unknownSyncEvery) && s.unknownSync.CompareAndSwap(last, now) {
			s.notifyMeta()
		}
		return
	}
	select {
	case p.recvC <- &m:
	default:
	}
}

// keyCheck says how a request's key ties it to a partition.
type keyCheck int

const (
	encodedKey keyCheck = iota // the key is an encoded key: hash its hash key (or sort key)
	rawHashKey                 // the key is a raw hash key
	noKey                      // no key: only the header's partition_hash is checked
)

// route finds the partition a request is for and checks that this replica may serve it: the
// envelope errors of protocol.md §3.2. The key (if any) must belong to the partition, and a
// non-zero header partition_hash must agree with it: a misrouted request is refused with
// ERR_PARENT_PARTITION_MISUSED (clients then refresh their routing table) rather than served
// from, or written into, the wrong partition; during a split, see [partition.owns].
func (s *Server) route(req *rpc.Request, k []byte, kc keyCheck) (*partition, wire.Code) {
	return s.routeTo(req, k, kc, true)
}

// routeTo is route; a request that needs no leader (a scan continuing a context, which
// lives where get_scanner ran) passes leader false.
func (s *Server) routeTo(req *rpc.Request, k []byte, kc keyCheck, leader bool) (*partition, wire.Code) {
	h := &req.Header
	if h.AppID <= 0 {
		return nil, wire.ErrHandlerNotFound
	}
	p := s.partition(idl.GPID{AppID: h.AppID, PartitionIndex: h.PartitionIndex})
	if p == nil {
		return nil, wire.ErrObjectNotFound
	}
	if leader && !p.isLeader.Load() {
		return nil, wire.ErrInvalidState
	}
	if code := p.owns(h, k, kc); code != wire.OK {
		return nil, code
	}
	return p, wire.OK
}

// owns checks that the request's key (or its header's partition_hash) belongs to this
// partition, by the larger of the table's partition count as the meta says it and the one
// the store owns by once a split cut over here (the meta may not know yet): ERR_SPLITTING
// or ERR_PARENT_PARTITION_MISUSED otherwise (split.go's splitRefusal).
func (p *partition) owns(h *wire.Header, k []byte, kc keyCheck) wire.Code {
	count := int(max(p.table().partitionCount, p.ownCount.Load()))
	if count <= 0 {
		return wire.OK
	}
	var hash uint64
	switch kc {
	case encodedKey:
		hv, err := key.HashEncoded(k)
		if err != nil {
			return wire.OK // malformed keys get the storage's InvalidArgument answer
		}
		hash = hv
	case rawHashKey:
		if len(k) == 0 {
			return wire.OK // an empty hash key hashes by sort key: nothing to check here
		}
		hash = key.Hash(k)
	case noKey:
		if h.PartitionHash != 0 && key.Partition(h.PartitionHash, count) != int(h.PartitionIndex) {
			return p.splitRefusal(h.PartitionHash)
		}
		return wire.OK
	}
	if h.PartitionHash != 0 && h.PartitionHash != hash {
		return wire.ErrParentPartitionMisused
	}
	if key.Partition(hash, count) != int(h.PartitionIndex) {
		return p.splitRefusal(hash)
	}
	return wire.OK
}

// write proposes one client write and waits for its result.
func (s *Server) write(ctx context.Context, req *rpc.Request, p *partition, kind writeKind) (writeResult, wire.Code) {
	if req.BodySize > MaxWriteSize {
		return writeResult{}, wire.ErrInvalidData
	}
	w := &write{kind: kind, data: idl.Marshal(req.Args), done: make(chan writeResult, 1)}
	if t := req.Header.ClientTimeout; t > 0 {
		w.deadline = time.Now().Add(time.Duration(t) * time.Millisecond)
	}
	r := p.propose(ctx, w)
	if r.err != nil {
		return r, codeOf(r.err)
	}
	return r, wire.OK
}

// codeOf maps a failed write or read to the envelope error a client reacts to correctly. A
// request racing the drop of its partition (or the server's stop) gets ERR_INVALID_STATE when
// the partition's loop stopped while it waited for it (a write's proposal, a read's barrier),
// and ERR_OBJECT_NOT_FOUND, as for a partition not hosted here, when the store was closed
// before the request read it: either way the client refreshes its routing.
func codeOf(err error) wire.Code {
	switch {
	case errors.Is(err, storage.ErrClosed):
		return wire.ErrObjectNotFound
	case errors.Is(err, errNotLeader), errors.Is(err, errStopped):
		return wire.ErrInvalidState
	case errors.Is(err, errBusy):
		return wire.ErrBusy
	case errors.Is(err, errDiskInsufficient):
		return wire.ErrDiskInsufficient
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, errOutcomeUnknown):
		return wire.ErrTimeout
	default:
		return wire.ErrLocalAppFailure
	}
}

// writeRPC describes one write RPC: what the request's key is, which write it proposes and
// how the apply result becomes the reply.
type writeRPC struct {
	kind    writeKind
	key     func(args idl.Value) ([]byte, keyCheck)
	respond func(p *partition, r writeResult) idl.Value
}

// writeHandler serves a write RPC: route it, propose it through raft, answer with the result
// of its apply.
func (s *Server) writeHandler(w writeRPC) rpc.HandlerFunc {
	return func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		k, kc := w.key(req.Args)
		p, code := s.route(req, k, kc)
		if code != wire.OK {
			return nil, code
		}
		if p.ingesting.Load() {
			return nil, wire.ErrOperationDisabled
		}
		if rpcOfKind(w.kind) == "" && p.table().duplicating() {
			// Decided at apply time, they cannot be replayed on a follower: a duplicated
			// table takes idempotent writes only (atomic_idempotent is not implemented).
			return nil, wire.ErrOperationDisabled
		}
		r, code := s.write(ctx, req, p, w.kind)
		if code != wire.OK {
			return nil, code
		}
		if r.res.Misrouted {
			// Accepted before a split's cut-over, applied after it: refused at apply by every
			// replica, so it had no effect anywhere.
			if code = p.owns(&req.Header, k, kc); code == wire.OK {
				code = wire.ErrParentPartitionMisused
			}
			return nil, code
		}
		return w.respond(p, r), wire.OK
	}
}

func (s *Server) writeRPCs() map[string]writeRPC {
	update := func(p *partition, r writeResult) idl.Value {
		return &idl.UpdateResponse{Error: int32(r.res.Error), AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex, Decree: r.decree, Server: s.addr}
	}
	cas := func(p *partition, r writeResult) *idl.CheckAndSetResponse {
		return &idl.CheckAndSetResponse{Error: int32(r.res.Error), CheckValueReturned: r.res.CheckValueReturned,
			CheckValueExist: r.res.CheckValueExist, CheckValue: r.res.CheckValue, AppID: p.pid.AppID,
			PartitionIndex: p.pid.PartitionIndex, Decree: r.decree, Server: s.addr}
	}
	return map[string]writeRPC{
		idl.RPCPut:      {kindPut, func(a idl.Value) ([]byte, keyCheck) { return a.(*idl.UpdateRequest).Key, encodedKey }, update},
		idl.RPCRemove:   {kindRemove, func(a idl.Value) ([]byte, keyCheck) { return *a.(*idl.Blob), encodedKey }, update},
		idl.RPCMultiPut: {kindMultiPut, func(a idl.Value) ([]byte, keyCheck) { return a.(*idl.MultiPutRequest).HashKey, rawHashKey }, update},
		idl.RPCMultiRemove: {kindMultiRemove, func(a idl.Value) ([]byte, keyCheck) { return a.(*idl.MultiRemoveRequest).HashKey, rawHashKey },
			func(p *partition, r writeResult) idl.Value {
				return &idl.MultiRemoveResponse{Error: int32(r.res.Error), Count: r.res.Count, AppID: p.pid.AppID,
					PartitionIndex: p.pid.PartitionIndex, Decree: r.decree, Server: s.addr}
			}},
		idl.RPCIncr: {kindIncr, func(a idl.Value) ([]byte, keyCheck) { return a.(*idl.IncrRequest).Key, encodedKey },
			func(p *partition, r writeResult) idl.Value {
				return &idl.IncrResponse{Error: int32(r.res.Error), NewValue: r.res.NewValue, AppID: p.pid.AppID,
					PartitionIndex: p.pid.PartitionIndex, Decree: r.decree, Server: s.addr}
			}},
		idl.RPCCheckAndSet: {kindCheckAndSet, func(a idl.Value) ([]byte, keyCheck) { return a.(*idl.CheckAndSetRequest).HashKey, rawHashKey },
			func(p *partition, r writeResult) idl.Value { return cas(p, r) }},
		idl.RPCCheckAndMutate: {kindCheckAndMutate, func(a idl.Value) ([]byte, keyCheck) { return a.(*idl.CheckAndMutateRequest).HashKey, rawHashKey },
			func(p *partition, r writeResult) idl.Value { return (*idl.CheckAndMutateResponse)(cas(p, r)) }},
	}
}

// read routes a read, waits for its linearizability barrier and returns the partition's
// store; call release when done with it (only when the code is OK).
func (s *Server) read(ctx context.Context, req *rpc.Request, k []byte, kc keyCheck) (p *partition, db *storage.DB, release func(), code wire.Code) {
	p, code = s.route(req, k, kc)
	if code != wire.OK {
		return nil, nil, nil, code
	}
	// Half the client's timeout: a read refused for it is tried once more here when the
	// replica still leads (forward.go), and the answer must reach the client in time.
	if err := p.readBarrier(ctx, time.Duration(req.Header.ClientTimeout)*time.Millisecond/2); err != nil {
		return nil, nil, nil, codeOf(err)
	}
	// A split's cut-over applied while the read waited: the child's half is no longer here.
	if code = p.owns(&req.Header, k, kc); code != wire.OK {
		return nil, nil, nil, code
	}
	db, release = p.readDB()
	return p, db, release, wire.OK
}

func (s *Server) handleGet(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	k := *req.Args.(*idl.Blob)
	p, db, release, code := s.read(ctx, req, k, encodedKey)
	if code != wire.OK {
		return nil, code
	}
	defer release()
	v, rc, err := db.Get(k)
	if err != nil {
		return nil, codeOf(err)
	}
	if readCounted(rc) {
		p.noteHotKey(idl.HotkeyRead, k, 1)
	}
	return &idl.ReadResponse{Error: int32(rc), Value: v, AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex, Server: s.addr}, wire.OK
}

func (s *Server) handleTTL(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	k := *req.Args.(*idl.Blob)
	p, db, release, code := s.read(ctx, req, k, encodedKey)
	if code != wire.OK {
		return nil, code
	}
	defer release()
	ttl, rc, err := db.TTL(k)
	if err != nil {
		return nil, codeOf(err)
	}
	if readCounted(rc) {
		p.noteHotKey(idl.HotkeyRead, k, 1)
	}
	return &idl.TTLResponse{Error: int32(rc), TTLSeconds: ttl, AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex, Server: s.addr}, wire.OK
}

func (s *Server) handleSortKeyCount(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	h := *req.Args.(*idl.Blob)
	p, db, release, code := s.read(ctx, req, h, rawHashKey)
	if code != wire.OK {
		return nil, code
	}
	defer release()
	n, rc, err := db.SortKeyCount(h)
	if err != nil {
		return nil, codeOf(err)
	}
	if readCounted(rc) {
		p.noteHot(idl.HotkeyRead, h, 1)
	}
	return &idl.CountResponse{Error: int32(rc), Count: n, AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex, Server: s.addr}, wire.OK
}

func (s *Server) handleMultiGet(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	a := req.Args.(*idl.MultiGetRequest)
	p, db, release, code := s.read(ctx, req, a.HashKey, rawHashKey)
	if code != wire.OK {
		return nil, code
	}
	defer release()
	res, err := db.MultiGet(&storage.MultiGetRequest{
		HashKey: a.HashKey, SortKeys: a.SortKeys, MaxKVCount: a.MaxKVCount, MaxKVSize: a.MaxKVSize,
		NoValue: a.NoValue, StartSortKey: a.StartSortKey, StopSortKey: a.StopSortKey,
		StartInclusive: a.StartInclusive, StopInclusive: a.StopInclusive,
		SortKeyFilterType: a.SortKeyFilterType, SortKeyFilter: a.SortKeyFilterPattern,
		Reverse: a.Reverse,
	})
	if err != nil {
		return nil, codeOf(err)
	}
	p.noteHot(idl.HotkeyRead, a.HashKey, int64(len(res.KVs)))
	return &idl.MultiGetResponse{Error: int32(res.Error), KVs: toIDLKVs(res.KVs, false), AppID: p.pid.AppID,
		PartitionIndex: p.pid.PartitionIndex, Server: s.addr}, wire.OK
}

func toIDLKVs(kvs []storage.KeyValue, withExpire bool) []idl.KeyValue {
	out := make([]idl.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = idl.KeyValue{Key: kv.Key, Value: kv.Value}
		if withExpire {
			out[i].ExpireTSSeconds = idl.Some(kv.ExpireTS)
		}
	}
	return out
}

func (s *Server) handleBatchGet(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	a := req.Args.(*idl.BatchGetRequest)
	// batch_get keys may span partitions (protocol.md §5.4): only the header is checked.
	p, db, release, code := s.read(ctx, req, nil, noKey)
	if code != wire.OK {
		return nil, code
	}
	defer release()
	keys := make([]storage.FullKey, len(a.Keys))
	for i, k := range a.Keys {
		keys[i] = storage.FullKey{HashKey: k.HashKey, SortKey: k.SortKey}
	}
	data, rc, err := db.BatchGet(keys)
	if errors.Is(err, storage.ErrReadTooLarge) {
		s.lg.Debug("batch_get refused", "err", err)
		return nil, wire.ErrInvalidData
	}
	if err != nil {
		return nil, codeOf(err)
	}
	out := make([]idl.FullData, len(data))
	for i, d := range data {
		out[i] = idl.FullData{HashKey: d.HashKey, SortKey: d.SortKey, Value: d.Value}
		p.noteHot(idl.HotkeyRead, d.HashKey, 1)
	}
	return &idl.BatchGetResponse{Error: int32(rc), Data: out, AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex, Server: s.addr}, wire.OK
}

// scanResponse converts a scan batch. kv_count and the per-record expire timestamps are
// optional wire fields, sent only when the scan asked for them.
func (s *Server) scanResponse(p *partition, r *storage.ScanResult, withExpire, withCount bool) *idl.ScanResponse {
	resp := &idl.ScanResponse{Error: int32(r.Error), KVs: toIDLKVs(r.KVs, withExpire), ContextID: r.ContextID,
		AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex, Server: s.addr}
	if withCount {
		resp.KVCount = idl.Some(r.KVCount)
	}
	return resp
}

func (s *Server) handleGetScanner(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	a := req.Args.(*idl.GetScannerRequest)
	p, db, release, code := s.read(ctx, req, nil, noKey)
	if code != wire.OK {
		return nil, code
	}
	defer release()
	res, err := db.GetScanner(&storage.GetScannerRequest{
		StartKey: a.StartKey, StopKey: a.StopKey, StartInclusive: a.StartInclusive, StopInclusive: a.StopInclusive,
		BatchSize: a.BatchSize, NoValue: a.NoValue,
		HashKeyFilterType: a.HashKeyFilterType, HashKeyFilter: a.HashKeyFilterPattern,
		SortKeyFilterType: a.SortKeyFilterType, SortKeyFilter: a.SortKeyFilterPattern,
		ValidatePartitionHash: a.ValidatePartitionHash.Or(true), ReturnExpireTS: a.ReturnExpireTS.Or(false),
		FullScan: a.FullScan.Or(false), OnlyReturnCount: a.OnlyReturnCount,
	})
	if err != nil {
		return nil, codeOf(err)
	}
	if res.ContextID > 0 {
		s.noteScanner(req.Remote, p.pid, res.ContextID)
	}
	return s.scanResponse(p, res, a.ReturnExpireTS.Or(false), a.OnlyReturnCount), wire.OK
}

// handleScan continues a scan. Its context holds an iterator over the store as of its
// get_scanner, which was linearizable; the replica that holds it continues it whether or not
// it still leads. A context unknown here may be the leader's (a get_scanner forwarded to it):
// a replica that does not lead answers ERR_INVALID_STATE, and the scan is forwarded there.
func (s *Server) handleScan(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	a := req.Args.(*idl.ScanRequest)
	p, code := s.routeTo(req, nil, noKey, false)
	if code != wire.OK {
		return nil, code
	}
	db, release := p.readDB()
	defer release()
	res, err := db.Scan(a.ContextID)
	if err != nil {
		return nil, codeOf(err)
	}
	s.scanOwners.replaced(req.Remote, scanRef{pid: p.pid, id: a.ContextID}, res.ContextID, time.Now())
	if res.Error == wire.StatusNotFound && !p.isLeader.Load() {
		return nil, wire.ErrInvalidState
	}
	return s.scanResponse(p, res, res.ReturnExpireTS, res.OnlyReturnCount), wire.OK
}

// handleClearScanner drops a scan context. The context may be the leader's (a get_scanner
// forwarded to it): a replica that does not lead has the request forwarded there too, where
// an unknown id is ignored. The client gets no answer either way.
func (s *Server) handleClearScanner(_ context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	p := s.partition(idl.GPID{AppID: req.Header.AppID, PartitionIndex: req.Header.PartitionIndex})
	if p == nil {
		return nil, wire.OK
	}
	db, release := p.readDB()
	db.ClearScanner(int64(*req.Args.(*idl.ContextID)))
	release()
	s.scanOwners.replaced(req.Remote, scanRef{pid: p.pid, id: int64(*req.Args.(*idl.ContextID))}, 0, time.Now())
	if !p.isLeader.Load() {
		return nil, wire.ErrInvalidState
	}
	return nil, wire.OK
}
