package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Batch is one replicated log entry's worth of writes, applied atomically by [DB.Apply].
// Everything that influences the result travels in the batch, so every replica applying the
// same batch stores the same data and returns the same results.
type Batch struct {
	// Index is the log index of the entry. It must exceed [DB.LastAppliedIndex]; gaps are
	// allowed (log entries that carry no writes need not be applied).
	Index uint64
	// Time is the proposer's clock when the entry was proposed. It gives value timetags, and
	// the apply clock, max(Time, the apply clock of the previous batch), decides expiry
	// during the apply (an expired record counts as absent) and is the default TTL's base.
	Time time.Time
	// DefaultTTL is the table env default_ttl in seconds in force at proposal; values > 0
	// give every write with expire timestamp 0 the expiry Time + DefaultTTL.
	DefaultTTL int32
	// Mutations are applied in order; later ones see the effects of earlier ones.
	Mutations []Mutation
	// PartitionCount, when larger than the count the store owns by, records it as the new
	// one once the mutations are applied (a split's cut-over; see split.go).
	PartitionCount int32
}

// Mutation is one client write. Exactly one field must be set; otherwise its result is
// [wire.StatusInvalidArgument].
type Mutation struct {
	Put            *PutRequest
	Remove         *RemoveRequest
	MultiPut       *MultiPutRequest
	MultiRemove    *MultiRemoveRequest
	Incr           *IncrRequest
	CheckAndSet    *CheckAndSetRequest
	CheckAndMutate *CheckAndMutateRequest
	Duplicate      *DuplicateRequest
}

// DuplicateRequest applies writes duplicated from another cluster (wire duplicate_request),
// in order. Its result is the first failing write's code, StatusOK when none failed.
type DuplicateRequest struct {
	Writes []DuplicatedWrite
}

// DuplicatedWrite is one write of another cluster: Mutation holds a Put, Remove, MultiPut or
// MultiRemove (anything else is StatusInvalidArgument), whose values are stored with that
// cluster's Timetag instead of one of this batch's time. With VerifyTimetag set (and data
// version 1) a value is written only when Timetag exceeds the timetag of the live value the
// key holds: the last writer wins, so that two clusters duplicating to each other agree.
// Removes are applied unconditionally.
type DuplicatedWrite struct {
	Mutation      Mutation
	Timetag       uint64
	VerifyTimetag bool
}

// KeyValue is a record in requests and results. Which key form Key holds (sort key or
// encoded key) is documented where it is used. ExpireTS is an absolute expire timestamp in
// seconds since [EpochUnix], 0 meaning none.
type KeyValue struct {
	Key      []byte
	Value    []byte
	ExpireTS int32
}

// PutRequest stores Value at the encoded key Key (wire update_request).
type PutRequest struct {
	Key      []byte
	Value    []byte
	ExpireTS int32
}

// RemoveRequest deletes the encoded key Key (wire RPC_RRDB_RRDB_REMOVE).
type RemoveRequest struct {
	Key []byte
}

// MultiPutRequest stores every KeyValue (Key = sort key; its ExpireTS is ignored) under
// HashKey with the request's ExpireTS (wire multi_put_request).
type MultiPutRequest struct {
	HashKey  []byte
	KVs      []KeyValue
	ExpireTS int32
}

// MultiRemoveRequest deletes the sort keys under HashKey (wire multi_remove_request).
type MultiRemoveRequest struct {
	HashKey  []byte
	SortKeys [][]byte
}

// IncrRequest adds Increment to the integer stored at the encoded key Key (wire
// incr_request). ExpireTS > 0 sets that expiry, 0 keeps the current one, < 0 removes it.
type IncrRequest struct {
	Key       []byte
	Increment int64
	ExpireTS  int32
}

// CheckAndSetRequest writes SetValue if the check on (HashKey, CheckSortKey) passes (wire
// check_and_set_request).
type CheckAndSetRequest struct {
	HashKey          []byte
	CheckSortKey     []byte
	CheckType        idl.CASCheckType
	CheckOperand     []byte
	SetDiffSortKey   bool
	SetSortKey       []byte // used only if SetDiffSortKey
	SetValue         []byte
	SetExpireTS      int32
	ReturnCheckValue bool
}

// Mutate is one step of a check-and-mutate (wire mutate).
type Mutate struct {
	Op       idl.MutateOperation
	SortKey  []byte
	Value    []byte
	ExpireTS int32
}

// CheckAndMutateRequest applies Mutates atomically if the check on (HashKey, CheckSortKey)
// passes (wire check_and_mutate_request).
type CheckAndMutateRequest struct {
	HashKey          []byte
	CheckSortKey     []byte
	CheckType        idl.CASCheckType
	CheckOperand     []byte
	Mutates          []Mutate
	ReturnCheckValue bool
}

// WriteResult is the outcome of one [Mutation]. Error is a result code (Code*). Count is
// multi_remove's count; NewValue is incr's new value; the CheckValue fields are those of
// check-and-set and check-and-mutate.
type WriteResult struct {
	// Misrouted is set when the mutation's key belongs to another partition by the count
	// the store owns by (after a split): nothing of it was applied, and Error is
	// StatusInvalidArgument.
	Misrouted          bool
	Error              wire.Status
	Count              int64
	NewValue           int64
	CheckValueReturned bool
	CheckValueExist    bool
	CheckValue         []byte
}

// Apply applies a batch atomically together with its index: after a crash the database
// holds either all of the batch and LastAppliedIndex = b.Index, or none of it. Check-and-set,
// check-and-mutate and incr are decided here from the data as of the previous mutation.
// Apply does not read the local clock (see [Batch]). It returns one result per mutation; the
// error is non-nil only when storage fails (nothing is then applied) or for [ErrStaleIndex]
// and [ErrClosed]. The returned CheckValue slices are owned by the caller.
func (db *DB) Apply(b *Batch) ([]WriteResult, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.exit()
	if b == nil {
		return nil, errors.New("storage: nil batch")
	}
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if b.Index <= db.applied.Load() {
		return nil, fmt.Errorf("%w: %d <= %d", ErrStaleIndex, b.Index, db.applied.Load())
	}
	needRead := false
	for i := range b.Mutations {
		m := &b.Mutations[i]
		if m.Incr != nil || m.CheckAndSet != nil || m.CheckAndMutate != nil || m.Duplicate.verifies() {
			needRead = true
			break
		}
	}
	var wb *pebble.Batch
	if needRead {
		wb = db.pdb.NewIndexedBatch()
	} else {
		wb = db.pdb.NewBatch()
	}
	defer wb.Close()
	clock := max(db.applyClock, EpochNow(b.Time))
	a := applier{db: db, wb: wb, now: clock, defaultTTL: b.DefaultTTL}
	if us := b.Time.UnixMicro(); !b.Time.IsZero() && us > 0 {
		a.timestampUS = uint64(us) & (1<<56 - 1)
	}
	results := make([]WriteResult, len(b.Mutations))
	for i := range b.Mutations {
		if db.misrouted(&b.Mutations[i]) {
			results[i] = WriteResult{Misrouted: true, Error: wire.StatusInvalidArgument}
			continue
		}
		if err := a.apply(&b.Mutations[i], &results[i]); err != nil {
			return nil, fmt.Errorf("storage: apply index %d: %w", b.Index, err)
		}
	}
	old := db.owned.Load()
	if b.PartitionCount > old {
		db.owned.Store(b.PartitionCount) // before the record is written: it holds it
	}
	if err := wb.Set(metaAppliedKey, db.appendAppliedRecord(nil, b.Index, clock), nil); err != nil {
		db.owned.Store(old)
		return nil, fmt.Errorf("storage: apply index %d: %w", b.Index, err)
	}
	if err := wb.Commit(db.writeOp); err != nil {
		db.owned.Store(old)
		return nil, fmt.Errorf("storage: commit index %d: %w", b.Index, err)
	}
	db.committed()
	db.applied.Store(b.Index)
	db.applyClock = clock
	if db.owned.Load() != old {
		db.startPurgeLocked()
	}
	return results, nil
}

// applier carries the state of one Apply call.
type applier struct {
	db          *DB
	wb          *pebble.Batch
	now         uint32 // proposer's epoch second
	timestampUS uint64 // proposer's microseconds, for put/multi_put timetags
	defaultTTL  int32
	keyBuf      []byte
	// remote is the duplicated write being applied: its values take its timetag.
	remote *DuplicatedWrite
}

func (a *applier) apply(m *Mutation, r *WriteResult) error {
	n := 0
	for _, set := range []bool{m.Put != nil, m.Remove != nil, m.MultiPut != nil, m.MultiRemove != nil,
		m.Incr != nil, m.CheckAndSet != nil, m.CheckAndMutate != nil, m.Duplicate != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		r.Error = wire.StatusInvalidArgument
		return nil
	}
	switch {
	case m.Put != nil:
		return a.put(m.Put, r)
	case m.Remove != nil:
		if !validEncodedKey(m.Remove.Key) {
			r.Error = wire.StatusInvalidArgument
			return nil
		}
		return a.wb.Delete(m.Remove.Key, nil)
	case m.MultiPut != nil:
		return a.multiPut(m.MultiPut, r)
	case m.MultiRemove != nil:
		return a.multiRemove(m.MultiRemove, r)
	case m.Incr != nil:
		return a.incr(m.Incr, r)
	case m.CheckAndSet != nil:
		return a.checkAndSet(m.CheckAndSet, r)
	case m.Duplicate != nil:
		return a.duplicate(m.Duplicate, r)
	default:
		return a.checkAndMutate(m.CheckAndMutate, r)
	}
}

// verifies reports whether applying d reads what the keys hold (a write with VerifyTimetag).
func (d *DuplicateRequest) verifies() bool {
	if d == nil {
		return false
	}
	for i := range d.Writes {
		if d.Writes[i].VerifyTimetag {
			return true
		}
	}
	return false
}

func (a *applier) duplicate(d *DuplicateRequest, r *WriteResult) error {
	for i := range d.Writes {
		w := &d.Writes[i]
		m := &w.Mutation
		if m.Incr != nil || m.CheckAndSet != nil || m.CheckAndMutate != nil || m.Duplicate != nil {
			if r.Error == wire.StatusOK {
				r.Error = wire.StatusInvalidArgument
			}
			continue
		}
		var wr WriteResult
		a.remote = w
		err := a.apply(m, &wr)
		a.remote = nil
		if err != nil {
			return err
		}
		if r.Error == wire.StatusOK {
			r.Error = wr.Error
		}
	}
	return nil
}

// validEncodedKey reports whether k is a well-formed encoded key.
func validEncodedKey(k []byte) bool {
	_, _, err := key.Decode(k)
	return err == nil
}

// validHashKey reports whether a raw hash key can be encoded (protocol.md §5.1).
func validHashKey(h []byte) bool { return len(h) < key.MaxHashKeyLen }

// expireTS applies the default TTL to a requested expire timestamp.
func (a *applier) expireTS(req int32) uint32 {
	e := uint32(req)
	if e == 0 && a.defaultTTL > 0 {
		e = a.now + uint32(a.defaultTTL)
	}
	return e
}

// set stores user under k with the given expiry and timetag timestamp.
func (a *applier) set(k []byte, user []byte, expireTS uint32, timestampUS uint64) error {
	v := a.db.version
	timetag := makeTimetag(timestampUS, a.db.opts.ClusterID)
	if a.remote != nil {
		timetag = a.remote.Timetag
		if a.remote.VerifyTimetag && v != dataVersion0 {
			newer, err := a.newerThanStored(k, timetag)
			if err != nil || !newer {
				return err
			}
		}
	}
	op := a.wb.SetDeferred(len(k), headerLen(v)+len(user))
	copy(op.Key, k)
	putValue(op.Value, v, expireTS, timetag, user)
	return op.Finish()
}

// newerThanStored reports whether timetag exceeds the timetag of the live value at k (as of
// the batch so far); a missing or expired value is older than anything.
func (a *applier) newerThanStored(k []byte, timetag uint64) (bool, error) {
	raw, closer, err := a.wb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if len(raw) < headerLen(dataVersion1) {
		return false, fmt.Errorf("%w: value of %d bytes at key %x", ErrCorruption, len(raw), k)
	}
	if expired(binary.BigEndian.Uint32(raw), a.now) {
		return true, nil
	}
	return timetag > binary.BigEndian.Uint64(raw[4:]), nil
}

// read returns the live user value at k as of the batch so far; exists is false when the
// record is missing or expired at the proposer's time. The value is a private copy.
func (a *applier) read(k []byte) (user []byte, expireTS uint32, exists bool, err error) {
	raw, closer, err := a.wb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	defer closer.Close()
	e, u, ok := splitValue(a.db.version, raw)
	if !ok {
		return nil, 0, false, fmt.Errorf("%w: value of %d bytes at key %x", ErrCorruption, len(raw), k)
	}
	if expired(e, a.now) {
		return nil, 0, false, nil
	}
	return bytes.Clone(u), e, true, nil
}

// ErrCorruption is returned (wrapped) when a stored record cannot be decoded.
var ErrCorruption = errors.New("storage: corrupted record")

func (a *applier) put(p *PutRequest, r *WriteResult) error {
	if !validEncodedKey(p.Key) {
		r.Error = wire.StatusInvalidArgument
		return nil
	}
	return a.set(p.Key, p.Value, a.expireTS(p.ExpireTS), a.timestampUS)
}

func (a *applier) multiPut(p *MultiPutRequest, r *WriteResult) error {
	if len(p.KVs) == 0 || !validHashKey(p.HashKey) {
		r.Error = wire.StatusInvalidArgument
		return nil
	}
	e := a.expireTS(p.ExpireTS)
	for i := range p.KVs {
		a.keyBuf = key.Append(a.keyBuf[:0], p.HashKey, p.KVs[i].Key)
		if err := a.set(a.keyBuf, p.KVs[i].Value, e, a.timestampUS); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) multiRemove(p *MultiRemoveRequest, r *WriteResult) error {
	if len(p.SortKeys) == 0 || !validHashKey(p.HashKey) {
		r.Error = wire.StatusInvalidArgument
		return nil
	}
	for _, s := range p.SortKeys {
		a.keyBuf = key.Append(a.keyBuf[:0], p.HashKey, s)
		if err := a.wb.Delete(a.keyBuf, nil); err != nil {
			return err
		}
	}
	r.Count = int64(len(p.SortKeys))
	return nil
}

func (a *applier) incr(p *IncrRequest, r *WriteResult) error {
	if !validEncodedKey(p.Key) {
		r.Error = wire.StatusInvalidArgument
		return nil
	}
	user, oldExpire, exists, err := a.read(p.Key)
	if err != nil {
		return err
	}
	var old int64
	var newExpire uint32
	if !exists {
		if p.ExpireTS > 0 {
			newExpire = uint32(p.ExpireTS)
		}
	} else {
		if len(user) > 0 {
			v, ok := parseInt(user)
			if !ok {
				r.Error = wire.StatusInvalidArgument
				return nil
			}
			old = v
		}
		switch {
		case p.ExpireTS == 0:
			newExpire = oldExpire
		case p.ExpireTS > 0:
			newExpire = uint32(p.ExpireTS)
		}
	}
	sum := old + p.Increment
	if (p.Increment > 0 && sum < old) || (p.Increment < 0 && sum > old) {
		r.Error = wire.StatusInvalidArgument
		r.NewValue = old
		return nil
	}
	if newExpire == 0 {
		newExpire = a.expireTS(0)
	}
	var buf [24]byte
	if err := a.set(p.Key, strconv.AppendInt(buf[:0], sum, 10), newExpire, 0); err != nil {
		return err
	}
	r.NewValue = sum
	return nil
}

// check reads (hashKey, checkSortKey), fills the check-value fields of r if asked, and
// evaluates the check. It returns StatusOK when the check passes.
func (a *applier) check(hashKey, sortKey []byte, t idl.CASCheckType, operand []byte, returnValue bool,
	r *WriteResult) (wire.Status, error) {
	a.keyBuf = key.Append(a.keyBuf[:0], hashKey, sortKey)
	v, _, exists, err := a.read(a.keyBuf)
	if err != nil {
		return 0, err
	}
	if returnValue {
		r.CheckValueReturned = true
		r.CheckValueExist = exists
		if exists {
			r.CheckValue = v
		}
	}
	return evalCheck(t, exists, v, operand), nil
}

// validCheck reports whether t is a check type of the wire enum.
func validCheck(t idl.CASCheckType) bool { return t >= idl.CheckNone && t <= idl.CheckValueIntGreater }

// evalCheck evaluates a check type against the current value (protocol.md §5.4): StatusOK when
// it passes, StatusTryAgain when it does not, StatusInvalidArgument for a non-integer in an
// INT check or an unknown check type.
func evalCheck(t idl.CASCheckType, exists bool, v, op []byte) wire.Status {
	pass := false
	switch t {
	case idl.CheckNone:
		pass = true
	case idl.CheckValueNotExist:
		pass = !exists
	case idl.CheckValueNotExistOrEmpty:
		pass = !exists || len(v) == 0
	case idl.CheckValueExist:
		pass = exists
	case idl.CheckValueNotEmpty:
		pass = exists && len(v) > 0
	case idl.CheckValueMatchAnywhere:
		pass = exists && bytes.Contains(v, op)
	case idl.CheckValueMatchPrefix:
		pass = exists && bytes.HasPrefix(v, op)
	case idl.CheckValueMatchPostfix:
		pass = exists && bytes.HasSuffix(v, op)
	case idl.CheckValueBytesLess, idl.CheckValueBytesLessOrEqual, idl.CheckValueBytesEqual,
		idl.CheckValueBytesGreaterOrEqual, idl.CheckValueBytesGreater:
		if exists {
			pass = relation(t-idl.CheckValueBytesLess, bytes.Compare(v, op))
		}
	case idl.CheckValueIntLess, idl.CheckValueIntLessOrEqual, idl.CheckValueIntEqual,
		idl.CheckValueIntGreaterOrEqual, idl.CheckValueIntGreater:
		if !exists {
			return wire.StatusTryAgain
		}
		iv, ok := parseInt(v)
		if !ok {
			return wire.StatusInvalidArgument
		}
		io, ok := parseInt(op)
		if !ok {
			return wire.StatusInvalidArgument
		}
		c := 0
		if iv < io {
			c = -1
		} else if iv > io {
			c = 1
		}
		pass = relation(t-idl.CheckValueIntLess, c)
	default:
		return wire.StatusInvalidArgument
	}
	if pass {
		return wire.StatusOK
	}
	return wire.StatusTryAgain
}

// relation evaluates <, <=, ==, >=, > (rel 0..4) on a comparison result.
func relation(rel idl.CASCheckType, c int) bool {
	switch rel {
	case 0:
		return c < 0
	case 1:
		return c <= 0
	case 2:
		return c == 0
	case 3:
		return c >= 0
	default:
		return c > 0
	}
}

func (a *applier) checkAndSet(p *CheckAndSetRequest, r *WriteResult) error {
	if !validCheck(p.CheckType) || !validHashKey(p.HashKey) {
		r.Error = wire.StatusInvalidArgument
		return nil
	}
	code, err := a.check(p.HashKey, p.CheckSortKey, p.CheckType, p.CheckOperand, p.ReturnCheckValue, r)
	if err != nil || code != wire.StatusOK {
		r.Error = code
		return err
	}
	sk := p.CheckSortKey
	if p.SetDiffSortKey {
		sk = p.SetSortKey
	}
	a.keyBuf = key.Append(a.keyBuf[:0], p.HashKey, sk)
	return a.set(a.keyBuf, p.SetValue, a.expireTS(p.SetExpireTS), 0)
}

func (a *applier) checkAndMutate(p *CheckAndMutateRequest, r *WriteResult) error {
	if len(p.Mutates) == 0 || !validCheck(p.CheckType) || !validHashKey(p.HashKey) {
		r.Error = wire.StatusInvalidArgument
		return nil
	}
	for i := range p.Mutates {
		if op := p.Mutates[i].Op; op != idl.MutatePut && op != idl.MutateDelete {
			r.Error = wire.StatusInvalidArgument
			return nil
		}
	}
	code, err := a.check(p.HashKey, p.CheckSortKey, p.CheckType, p.CheckOperand, p.ReturnCheckValue, r)
	if err != nil || code != wire.StatusOK {
		r.Error = code
		return err
	}
	for i := range p.Mutates {
		m := &p.Mutates[i]
		a.keyBuf = key.Append(a.keyBuf[:0], p.HashKey, m.SortKey)
		if m.Op == idl.MutatePut {
			err = a.set(a.keyBuf, m.Value, a.expireTS(m.ExpireTS), 0)
		} else {
			err = a.wb.Delete(a.keyBuf, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
