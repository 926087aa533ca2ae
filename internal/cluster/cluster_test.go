package cluster

import (
	"hash/maphash"
	"testing"
)

// Member ids are persisted in raft logs and snapshots: the mapping (64-bit FNV-1a of the
// address, 0 mapped to 1) must never change.
func TestMemberIDStable(t *testing.T) {
	for addr, want := range map[string]uint64{
		"127.0.0.1:34801": 0x4ca7e4f26d3bf18e,
		"10.0.0.1:34601":  0xe45847bb7cd645bf,
		"":                0xcbf29ce484222325, // the FNV-64 offset basis
	} {
		if got := MemberID(addr); got != want {
			t.Errorf("MemberID(%q) = %#x, want %#x", addr, got, want)
		}
	}
}

// TestAssignmentEqual: every field of an assignment counts, and a copy decoded from JSON is
// equal to the original.
func TestAssignmentEqual(t *testing.T) {
	base := func() Assignment {
		return Assignment{AppID: 2, PartitionIndex: 3, AppName: "t", PartitionCount: 8,
			Members: []string{"a:1", "b:1"}, Envs: map[string]string{"k": "v"},
			Dups: []DupAssignment{{ID: 1, Remote: "r"}}, Split: &SplitOrder{NewCount: 16}}
	}
	a := base()
	var decoded Assignment
	if err := Decode(Encode(&a), &decoded); err != nil {
		t.Fatal(err)
	}
	if !a.Equal(&decoded) {
		t.Fatalf("decoded copy %+v differs from %+v", decoded, a)
	}
	for name, change := range map[string]func(*Assignment){
		"app id":          func(b *Assignment) { b.AppID++ },
		"partition index": func(b *Assignment) { b.PartitionIndex++ },
		"name":            func(b *Assignment) { b.AppName = "u" },
		"count":           func(b *Assignment) { b.PartitionCount = 16 },
		"members":         func(b *Assignment) { b.Members = []string{"b:1", "a:1"} },
		"envs":            func(b *Assignment) { b.Envs = map[string]string{"k": "w"} },
		"no envs":         func(b *Assignment) { b.Envs = nil },
		"join":            func(b *Assignment) { b.Join = true },
		"dups":            func(b *Assignment) { b.Dups[0].Confirmed = 7 },
		"split":           func(b *Assignment) { b.Split.Commit = true },
		"no split":        func(b *Assignment) { b.Split = nil },
		"split parent":    func(b *Assignment) { b.SplitParent = 1 },
	} {
		b := base()
		change(&b)
		if a.Equal(&b) || b.Equal(&a) {
			t.Errorf("%s changed, still equal", name)
		}
	}
}

// TestPlacementHash: the hash follows every part of the placement, not the order a map
// happens to be built in, and not the tasks.
func TestPlacementHash(t *testing.T) {
	seed := maphash.MakeSeed()
	base := func() *SyncResponse {
		return &SyncResponse{
			Assignments: []Assignment{{AppID: 2, PartitionIndex: 0, AppName: "t", PartitionCount: 2,
				Members: []string{"a:1", "b:1"}, Dups: []DupAssignment{{ID: 1}}, Split: &SplitOrder{NewCount: 4}}},
			Envs:        map[int32]map[string]string{2: {"k1": "v1", "k2": "v2"}},
			DroppedApps: []int32{3}, Apps: []int32{2, 3}, MaxAppID: 3,
		}
	}
	h := PlacementHash(seed, base())
	r := base()
	r.Envs = map[int32]map[string]string{2: {"k2": "v2", "k1": "v1"}}
	r.Backups = []BackupTask{{}}
	if PlacementHash(seed, r) != h {
		t.Fatal("the same placement hashed differently")
	}
	for name, change := range map[string]func(*SyncResponse){
		"member":        func(r *SyncResponse) { r.Assignments[0].Members[1] = "c:1" },
		"join":          func(r *SyncResponse) { r.Assignments[0].Join = true },
		"dup progress":  func(r *SyncResponse) { r.Assignments[0].Dups[0].Confirmed = 9 },
		"split":         func(r *SyncResponse) { r.Assignments[0].Split.Commit = true },
		"split parent":  func(r *SyncResponse) { r.Assignments[0].SplitParent = 1 },
		"count":         func(r *SyncResponse) { r.Assignments[0].PartitionCount = 4 },
		"env value":     func(r *SyncResponse) { r.Envs[2]["k1"] = "v3" },
		"env moved":     func(r *SyncResponse) { r.Envs[2]["k1v1"] = ""; delete(r.Envs[2], "k1") },
		"own envs":      func(r *SyncResponse) { r.Assignments[0].Envs = map[string]string{} },
		"dropped":       func(r *SyncResponse) { r.DroppedApps = nil },
		"apps":          func(r *SyncResponse) { r.Apps = []int32{2} },
		"max app id":    func(r *SyncResponse) { r.MaxAppID = 4 },
		"an assignment": func(r *SyncResponse) { r.Assignments = append(r.Assignments, Assignment{AppID: 2, PartitionIndex: 1}) },
	} {
		r := base()
		change(r)
		if PlacementHash(seed, r) == h {
			t.Errorf("%s changed, same hash", name)
		}
	}
	if PlacementHash(maphash.MakeSeed(), base()) == h {
		t.Error("another seed, same hash")
	}
}
