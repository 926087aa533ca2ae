package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/gopegasus/pegasus/internal/blockservice"
)

// Names of the layout's files.
const (
	InfoFile              = "backup_info"
	AppMetadataFile       = "app_metadata"
	AppBackupStatusFile   = "app_backup_status"
	MetadataFile          = "backup_metadata"
	CurrentCheckpointFile = "current_checkpoint"
	metaDir               = "meta"
)

// maxMetadataSize bounds a metadata file read from a provider.
const maxMetadataSize = 64 << 20

// Root is the directory of a cluster's backups: [<backupPath>/]<cluster>.
func Root(backupPath, cluster string) string {
	if backupPath == "" {
		return cluster
	}
	return path.Join(backupPath, cluster)
}

// Dir is the directory of backup id under root.
func Dir(root string, id int64) string { return path.Join(root, strconv.FormatInt(id, 10)) }

// AppDir is the directory of table app (id appID) in backup id.
func AppDir(root string, id int64, app string, appID int32) string {
	return path.Join(Dir(root, id), fmt.Sprintf("%s_%d", app, appID))
}

// AppMetadataPath is the path of the table's app_metadata in backup id.
func AppMetadataPath(root string, id int64, app string, appID int32) string {
	return path.Join(AppDir(root, id, app, appID), metaDir, AppMetadataFile)
}

// AppBackupStatusPath is the path of the table's app_backup_status in backup id.
func AppBackupStatusPath(root string, id int64, app string, appID int32) string {
	return path.Join(AppDir(root, id, app, appID), metaDir, AppBackupStatusFile)
}

// PartitionDir is the directory of partition pidx of table app in backup id.
func PartitionDir(root string, id int64, app string, appID, pidx int32) string {
	return path.Join(AppDir(root, id, app, appID), strconv.Itoa(int(pidx)))
}

// CheckpointName is the name of the checkpoint directory a server at addr ("ip:port")
// uploads: chkpt_<ip>_<port>.
func CheckpointName(addr string) string {
	return "chkpt_" + strings.ReplaceAll(addr, ":", "_")
}

// FileMeta is one file of a checkpoint as backup_metadata lists it.
type FileMeta struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	MD5  string `json:"md5"`
}

// Metadata is a partition checkpoint's backup_metadata.
type Metadata struct {
	// CheckpointDecree is the last decree (raft log index) the checkpoint holds.
	CheckpointDecree int64 `json:"checkpoint_decree"`
	// CheckpointTimestamp is when the checkpoint was taken, in unix milliseconds.
	CheckpointTimestamp int64      `json:"checkpoint_timestamp"`
	Files               []FileMeta `json:"files"`
	CheckpointTotalSize int64      `json:"checkpoint_total_size"`
}

// Info is a backup's backup_info.
type Info struct {
	BackupID    int64  `json:"backup_id"`
	StartTimeMS int64  `json:"start_time_ms"`
	EndTimeMS   int64  `json:"end_time_ms"`
	AppID       int32  `json:"app_id"`
	AppName     string `json:"app_name"`
}

// AppBackupStatus is a table's app_backup_status.
type AppBackupStatus struct {
	BackupID int64  `json:"backup_id"`
	AppID    int32  `json:"app_id"`
	Status   string `json:"status"`
}

// AppMetadata is the part of a table's app_metadata (Pegasus's app_info as JSON) a restore
// needs; other fields are kept by [WriteJSON]'s caller as it wrote them.
type AppMetadata struct {
	AppType         string            `json:"app_type"`
	AppName         string            `json:"app_name"`
	AppID           int32             `json:"app_id"`
	PartitionCount  int32             `json:"partition_count"`
	IsStateful      bool              `json:"is_stateful"`
	MaxReplicaCount int32             `json:"max_replica_count"`
	Envs            map[string]string `json:"envs"`
	CreateSecond    int64             `json:"create_second"`
	DataVersion     int32             `json:"data_version,omitempty"`
	Status          string            `json:"status"`
	// Duplicating, IsBulkLoading and the other app_info fields upstream writes are not
	// needed to restore and are not read.
}

// WriteJSON writes v as JSON to p on svc.
func WriteJSON(ctx context.Context, svc blockservice.Service, p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("backup: encode %s: %w", p, err)
	}
	_, err = svc.Write(ctx, p, strings.NewReader(string(b)), &blockservice.WriteOptions{Size: int64(len(b))})
	return err
}

// ReadFile reads the whole (small) file p from svc, verified against its recorded md5.
func ReadFile(ctx context.Context, svc blockservice.Service, p string) ([]byte, error) {
	r, err := svc.Read(ctx, p, &blockservice.ReadOptions{Verify: true})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxMetadataSize+1))
	if err != nil {
		return nil, &FileError{Path: p, Err: err}
	}
	if len(b) > maxMetadataSize {
		return nil, &FileError{Path: p, Err: fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, maxMetadataSize)}
	}
	return b, nil
}

// ReadJSON reads the JSON file p from svc into v. Malformed JSON is a [*FileError]
// wrapping [ErrCorrupt].
func ReadJSON(ctx context.Context, svc blockservice.Service, p string, v any) error {
	b, err := ReadFile(ctx, svc, p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &FileError{Path: p, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	return nil
}

// ErrCorrupt is wrapped by the errors of files that are not what their metadata says.
var ErrCorrupt = errors.New("backup: corrupt file")

// FileError is the error of one file of a backup: its path on the provider and the cause.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("backup file %s: %v", e.Path, e.Err) }

func (e *FileError) Unwrap() error { return e.Err }
