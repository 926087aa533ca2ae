package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/bulkload"
	"github.com/gopegasus/pegasus/internal/config"
)

// runBulkLoad runs `pegasus bulkload prepare`: a CSV or JSON-lines file of records becomes
// the provider layout of a bulk load (package bulkload), partitioned as the table is.
func runBulkLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "prepare" {
		fmt.Fprintln(stderr, "usage: pegasus bulkload prepare [flags]  (pegasus bulkload prepare -h lists them)")
		return errUsage
	}
	fs := flag.NewFlagSet("bulkload prepare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	input := fs.String("input", "-", "the records: a file, or - for standard input")
	format := fs.String("format", bulkload.FormatCSV, "csv (hash_key,sort_key,value[,ttl_seconds]) or jsonl ({\"hash_key\",\"sort_key\",\"value\",\"ttl\"})")
	app := fs.String("app", "", "the table to load (required)")
	appID := fs.Int("app-id", 0, "the table's app id (default: asked of --metas)")
	partitions := fs.Int("partitions", 0, "the table's partition count (default: asked of --metas)")
	metas := fs.String("metas", defaultMetas, "meta servers, comma separated, to look the table up")
	cluster := fs.String("cluster", "", "the cluster_name of the load (required)")
	root := fs.String("root", "", "the remote_root_path of the load (required)")
	local := fs.String("local", "", "write to a local_service block service rooted at this directory")
	cfgFile := fs.String("config", "", "a config file with [block_service.<name>] sections (with --provider)")
	provider := fs.String("provider", "", "the block service section of --config to write to")
	tmp := fs.String("tmp", "", "where the SSTs are written before they are sent (default: the system's)")
	tf := newClientTLSFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return errors.Join(errUsage, err)
	}
	tlsCfg, err := tf.config()
	if err != nil {
		return err
	}
	if *app == "" || *cluster == "" || *root == "" || (*local == "") == (*provider == "") {
		fmt.Fprintln(stderr, "bulkload prepare: --app, --cluster, --root and one of --local or --config with --provider are required")
		return errUsage
	}
	var svc blockservice.Service
	if *local != "" {
		svc, err = blockservice.Open("local", map[string]string{"type": blockservice.TypeLocal, "args": *local})
	} else {
		reg := config.NewRegistry()
		blockservice.DefineConfig(reg)
		if err = reg.LoadFile(*cfgFile); err == nil {
			var ps *blockservice.Providers
			if ps, err = blockservice.FromConfig(reg); err == nil {
				svc, err = ps.Get(*provider)
			}
		}
	}
	if err != nil {
		return err
	}
	id, count := int32(*appID), int32(*partitions)
	if id == 0 || count == 0 {
		ac := admin.NewClient(admin.Config{MetaServers: splitList(*metas), TLS: tlsCfg})
		defer ac.Close()
		tables, err := ac.ListTables(ctx)
		if err != nil {
			return fmt.Errorf("look up table %q: %w", *app, err)
		}
		for _, t := range tables {
			if t.Name == *app && t.Status == "AS_AVAILABLE" {
				id, count = t.AppID, t.PartitionCount
			}
		}
		if id == 0 {
			return fmt.Errorf("table %q does not exist", *app)
		}
	}
	r := io.Reader(os.Stdin)
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	start := time.Now()
	st, err := bulkload.Prepare(ctx, r, svc, *root, *cluster, *app, id, count, &bulkload.PrepareOptions{Format: *format, TempDir: *tmp})
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "prepared %d records (%d replaced by later ones) of table %s (app id %d, %d partitions) in %v: %d bytes of SSTs under %s/%s/%s\n",
		st.Records, st.Replaced, *app, id, count, took.Round(time.Millisecond), st.Bytes, *root, *cluster, *app)
	return nil
}
