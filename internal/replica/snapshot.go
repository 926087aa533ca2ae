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

	"github.com/gopegasus/pegasus/internal/durable"
	"github.com/gopegasus/pegasus/internal/idl"
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
// store as of a later index (its applied index). The receiver swaps the checkpoint in as its
// store, then steps the message into raft; entries between the truncation point and the
// checkpoint's index are redelivered by raft and skipped by the store, which already has them.

const snapshotMagic = "GPSNAP1\n"

// snapshotPath is the HTTP path snapshots are posted to.
const snapshotPath = "/gopegasus/snapshot"

// snapshotTimeout bounds one transfer.
const snapshotTimeout = 10 * time.Minute

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
	dir := filepath.Join(s.partitionDir(p.pid), fmt.Sprintf("snap-in-%d", time.Now().UnixNano()))
	in, err := readSnapshotStream(bufio.NewReaderSize(r.Body, 1<<20), dir)
	if err != nil {
		os.RemoveAll(dir)
		http.Error(w, "snapshot: "+err.Error(), http.StatusBadRequest)
		return
	}
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
	if err := <-in.done; err != nil {
		os.RemoveAll(dir)
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
	for {
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

// installSnapshot swaps a received checkpoint in as the partition's store and steps the
// snapshot message into raft. It runs on the partition's loop.
func (l *loop) installSnapshot(in *install) error {
	p := l.p
	if in.index < p.applied.Load() {
		return fmt.Errorf("checkpoint at %d is behind this replica (applied %d)", in.index, p.applied.Load())
	}
	if in.index < in.msg.Snapshot.Metadata.Index {
		return fmt.Errorf("checkpoint at %d is older than the snapshot (%d)", in.index, in.msg.Snapshot.Metadata.Index)
	}
	dataDir := p.s.dataDir(p.pid)
	p.dbMu.Lock()
	if err := p.db.Close(); err != nil {
		p.lg.Warn("close store before snapshot", "err", err)
	}
	old := dataDir + ".old"
	_ = os.RemoveAll(old)
	err := os.Rename(dataDir, old)
	if err == nil {
		err = os.Rename(in.dir, dataDir)
	}
	if err == nil {
		err = durable.SyncDir(filepath.Dir(dataDir))
	}
	if err != nil {
		// Put the previous store back so the replica keeps what it had.
		_ = os.Rename(old, dataDir)
	}
	db, oerr := p.s.openStore(p.pid, p.table(), p.lg)
	if oerr != nil {
		p.dbMu.Unlock()
		return fmt.Errorf("reopen store: %w (swap: %v)", oerr, err)
	}
	p.db = db
	if err == nil {
		// Counted before the new store is visible: whoever reads the installed data sees the
		// install counted.
		p.snapshots.Add(1)
	}
	p.dbMu.Unlock()
	if err != nil {
		return err
	}
	_ = os.RemoveAll(old)
	p.ownCount.Store(max(p.ownCount.Load(), db.PartitionCount()))
	if l.split != nil {
		l.dropCopy("the parent's replica installed a snapshot")
	}
	l.installed = in.index
	p.applied.Store(max(p.applied.Load(), db.LastAppliedIndex()))
	p.lg.Info("snapshot installed", "snapshot", in.msg.Snapshot.Metadata.Index, "applied", db.LastAppliedIndex())
	return l.rn.Step(in.msg)
}
