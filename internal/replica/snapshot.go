package replica

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/durable"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/storage"
)

// Snapshots. When a follower (or a new replica) needs entries the leader has already
// truncated from its raft log, raft asks the leader to send a snapshot. Our snapshot is a
// Pebble checkpoint of the partition's store, streamed over HTTP on the replica port:
//
//	POST /gopegasus/snapshot?app=<app_id>&pidx=<partition_index>
//	body: "GPSNAP1\n" | u64 checkpoint applied index | u32 n | n bytes raftpb.Message (MsgSnap)
//	      | a tar stream of the checkpoint's files
//
// The raft snapshot's metadata is the leader's log truncation point; the checkpoint holds the
// store as of a later index (its applied index). The receiver takes a snapshot only from an
// authenticated member of the group (with a cluster secret, the endpoint refuses every other
// connection, and the message's sender must be the connection's peer), only as a follower,
// bounded in size (Config.MaxSnapshotBytes) and time (snapshotTimeout). It checks that the
// checkpoint opens as a store, steps the message into raft, and swaps the checkpoint in as
// its store only when raft accepted it (the Ready carrying the snapshot); a refused snapshot
// changes nothing, and a swap that fails puts the previous store back. Entries between the
// truncation point and the checkpoint's index are redelivered by raft and skipped by the
// store, which already has them.

const snapshotMagic = "GPSNAP1\n"

// snapshotPath is the HTTP path snapshots are posted to.
const snapshotPath = "/gopegasus/snapshot"

// snapshotTimeout bounds one transfer, on both sides.
const snapshotTimeout = 10 * time.Minute

// DefaultMaxSnapshotBytes is the default bound of a received snapshot stream
// (Config.MaxSnapshotBytes).
const DefaultMaxSnapshotBytes = 256 << 30

// maxSnapshotFiles bounds the files of a received checkpoint.
const maxSnapshotFiles = 1 << 16

// errSnapshotRefused answers a snapshot whose message raft did not accept (stale, or for a
// replica that is not a follower of the sender's term): its checkpoint is dropped.
var errSnapshotRefused = errors.New("replica: raft refused the snapshot")

// outgoingSnapshot is a snapshot raft asked to send, waiting for the loop to start its
// transfer.
type outgoingSnapshot struct {
	m    raftpb.Message
	addr string
}

// startTransfers starts the transfers raft asked for, as goroutines of the partition: ctx
// ends when the loop exits, which cancels them, and the partition's close joins them.
func (l *loop) startTransfers(ctx context.Context) {
	p := l.p
	for _, o := range l.toSend {
		p.wg.Go(func() { p.s.sendSnapshot(ctx, p, o.m, o.addr) })
	}
	clear(l.toSend)
	l.toSend = l.toSend[:0]
}

// snapDone reports a finished transfer to the partition's loop.
type snapDone struct {
	to uint64
	ok bool
}

// install is a received snapshot waiting for the partition's loop.
type install struct {
	dir   string // the checkpoint's files
	index uint64 // its applied index
	msg   raftpb.Message
	peer  string // the authenticated peer that sent it, or "" without a cluster secret
	done  chan error
}

// sendSnapshot streams a checkpoint of p to the peer at addr and reports the outcome to the
// partition's loop. It runs in its own goroutine, until the transfer ends or ctx does.
func (s *Server) sendSnapshot(ctx context.Context, p *partition, m raftpb.Message, addr string) {
	err := s.streamSnapshot(ctx, p, m, addr)
	switch {
	case err != nil && ctx.Err() != nil:
		p.lg.Info("snapshot transfer abandoned: the partition stopped", "to", addr)
	case err != nil:
		p.lg.Warn("snapshot transfer failed", "to", addr, "err", err)
	default:
		p.lg.Info("snapshot sent", "to", addr, "index", m.Snapshot.Metadata.Index)
	}
	select {
	case p.snapDoneC <- snapDone{to: m.To, ok: err == nil}:
	case <-p.done:
	}
}

// errTransferEnded ends the checkpoint's writer when the transfer ended before it wrote all.
var errTransferEnded = errors.New("replica: snapshot transfer ended")

func (s *Server) streamSnapshot(ctx context.Context, p *partition, m raftpb.Message, addr string) error {
	dir := filepath.Join(s.partitionDir(p.pid), fmt.Sprintf("snap-out-%d", time.Now().UnixNano()))
	defer os.RemoveAll(dir)
	db, release := p.readDB()
	index, err := db.Checkpoint(dir)
	release()
	if err != nil {
		return err
	}
	// The snapshot's index was the applied index when raft asked for it, and the checkpoint
	// was taken after that: it holds every write up to the snapshot's index. Its own index is
	// that of its last write, which can be lower when membership changes or empty leader
	// entries came after it.
	index = max(index, m.Snapshot.Metadata.Index)
	msg, err := m.Marshal()
	if err != nil {
		return err
	}
	// The writer reads the checkpoint's files: it is joined before dir is removed (the
	// defers run in reverse), after the pipe's reading end is closed, which ends a write
	// the HTTP client no longer reads (it may stop early: an error, a cancelled ctx).
	pr, pw := io.Pipe()
	var writer sync.WaitGroup
	defer writer.Wait()
	defer pr.CloseWithError(errTransferEnded)
	writer.Go(func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		err := writeSnapshotStream(bw, index, msg, dir)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	})
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	url := fmt.Sprintf("http://%s%s?app=%d&pidx=%d", addr, snapshotPath, p.pid.AppID, p.pid.PartitionIndex)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, pr)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.snapshots.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("peer answered %s: %s", resp.Status, body)
	}
	return nil
}

func writeSnapshotStream(w io.Writer, index uint64, msg []byte, dir string) error {
	var hdr []byte
	hdr = append(hdr, snapshotMagic...)
	hdr = binary.BigEndian.AppendUint64(hdr, index)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(msg)))
	hdr = append(hdr, msg...)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// serveSnapshot receives a snapshot for a partition hosted here.
func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	app, err1 := strconv.ParseInt(r.URL.Query().Get("app"), 10, 32)
	pidx, err2 := strconv.ParseInt(r.URL.Query().Get("pidx"), 10, 32)
	if err1 != nil || err2 != nil {
		http.Error(w, "snapshot: bad app or pidx", http.StatusBadRequest)
		return
	}
	p := s.partition(idl.GPID{AppID: int32(app), PartitionIndex: int32(pidx)})
	if p == nil || !p.receiving.Enter() {
		http.Error(w, "snapshot: partition not hosted here", http.StatusNotFound)
		return
	}
	defer p.receiving.Exit()
	// The partition's close waits for this transfer: once the partition stops, reading the
	// stream fails at once (a read deadline), however slow the sender.
	stopped := make(chan struct{})
	var watch sync.WaitGroup
	defer watch.Wait()
	defer close(stopped)
	rc := http.NewResponseController(w)
	watch.Go(func() {
		select {
		case <-p.done:
			_ = rc.SetReadDeadline(time.Now())
		case <-stopped:
		}
	})
	// Bounded in time (the sender's own bound) and size, whoever the sender.
	_ = rc.SetReadDeadline(time.Now().Add(snapshotTimeout))
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxSnapshotBytes)
	dir := filepath.Join(s.partitionDir(p.pid), fmt.Sprintf("snap-in-%d", time.Now().UnixNano()))
	in, err := readSnapshotStream(bufio.NewReaderSize(body, 1<<20), dir)
	if err != nil {
		os.RemoveAll(dir)
		http.Error(w, "snapshot: "+err.Error(), http.StatusBadRequest)
		return
	}
	in.peer = rpc.PeerOf(r.Context())
	in.done = make(chan error, 1)
	select {
	case p.installC <- in:
	case <-p.done:
		os.RemoveAll(dir)
		http.Error(w, "snapshot: partition stopped", http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		os.RemoveAll(dir)
		return
	}
	// The loop answers every install it took, once raft decided (or the loop stopped).
	if err := <-in.done; err != nil {
		os.RemoveAll(dir)
		p.lg.Warn("snapshot refused", "from", in.peer, "err", err)
		http.Error(w, "snapshot: "+err.Error(), http.StatusConflict)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func readSnapshotStream(r io.Reader, dir string) (*install, error) {
	var fixed [len(snapshotMagic) + 12]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, err
	}
	if string(fixed[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errors.New("not a snapshot stream")
	}
	in := &install{dir: dir, index: binary.BigEndian.Uint64(fixed[len(snapshotMagic):])}
	n := binary.BigEndian.Uint32(fixed[len(snapshotMagic)+8:])
	if n > 64<<20 {
		return nil, fmt.Errorf("raft message of %d bytes", n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	if err := in.msg.Unmarshal(msg); err != nil {
		return nil, err
	}
	if in.msg.Type != raftpb.MsgSnap || in.msg.Snapshot == nil || raft.IsEmptySnap(*in.msg.Snapshot) {
		return nil, errors.New("not a snapshot message")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tr := tar.NewReader(r)
	for files := 0; ; files++ {
		if files > maxSnapshotFiles {
			return nil, fmt.Errorf("more than %d files in snapshot", maxSnapshotFiles)
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := filepath.FromSlash(h.Name)
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(name) {
			return nil, fmt.Errorf("unexpected entry %q in snapshot", h.Name)
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := durable.WriteFile(path, tr); err != nil {
			return nil, err
		}
	}
	return in, durable.SyncDir(dir)
}

// installSnapshot checks a received snapshot and gives its message to raft; the checkpoint
// becomes the store only once raft accepted the message (swapInPending, from the Ready
// that carries the snapshot), and the install is answered then, or by settleSnapshot when
// raft did not accept it. It runs on the partition's loop; an error means the snapshot was
// refused at once, and nothing changed.
func (l *loop) installSnapshot(in *install) error {
	p := l.p
	m := &in.msg
	switch {
	case in.peer != "" && cluster.MemberID(in.peer) != m.From:
		p.s.raftRefused.Add(1)
		return fmt.Errorf("snapshot from %s claims raft id %x", in.peer, m.From)
	case !l.fromMember(m.From):
		p.s.raftRefused.Add(1)
		return fmt.Errorf("snapshot from raft id %x, not a member of the group", m.From)
	case m.To != p.id:
		return fmt.Errorf("snapshot for raft id %x, not this replica", m.To)
	case l.lead == p.id:
		return errors.New("this replica leads the group: it takes no snapshot")
	case m.Term < p.term.Load():
		return fmt.Errorf("snapshot of term %d, behind this replica's %d", m.Term, p.term.Load())
	case l.pendingSnap != nil:
		return errors.New("another snapshot is being installed")
	case in.index < p.applied.Load():
		return fmt.Errorf("checkpoint at %d is behind this replica (applied %d)", in.index, p.applied.Load())
	case in.index < m.Snapshot.Metadata.Index:
		return fmt.Errorf("checkpoint at %d is older than the snapshot (%d)", in.index, m.Snapshot.Metadata.Index)
	}
	// A checkpoint that does not open as a store is refused before raft hears of it.
	db, err := p.s.openStoreAt(in.dir, p.pid, p.table(), p.lg)
	if err != nil {
		return fmt.Errorf("checkpoint does not open: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("checkpoint does not close: %w", err)
	}
	l.pendingSnap = in
	if err := l.rn.Step(*m); err != nil {
		l.pendingSnap = nil
		return err
	}
	return nil
}

// settleSnapshot answers the pending snapshot, if raft has not taken it, with err.
func (l *loop) settleSnapshot(err error) {
	if in := l.pendingSnap; in != nil {
		l.pendingSnap = nil
		in.done <- err
	}
}

// swapInPending makes the pending snapshot's checkpoint the partition's store: raft
// accepted its message and hands the snapshot, described by md, to storage. When the swap
// fails the previous store is put back and reopened, and the error returned: raft already
// took the snapshot, so the partition stops (a restart finds the previous store and the
// raft log as they were, as the snapshot was not written to the log).
func (l *loop) swapInPending(md raftpb.SnapshotMetadata) error {
	p := l.p
	in := l.pendingSnap
	l.pendingSnap = nil
	if in == nil || in.msg.Snapshot.Metadata.Index != md.Index || in.msg.Snapshot.Metadata.Term != md.Term {
		return fmt.Errorf("replica: raft took a snapshot at %d with no checkpoint for it", md.Index)
	}
	err := p.swapStore(in.dir)
	in.done <- err
	if err != nil {
		return err
	}
	p.ownCount.Store(max(p.ownCount.Load(), p.db.PartitionCount()))
	if l.split != nil {
		l.dropCopy("the parent's replica installed a snapshot")
	}
	l.installed = in.index
	p.applied.Store(max(p.applied.Load(), p.db.LastAppliedIndex()))
	p.lg.Info("snapshot installed", "snapshot", md.Index, "applied", p.db.LastAppliedIndex(), "from", in.peer)
	return nil
}

// swapStore replaces the partition's store with the one in dir. On failure the previous
// store is back in place and open, unless reopening it failed too (both errors are then
// returned, and the partition has no open store).
func (p *partition) swapStore(dir string) error {
	dataDir := p.s.dataDir(p.pid)
	old := dataDir + ".old"
	p.dbMu.Lock()
	defer p.dbMu.Unlock()
	if err := p.db.Close(); err != nil {
		p.lg.Warn("close store before snapshot", "err", err)
	}
	_ = os.RemoveAll(old)
	err := os.Rename(dataDir, old)
	if err != nil {
		if db, oerr := p.s.openStore(p.pid, p.table(), p.lg); oerr == nil {
			p.db = db
			return fmt.Errorf("replica: install snapshot: %w", err)
		} else {
			return fmt.Errorf("replica: install snapshot: %w; reopen the previous store: %w", err, oerr)
		}
	}
	err = os.Rename(dir, dataDir)
	if err == nil {
		err = durable.SyncDir(filepath.Dir(dataDir))
	}
	var db *storage.DB
	if err == nil {
		db, err = p.s.openStore(p.pid, p.table(), p.lg)
	}
	if err != nil {
		// Put the previous store back so the replica keeps what it had.
		_ = os.RemoveAll(dataDir)
		rerr := os.Rename(old, dataDir)
		if rerr == nil {
			rerr = durable.SyncDir(filepath.Dir(dataDir))
		}
		prev, oerr := p.s.openStore(p.pid, p.table(), p.lg)
		if oerr != nil {
			return fmt.Errorf("replica: install snapshot: %w; restore the previous store: %w", err, errors.Join(rerr, oerr))
		}
		p.db = prev
		p.lg.Warn("snapshot not installed: previous store restored", "err", err)
		return fmt.Errorf("replica: install snapshot: %w (previous store restored)", err)
	}
	// Counted before the new store is visible: whoever reads the installed data sees the
	// install counted.
	p.snapshots.Add(1)
	p.db = db
	_ = os.RemoveAll(old)
	return nil
}
