// Package hotkey finds the hash keys that take a partition's traffic: a [Detector] runs
// Apache Pegasus's two-phase hot-key detection on request (RPC_DETECT_HOTKEY), and a [TopK]
// keeps an always-on estimate of a partition's most requested hash keys.
//
// # Detection
//
// A Detector is started, stopped and queried by an operator, and analysed periodically by its
// owner (Pegasus analyses every hotkey_analyse_time_interval_s, 10 s). While it runs, every
// request of its type is captured with [Detector.Capture]:
//
//   - coarse phase: each hash key's weight is added to one of Buckets counters (37, chosen by
//     the key's hash). An analysis takes the counts of the interval and resets them; when the
//     largest bucket is an outlier among them — its distance to the mean of the others is at
//     least BucketThreshold (7) standard deviations of the others, or the others are all
//     equal and it is larger — that bucket is hot and the fine phase starts;
//   - fine phase: only the keys of the hot bucket are captured, each key with its summed
//     weight, at most MaxCaptures (1,000) captures and MaxCaptureBytes (1 MiB) of distinct
//     keys per interval (the rest are dropped, as Pegasus drops what its bounded queue cannot
//     take). An analysis takes them; the heaviest key is the hot key when fewer than three
//     keys were seen, or when it is an outlier by KeyThreshold (5) standard deviations;
//   - finished: the hot key is kept until the detection is stopped.
//
// A detection that found nothing after Timeout (150 s) from its start stops by itself at the
// next analysis. Memory is bounded: Buckets counters during the coarse phase, at most
// MaxCaptureBytes of keys during the fine phase, nothing while stopped.
//
// # Top-k
//
// A TopK is a Space-Saving summary (Metwally et al.) of a fixed number of counters: a key
// already counted adds its weight; a new key takes the counter of the smallest count and adds
// to it, so any key whose share of the traffic exceeds 1/capacity is always held, with a
// count that overestimates by at most the count it took over. Keys are held up to
// [MaxKeyBytes] (longer ones by that prefix, their length and their hash), so a TopK never
// holds more than capacity × MaxKeyBytes of keys. Counting goes by windows: the owner calls
// [TopK.Rotate] every window, and [TopK.Top] reports the last complete window and the
// current one together.
//
// Both types are safe for concurrent use; their capture methods do not allocate in the
// steady state (a Detector's fine phase copies each new key once).
package hotkey
