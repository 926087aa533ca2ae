// Package backup is what the servers share to keep cold backups on a block service
// (package blockservice) in Apache Pegasus's layout, and to bring them back: the layout's
// paths and metadata files, the upload of a partition's checkpoint at a bounded rate, and
// its download with every file checked.
//
// # Layout
//
// A backup of table app (id N) with id B (its start time in unix milliseconds) lives under
// root = [<backup_path>/]<cluster_name>:
//
//	<root>/<B>/backup_info                       {backup_id, start_time_ms, end_time_ms, app_id, app_name}
//	<root>/<B>/<app>_<N>/meta/app_metadata       the table's app_info as JSON, envs cleared
//	<root>/<B>/<app>_<N>/meta/app_backup_status  {"backup_id":B,"app_id":N,"status":"succeed"}
//	<root>/<B>/<app>_<N>/<pidx>/current_checkpoint   the checkpoint directory's name
//	<root>/<B>/<app>_<N>/<pidx>/chkpt_<ip>_<port>/   the checkpoint's files and backup_metadata
//
// backup_metadata is {checkpoint_decree, checkpoint_timestamp, files: [{name, size, md5}],
// checkpoint_total_size}. A partition is complete once current_checkpoint names a directory
// whose backup_metadata is there: it is written after every file, and current_checkpoint
// after it, so a partial upload is never taken for a backup.
//
// # Transfers
//
// [Upload] sends the files of a local checkpoint directory, each through a [Limiter] shared
// by the server (its setting is in MB/s), retrying a failed file a few times before it gives
// up with an error naming the file; nothing is reported done before backup_metadata and
// current_checkpoint are written. [Download] reads current_checkpoint and backup_metadata,
// then fetches each file into a local directory and checks its size and md5 against
// backup_metadata (and the provider's own record); a mismatch or a missing file is a
// [*FileError] wrapping [ErrCorrupt] or [blockservice.ErrNotFound].
//
// Functions take the context first and are safe for concurrent use; a [Limiter] is shared.
package backup
