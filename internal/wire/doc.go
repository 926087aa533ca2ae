// Package wire is the Pegasus wire format below the thrift structs of internal/idl: the
// frames that travel on a connection, and the error codes they carry.
//
// A request frame is a request header, version 0 (48 bytes; the go, python and nodejs
// clients) or version 1 (16 bytes and a thrift meta struct; the Java client), followed by a
// body: a thrift binary-protocol message (name, type, sequence id) whose args struct holds
// the RPC's request as field 1 (protocol.md §1). [DecodeHeader] and [ParseRequestBody] read
// a frame in two steps, so a server learns the body's length, and can refuse it, before it
// reads the body; [AppendRequest] writes one. A reply frame is a length, the envelope error
// code, and a thrift reply message ([AppendReply], [DecodeReply]).
//
// [Code] is an rDSN error code (ERR_OK, ERR_INVALID_STATE, ...): comparable, an error, and
// named exactly as on the wire, so errors.Is works on wrapped errors and the names go out as
// Pegasus spells them. Codes this package does not know decode to [UnknownCodeError].
//
// Decoding never trusts a length it reads: headers, names and bodies are checked against
// the documented maxima before anything is allocated, and every decoder is fuzzed.
package wire
