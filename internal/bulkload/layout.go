package bulkload

import (
	"path"
	"strconv"

	"github.com/gopegasus/pegasus/internal/backup"
)

// File names of the layout.
const (
	InfoFile     = "bulk_load_info"
	MetadataFile = "bulk_load_metadata"
)

// Info is a table's bulk_load_info.
type Info struct {
	AppID          int32  `json:"app_id"`
	AppName        string `json:"app_name"`
	PartitionCount int32  `json:"partition_count"`
	// DataVersion is the value schema of RocksDB-made files whose values do not say it
	// (v0 or v1; v2 values carry it in their first byte). Not written by upstream tools;
	// absent means 1.
	DataVersion *uint32 `json:"data_version,omitempty"`
}

// FileMeta is one file of a partition: name, size and md5, as a backup's files.
type FileMeta = backup.FileMeta

// Metadata is a partition's bulk_load_metadata.
type Metadata struct {
	Files         []FileMeta `json:"files"`
	FileTotalSize int64      `json:"file_total_size"`
}

// AppDir is a table's directory under root.
func AppDir(root, cluster, app string) string { return path.Join(root, cluster, app) }

// PartitionDir is partition pidx's directory under root.
func PartitionDir(root, cluster, app string, pidx int32) string {
	return path.Join(AppDir(root, cluster, app), strconv.Itoa(int(pidx)))
}
