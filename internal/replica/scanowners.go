package replica

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/storage"
)

// scanRef names one scanner context a connection holds.
type scanRef struct {
	pid idl.GPID
	id  int64
}

// connScans are the scanner contexts one client connection holds, oldest first.
type connScans struct {
	refs []scanRef
	used time.Time
}

// scanOwners bounds the scanner contexts of each client connection (setting
// max_scanner_contexts_per_connection): past it the connection's oldest context is cleared,
// and its next scan gets the expired-context answer. A get_scanner forwarded by another
// replica server counts against that server's connection.
type scanOwners struct {
	mu      sync.Mutex
	m       map[string]*connScans
	ops     int
	evicted atomic.Int64
}

// sweepEvery is how many context registrations pass between two sweeps of the connections
// whose contexts all went idle (their contexts expired in the stores meanwhile).
const sweepEvery = 1024

// added records a new context of the connection remote; it returns the context to clear
// when the connection holds more than max.
func (o *scanOwners) added(remote net.Addr, ref scanRef, max int, now time.Time) (evict scanRef, ok bool) {
	if remote == nil || ref.id <= 0 {
		return scanRef{}, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[string]*connScans)
	}
	if o.ops++; o.ops%sweepEvery == 0 {
		for k, cs := range o.m {
			if now.Sub(cs.used) > storage.DefaultScannerIdleTimeout {
				delete(o.m, k)
			}
		}
	}
	key := remote.String()
	cs := o.m[key]
	if cs == nil {
		cs = &connScans{}
		o.m[key] = cs
	}
	cs.used = now
	cs.refs = append(cs.refs, ref)
	if len(cs.refs) > max {
		evict = cs.refs[0]
		cs.refs = cs.refs[1:]
		return evict, true
	}
	return scanRef{}, false
}

// replaced records that a scan turned context old into next (0 or negative: the scan is
// over) or that old was cleared.
func (o *scanOwners) replaced(remote net.Addr, old scanRef, next int64, now time.Time) {
	if remote == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	key := remote.String()
	cs := o.m[key]
	if cs == nil {
		return
	}
	for i, r := range cs.refs {
		if r == old {
			cs.refs = append(cs.refs[:i], cs.refs[i+1:]...)
			break
		}
	}
	if next > 0 {
		cs.refs = append(cs.refs, scanRef{pid: old.pid, id: next})
	}
	cs.used = now
	if len(cs.refs) == 0 {
		delete(o.m, key)
	}
}

// noteScanner records a context handed to the client of req, clearing that connection's
// oldest one past max_scanner_contexts_per_connection.
func (s *Server) noteScanner(remote net.Addr, pid idl.GPID, id int64) {
	evict, ok := s.scanOwners.added(remote, scanRef{pid: pid, id: id}, int(s.settings.Reads.maxScannersPerConn.Get()), time.Now())
	if !ok {
		return
	}
	if p := s.partition(evict.pid); p != nil {
		db, release := p.readDB()
		db.ClearScanner(evict.id)
		release()
		s.scanOwners.evicted.Add(1)
	}
}
