package replica

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/bulkload"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/stopctx"
)

// Bulk loads (operations.md §2). Every replica of a loading table downloads its
// partition's files (package bulkload: checked by md5, RocksDB files converted, every key
// checked against the partition), at most maxBulkDownloads partitions at once per server,
// and reports when it has them. Once the meta has seen every replica of every partition
// downloaded, it moves the load to INGESTING: every replica refuses client writes
// (ERR_OPERATION_DISABLED), and the primary proposes the ingestion as one raft entry
// (kindIngest), which every replica applies by ingesting its own copy of the files with
// Pebble's Ingest. A replica without the files when it applies the entry (it joined the
// group since) downloads them then. A pause or a cancel stops the downloads; a finished,
// failed or cancelled load leaves the tasks, and the files are removed.

// bulkJob is one replica's part of a bulk load. Fields below task are guarded by mu.
type bulkJob struct {
	gpid idl.GPID

	mu         sync.Mutex
	task       cluster.BulkLoadTask
	cancel     context.CancelFunc // of the download running, if any
	downloaded bool
	paths      []string // the SSTs ready to ingest
	progress   int32
	proposed   bool // the ingestion was proposed (primary)
	ingested   bool
	err, code  string
	stats      bulkload.Stats
}

func (j *bulkJob) report() cluster.BulkLoadReport {
	j.mu.Lock()
	defer j.mu.Unlock()
	return cluster.BulkLoadReport{AppID: j.gpid.AppID, PartitionIndex: j.gpid.PartitionIndex, LoadID: j.task.LoadID,
		Progress: j.progress, Downloaded: j.downloaded, Ingested: j.ingested, Err: j.err, Code: j.code}
}

// ingestRequest is the payload of a kindIngest entry.
type ingestRequest struct {
	LoadID   int64  `json:"load_id"`
	Provider string `json:"provider"`
	Dir      string `json:"dir"`
}

// bulkDir is where a replica keeps a load's files.
func (s *Server) bulkDir(pid idl.GPID, loadID int64) string {
	return filepath.Join(s.partitionDir(pid), fmt.Sprintf("bulkload.%d", loadID))
}

// runBulkLoads follows the meta's bulk load tasks.
func (s *Server) runBulkLoads(ctx context.Context, tasks []cluster.BulkLoadTask) {
	o := &s.ops
	o.mu.Lock()
	defer o.mu.Unlock()
	want := map[idl.GPID]bool{}
	for _, t := range tasks {
		pid := idl.GPID{AppID: t.AppID, PartitionIndex: t.PartitionIndex}
		p := s.partition(pid)
		if p == nil {
			continue
		}
		want[pid] = true
		j := o.bulk[pid]
		if j != nil && j.task.LoadID != t.LoadID {
			s.endBulkJob(j)
			j = nil
		}
		if j == nil {
			j = &bulkJob{gpid: pid, task: t}
			o.bulk[pid] = j
		}
		s.stepBulkJob(ctx, p, j, t)
	}
	for pid, j := range o.bulk {
		if !want[pid] {
			s.endBulkJob(j)
			delete(o.bulk, pid)
		}
	}
}

// stepBulkJob moves one replica's job to what the task says.
func (s *Server) stepBulkJob(ctx context.Context, p *partition, j *bulkJob, t cluster.BulkLoadTask) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.task = t
	status := idl.BulkLoadStatus(t.Status)
	p.ingesting.Store(status == idl.BulkLoadIngesting)
	switch {
	case j.err != "":
	case status == idl.BulkLoadDownloading && !j.downloaded && j.cancel == nil:
		dctx, cancel := context.WithCancel(ctx)
		j.cancel = cancel
		s.ops.wg.Go(func() {
			defer cancel()
			s.downloadBulk(dctx, p, j)
		})
	case status == idl.BulkLoadPaused && j.cancel != nil:
		j.cancel()
	case status == idl.BulkLoadIngesting && t.Ingest && j.downloaded && !j.proposed && !j.ingested:
		j.proposed = true
		s.ops.wg.Go(func() { s.proposeIngest(ctx, p, j) })
	}
}

// endBulkJob stops a job and removes its files.
func (s *Server) endBulkJob(j *bulkJob) {
	j.mu.Lock()
	if j.cancel != nil {
		j.cancel()
	}
	dir := s.bulkDir(j.gpid, j.task.LoadID)
	j.mu.Unlock()
	if p := s.partition(j.gpid); p != nil {
		p.ingesting.Store(false)
	}
	// A download still running writes into dir until it sees the cancel; the next
	// removal (a later job, the partition's drop) catches what it leaves.
	_ = os.RemoveAll(dir)
}

// downloadBulk fetches and prepares the replica's files.
func (s *Server) downloadBulk(ctx context.Context, p *partition, j *bulkJob) {
	j.mu.Lock()
	t := j.task
	j.mu.Unlock()
	select {
	case s.ops.downloads <- struct{}{}:
		defer func() { <-s.ops.downloads }()
	case <-ctx.Done():
		j.mu.Lock()
		j.cancel = nil
		j.mu.Unlock()
		return
	}
	paths, st, err := s.fetchBulk(ctx, p, t, func(done, total int64) {
		j.mu.Lock()
		if total > 0 {
			j.progress = int32(min(99, done*100/total))
		}
		j.mu.Unlock()
	})
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancel = nil
	switch {
	case ctx.Err() != nil:
		j.progress = 0 // paused or ended: a restart downloads again
	case err != nil:
		j.err, j.code = err.Error(), codeOfOpErr(err)
		s.ops.failures.Add(1)
		p.lg.Error("bulk load download failed", "err", err)
	default:
		j.downloaded, j.paths, j.progress, j.stats = true, paths, 100, st
		p.lg.Info("bulk load files ready", "files", st.Files, "records", st.Records, "bytes", st.Bytes, "converted", st.Converted)
	}
}

// fetchBulk downloads a load's files for partition p into a fresh directory.
func (s *Server) fetchBulk(ctx context.Context, p *partition, t cluster.BulkLoadTask, progress func(done, total int64)) ([]string, bulkload.Stats, error) {
	svc, err := s.provider(t.Provider)
	if err != nil {
		return nil, bulkload.Stats{}, err
	}
	dir := filepath.Join(s.bulkDir(p.pid, t.LoadID), fmt.Sprintf("d%d", time.Now().UnixNano()))
	paths, st, err := bulkload.Download(ctx, svc, t.Dir, dir, &bulkload.DownloadOptions{
		PartitionIndex: p.pid.PartitionIndex, PartitionCount: p.table().partitionCount,
		DataVersion: 1, TimestampUS: uint64(time.Now().UnixMicro()), ClusterID: *s.cfg.ClusterID,
		Limiter: s.ops.limiter, Progress: progress, Bytes: func(n int64) { s.ops.downloaded.Add(n) }})
	if err != nil {
		_ = os.RemoveAll(dir)
	}
	return paths, st, err
}

// proposeIngest has the partition's group apply the ingestion.
func (s *Server) proposeIngest(ctx context.Context, p *partition, j *bulkJob) {
	j.mu.Lock()
	req := ingestRequest{LoadID: j.task.LoadID, Provider: j.task.Provider, Dir: j.task.Dir}
	j.mu.Unlock()
	data, _ := json.Marshal(req)
	r := p.propose(ctx, &write{kind: kindIngest, data: data, done: make(chan writeResult, 1)})
	j.mu.Lock()
	defer j.mu.Unlock()
	if r.err != nil {
		j.proposed = false // proposed again at the next sync, if still the primary
		p.lg.Warn("bulk load ingestion not applied", "err", r.err)
	}
}

// ingestEntry returns the ingestion an entry carries, if it is one: a single write of
// kindIngest.
func ingestEntry(data []byte) (id uint64, req ingestRequest, ok bool) {
	if !isIngest(data) {
		return 0, req, false
	}
	l := int(binary.BigEndian.Uint32(data[entryHeaderLen+1:]))
	if l > len(data)-entryHeaderLen-5 || json.Unmarshal(data[entryHeaderLen+5:entryHeaderLen+5+l], &req) != nil {
		return 0, req, false
	}
	return binary.BigEndian.Uint64(data[1:]), req, true
}

// isIngest reports whether an entry's data is an ingestion (its one write is of
// kindIngest), without decoding it.
func isIngest(data []byte) bool {
	return len(data) >= entryHeaderLen+5 && data[0] == entryVersion && binary.BigEndian.Uint32(data[21:]) == 1 &&
		writeKind(data[entryHeaderLen]) == kindIngest
}

// applyIngest applies an ingestion entry on the partition's loop: the replica's files,
// downloaded now if it has none, are ingested at the entry's index. A replica that cannot
// ingest them records the entry's index without them and reports the failure (the load
// fails; the store keeps its previous data).
func (l *loop) applyIngest(e *raftpb.Entry, id uint64, req ingestRequest) error {
	p := l.p
	ws, _ := l.waiters.Take(id)
	if e.Index <= p.db.LastAppliedIndex() {
		failWrites(ws, errNotLeader)
		return nil
	}
	s := p.s
	ctx := stopctx.New(p.stop)
	o := &s.ops
	o.mu.Lock()
	j := o.bulk[p.pid]
	o.mu.Unlock()
	var paths []string
	var err error
	if j != nil {
		j.mu.Lock()
		if j.task.LoadID == req.LoadID && j.downloaded {
			paths, j.paths, j.downloaded = j.paths, nil, false
		}
		j.mu.Unlock()
	}
	if paths == nil {
		t := cluster.BulkLoadTask{AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex, Provider: req.Provider, Dir: req.Dir, LoadID: req.LoadID}
		paths, _, err = s.fetchBulk(ctx, p, t, nil)
	}
	if err == nil {
		start := time.Now()
		err = p.db.Ingest(ctx, e.Index, paths)
		p.lg.Info("bulk load ingested", "files", len(paths), "index", e.Index, "took", time.Since(start).Round(time.Millisecond), "err", err)
	}
	if err != nil {
		p.lg.Error("bulk load ingestion failed; the store keeps its data", "err", err)
		if rerr := p.db.Ingest(ctx, e.Index, nil); rerr != nil {
			failWrites(ws, rerr)
			return rerr
		}
		if j != nil {
			j.mu.Lock()
			j.err, j.code = err.Error(), codeOfOpErr(err)
			j.mu.Unlock()
		}
	} else if j != nil {
		j.mu.Lock()
		j.ingested = true
		j.mu.Unlock()
	}
	_ = os.RemoveAll(s.bulkDir(p.pid, req.LoadID))
	for _, w := range ws {
		w.done <- writeResult{decree: int64(e.Index), err: err}
	}
	return nil
}
