// Package idl holds the thrift structs of every RPC gopegasus speaks (protocol.md §2) with
// their thrift binary-protocol codecs, generated from a schema of our own.
//
// Every struct implements [Value]: Encode appends the struct (fields, then STOP) to an
// [Encoder]; Decode reads one struct from a [Decoder], skipping unknown fields and tolerating
// missing ones (they keep their zero values, or the documented idl default). Decoded byte
// slices alias the decoder's input buffer: keep the buffer alive and unmodified while the
// struct is in use, or copy.
//
// Pegasus's placeholder ("dsn") types — blob, gpid, rpc_address, error_code, host_port — are
// raw values under a field type byte of STRUCT (protocol.md §1.8). Here a blob is a []byte,
// and the others are [GPID], [RPCAddress], [ErrorCode] and [HostPort].
//
// # Generated codecs
//
// The structs and enums are declared in rrdb.schema (replica data RPCs), meta.schema
// (meta RPCs and shared types), dup.schema (duplication), backup.schema (backup, restore and
// bulk load) and hotkey.schema (hot-key detection); the generator in ./gen turns each NAME.schema into
// NAME_gen.go. Run go generate ./internal/idl after editing a schema; CI fails when a
// generated file differs from what the schemas give. The generated code does what
// hand-written code would: it encodes by appending to one reusable buffer and decodes without
// copying blobs, so the GET hot path allocates nothing beyond the returned value. The
// codec runtime ([Encoder], [Decoder], [Optional]) and the placeholder types are written by
// hand, as are the few types the schema does not express (the bare payloads [ContextID] and
// [Text]); each schema's header comment lists them.
//
// A schema is a list of declarations, each starting at the beginning of a line, with its
// members on the indented lines below it. A struct field is "id GoName type [flags] [//
// comment]", an enum value "number GoName PEGASUS_NAME", and "struct A = B" declares A with
// the fields and codec of B:
//
//	# A schema comment, not copied.
//	// KeyValue is one sort key and value of a hash key.
//	struct KeyValue
//		1 Key             blob // raw sort key
//		2 Value           blob
//		3 ExpireTSSeconds i32  optional
//
//	// FilterType selects how a key filter pattern matches.
//	enum FilterType
//		0 FilterNone          FT_NO_FILTER
//		1 FilterMatchAnywhere FT_MATCH_ANYWHERE
//
//	// CheckAndMutateResponse answers CHECK_AND_MUTATE.
//	struct CheckAndMutateResponse = CheckAndSetResponse
//
// "//" lines directly above a declaration become its doc comment; a "//" block followed by a
// blank line is copied as a free-standing comment. Enum values count up from 0. A field's
// type is bool, byte, i32, i64, string, map<string,string>, a placeholder type (blob, gpid,
// rpc_address, error_code, host_port, task_code), an enum or struct of any schema, list<T>
// of any of these but a map or list, or map<K,V> with K one of i32, i64, string and gpid and
// V any type but map<string,string> (lists and maps nested in maps are written and read by
// generated helper functions, encoded in key order). After the type come flags:
//
//   - optional: the field is an [Optional] and is written only when set;
//   - default=V (bool, i32, i64): a missing field decodes as V; a struct with a non-zero
//     default gets a constructor NewName that fills it in. With optional, the field is a
//     plain value written only when it differs from V (for optional bools that default to
//     false, as the official go-client writes them);
//   - reuse (plain strings): decoding into a reused struct keeps the previous string when the
//     bytes are equal, so it does not allocate.
//
// To add a struct, declare it in the schema of its RPC's server, run go generate, and, if
// it is the payload of a new RPC, register that RPC in rpcs.go. The round-trip, fuzz and spec tests of the package cover every
// type in their lists (helpers_test.go, roundtrip_test.go): add it there too.
package idl

//go:generate go run ./gen rrdb.schema meta.schema dup.schema backup.schema hotkey.schema
