package cluster

// The long operations' part of the replica → meta sync: what the meta leader asks a
// replica server to do (in [SyncResponse]) and what the server reports of it (in
// [SyncRequest]). A task stays in every answer until the meta has recorded its outcome; a
// server reports each task it runs or finished until the task leaves the answers.

// BackupTask asks the primary of a partition to back it up: take a checkpoint, upload it
// under Root (package backup's layout) to the block service Provider.
type BackupTask struct {
	AppID          int32  `json:"app_id"`
	PartitionIndex int32  `json:"partition_index"`
	AppName        string `json:"app_name"`
	BackupID       int64  `json:"backup_id"`
	Provider       string `json:"provider"`
	Root           string `json:"root"`
}

// BackupReport is a server's state of one [BackupTask].
type BackupReport struct {
	AppID          int32 `json:"app_id"`
	PartitionIndex int32 `json:"partition_index"`
	BackupID       int64 `json:"backup_id"`
	// Progress is 0 to 1000 (done).
	Progress int32 `json:"progress"`
	Done     bool  `json:"done,omitempty"`
	// Err is set when the task failed (after its retries): the backup fails.
	Err string `json:"err,omitempty"`
	// Decree and Size are the checkpoint's, once Done.
	Decree int64 `json:"decree,omitempty"`
	Size   int64 `json:"size,omitempty"`
}

// RestoreReport is a server's state of the restore of one replica: its partition's table
// was created from a backup (the assignment's envs say which).
type RestoreReport struct {
	AppID          int32 `json:"app_id"`
	PartitionIndex int32 `json:"partition_index"`
	Progress       int32 `json:"progress"`
	Done           bool  `json:"done,omitempty"`
	// Skipped: the checkpoint could not be used and the replica started empty
	// (restore.skip_bad_partition).
	Skipped bool `json:"skipped,omitempty"`
	// Err is why the restore failed; Code its Pegasus error name.
	Err  string `json:"err,omitempty"`
	Code string `json:"code,omitempty"`
}

// BulkLoadTask tells a replica of a partition the state of its table's bulk load.
type BulkLoadTask struct {
	AppID          int32  `json:"app_id"`
	PartitionIndex int32  `json:"partition_index"`
	AppName        string `json:"app_name"`
	Provider       string `json:"provider"`
	// Dir is the partition's directory on the provider.
	Dir string `json:"dir"`
	// Status is the meta's state of the partition (idl.BulkLoadStatus).
	Status int32 `json:"status"`
	// Ingest: every replica has downloaded; the primary proposes the ingestion.
	Ingest bool `json:"ingest,omitempty"`
	// LoadID tells loads of the same table apart.
	LoadID int64 `json:"load_id"`
}

// BulkLoadReport is a replica's state of one [BulkLoadTask].
type BulkLoadReport struct {
	AppID          int32  `json:"app_id"`
	PartitionIndex int32  `json:"partition_index"`
	LoadID         int64  `json:"load_id"`
	Progress       int32  `json:"progress"`
	Downloaded     bool   `json:"downloaded,omitempty"`
	Ingested       bool   `json:"ingested,omitempty"`
	Err            string `json:"err,omitempty"`
	Code           string `json:"code,omitempty"`
}
