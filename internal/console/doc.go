// Package console is the web console of a gopegasus cluster, served by every meta server on
// its own port: HTML pages for people and the JSON API they are drawn from.
//
//	/console                    the cluster: metas and the leader, replica servers alive or
//	                            dead with their replica and primary counts and disk use,
//	                            partition health, charts of QPS and p99 latency
//	/console/tables             every table: partitions, health, QPS and p99 per operation, size
//	/console/table?name=T       one table: each partition's primary, secondaries, ballot,
//	                            health, size and QPS, and the table's own charts
//	/console/operations         the long operations in progress
//	/console/api/cluster, /console/api/tables, /console/api/table?name=T,
//	/console/api/operations     what those pages show, as JSON
//
// The console is read-only. A meta that is not the leader answers every console path with a
// 307 to the leader (as it does the /meta queries), or 503 while no meta serves; the page's
// script follows a leader change by reloading itself.
//
// # Where the numbers come from
//
// Cluster state (metas, replica servers and their liveness, tables, partition
// configurations, health, the long operations the meta drives) comes from the meta leader
// at each API request, through [Source]: it is as fresh as the leader's own view.
//
// Load and size come from the replica servers: a sampler goroutine, owned by the console
// and started and stopped with the meta server ([Console.Start], [Console.Close]), reads
// every alive replica server's /metrics every [Config].Interval (10 s by default, the
// length of the servers' metric windows) while its meta leads: each partition replica's
// <op>_qps and <op>_latency_ns p99 and its rdb_disk_bytes (asked with compact=true and
// omit_zero=true, the server's extensions for a small answer, a metric left out being 0; a
// server that refuses them, one from before them, is asked without them for 10 minutes),
// and, for the tables with a manual compaction requested, /replica/manual_compaction. It also asks every other meta
// for /version, to show whether it answers. It keeps the last answer of each server and a
// bounded history of [Config].History points for the charts (cluster-wide and per table):
// reads and writes per second, and the worst p99 among the partitions that served requests
// of the kind in the window. The history lives in the leader's memory only: a new leader
// starts an empty one, and a meta that stops leading drops its own.
//
// # Page
//
// One HTML document (the embedded assets, the stylesheet and the script inlined, about
// 20 KB, 7 KB gzipped) serves every page; its script picks the page from the path, fetches
// the page's API every 3 s and redraws it. Charts are SVG it draws itself: two lines over a
// time axis take some sixty lines of script, where a charting library would weigh more
// than the whole page and be one more thing to vet and keep up to date. Nothing is fetched
// from elsewhere, which the page's Content-Security-Policy enforces.
package console
