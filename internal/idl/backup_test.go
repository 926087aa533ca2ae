package idl

import (
	"reflect"
	"testing"
)

// The two hand-written replies round-trip, and decode what they encode field by field.
func TestHandWrittenBackupReplies(t *testing.T) {
	hp := NewHostPort("127.0.0.1", 34801)
	addr, err := ParseRPCAddress("127.0.0.1:34801")
	if err != nil {
		t.Fatal(err)
	}
	bl := &QueryBulkLoadResponse{
		Err: "ERR_OK", AppName: "temp", AppStatus: BulkLoadIngesting,
		PartitionsStatus: []BulkLoadStatus{BulkLoadIngesting, BulkLoadSucceed},
		MaxReplicaCount:  3,
		BulkLoadStates: [][]ReplicaBulkLoadState{
			{{Addr: addr, HostPort: hp, State: PartitionBulkLoadState{DownloadProgress: Some(int32(100)), IngestStatus: Some(IngestionRunning)}}},
			{},
		},
		HintMsg: Some("hint"), IsBulkLoading: Some(true),
	}
	var got QueryBulkLoadResponse
	if err := Unmarshal(Marshal(bl), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.BulkLoadStates[1]) == 0 {
		got.BulkLoadStates[1] = []ReplicaBulkLoadState{}
	}
	if !reflect.DeepEqual(&got, bl) {
		t.Fatalf("got %+v\nwant %+v", &got, bl)
	}
	bp := &QueryBackupPolicyResponse{
		Err:         "ERR_OK",
		Policies:    []PolicyEntry{{PolicyName: "p", BackupProviderType: "local", BackupIntervalSeconds: "86400", AppIDs: []int32{2}, BackupHistoryCountToKeep: 3, StartTime: "01:00"}},
		BackupInfos: [][]BackupEntry{{{BackupID: 5, StartTimeMS: 5, EndTimeMS: 6, AppIDs: []int32{2}}}},
	}
	var gotP QueryBackupPolicyResponse
	if err := Unmarshal(Marshal(bp), &gotP); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&gotP, bp) {
		t.Fatalf("got %+v\nwant %+v", &gotP, bp)
	}
	// Truncated input is an error, never a panic.
	b := Marshal(bl)
	for i := range b {
		_ = Unmarshal(b[:i], &got)
	}
}
