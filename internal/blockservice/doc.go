// Package blockservice is where backups and bulk load files live: a small interface,
// [Service] (stat, list, read, write, remove), over a directory tree of files with their
// sizes and md5 sums, and its providers, configured as Apache Pegasus configures its block
// services:
//
//	[block_service.local]
//	type = local_service
//	args = /mnt/pegasus-backup            ; the root directory
//
//	[block_service.s3]
//	type = s3
//	args = https://s3.example.com pegasus-backup   ; endpoint URL and bucket
//	region = us-east-1
//	access_key = AKIA...
//	secret_key = ...
//
// RPCs name a provider by its section's name ("local", "s3" above), never by its type.
// [DefineConfig] lets a settings registry load these sections, [FromConfig] opens them all,
// [Open] opens one.
//
// # Paths
//
// A path is slash-separated and relative to the provider's root; a leading slash is
// allowed and means the same. "..", and any element starting with ".", are refused with
// [ErrInvalid] (names starting with "." are local_service's own files). A directory is
// where files are: Write creates the directories above a file. On s3 a directory exists
// while some object is under it, and a name may be both a file and a directory; on
// local_service a directory exists until RemoveAll removes it, and a write where a
// directory is (or below a file) is refused.
//
// # local_service
//
// A directory on any mounted file system (a local disk, NFS, a distributed file system),
// laid out as Pegasus's local_service lays it out, so an operator finds the files where
// Pegasus puts them: each file X comes with a sidecar .X.meta in the same directory holding
// {"size":N,"md5":"<hex>"}, and a file without its sidecar is not there (as in Pegasus, it
// is neither listed nor read). A write streams into a temporary file, syncs it, renames it
// into place and writes the sidecar the same way, syncing the directory: a crash leaves the
// old file, no file, or the new one. Within one process the writes and removes of one
// path are serialized at their last step; processes sharing a directory must not write the
// same path at once (Pegasus's layouts give each server its own paths).
//
// # s3
//
// Any S3-compatible object store (AWS S3, MinIO, Ceph RGW, SeaweedFS), through minio-go.
// The section's keys:
//
//	args             "<endpoint URL> <bucket>"; the URL's scheme turns TLS on (https) or off (http)
//	region           the bucket's region; empty asks the store
//	access_key       with secret_key (and session_token, for temporary credentials); when both
//	secret_key       are empty they come from the environment: AWS_ACCESS_KEY_ID,
//	session_token    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
//	ca_file          PEM certificates to trust instead of the system's (https only)
//	bucket_lookup    auto (default: virtual-host style where the store is known to take it),
//	                 path (https://host/bucket/key) or virtual_host (https://bucket.host/key)
//	prefix           a key prefix every path lives under, e.g. clusters/c1
//	part_size_mb     the part size of multipart uploads, 5 to 5120 (default 8)
//	parts_in_flight  how many parts of one upload are sent at once, 1 to 16 (default 4)
//
// A file's md5 is the one recorded in its object's metadata (x-amz-meta-md5), or else its
// ETag when that is a plain md5 (objects uploaded in one part by other tools). A write of up
// to one part is one PUT whose Content-MD5 the store checks. A larger one is a multipart
// upload of fixed-size parts, parts_in_flight of them sent at once, so a write holds
// parts_in_flight × part_size_mb of memory whatever the file's size; it is invisible until
// complete and aborted on failure. The md5
// of a multipart upload goes into its metadata at the start when the writer gives it
// ([WriteOptions].MD5, then checked at the end), or else by a server-side copy of the
// object onto itself once uploaded.
//
// # hdfs_service
//
// Pegasus's HDFS provider is not built: [Open] answers a section of that type (or any
// other) with an [UnsupportedTypeError], "provider type hdfs_service is not supported;
// use local_service or s3".
//
// # Errors and concurrency
//
// Every error of a Service's method is an [*Error] naming the provider, the operation and
// the path; errors.Is finds [ErrNotFound], [ErrChecksum] and [ErrInvalid] through it. Every
// Service, and [Providers], is safe for concurrent use.
package blockservice
