package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	pegasus "github.com/gopegasus/pegasus"
)

func dataCommands() []shellCommand {
	return []shellCommand{
		{name: "set", args: "HASH SORT VALUE [TTL_SECONDS]", summary: "store a record, with an optional time to live", needTable: true, run: (*shell).cmdSet},
		{name: "get", args: "HASH SORT", summary: "read a record", needTable: true, run: (*shell).cmdGet},
		{name: "del", args: "HASH SORT", summary: "delete a record", needTable: true, run: (*shell).cmdDel},
		{name: "exist", args: "HASH SORT", summary: "tell whether a record exists", needTable: true, run: (*shell).cmdExist},
		{name: "ttl", args: "HASH SORT", summary: "remaining time to live of a record in seconds (-1: none)", needTable: true, run: (*shell).cmdTTL},
		{name: "incr", args: "HASH SORT [INCREMENT]", summary: "add INCREMENT (default 1) to an integer record and print the new value", needTable: true, run: (*shell).cmdIncr},
		{name: "check_and_set", args: "HASH [-c CHECK_SORT] [-t CHECK_TYPE] [-o OPERAND] [-s SET_SORT] [-v SET_VALUE] [-l TTL_SECONDS] [-r]",
			summary: "set SET_SORT to SET_VALUE if the check on CHECK_SORT passes",
			detail: "-c/--check_sort_key, -t/--check_type, -o/--check_operand, -s/--set_sort_key,\n" +
				"-v/--set_value, -l/--set_value_ttl_seconds, -r/--return_check_value.\n" +
				"CHECK_TYPE: " + strings.Join(checkTypeNames(), ", ") + ".",
			needTable: true, run: (*shell).cmdCheckAndSet},
		{name: "multi_set", args: "HASH SORT VALUE [SORT VALUE...]", summary: "store several records of one hash key atomically", needTable: true, run: (*shell).cmdMultiSet},
		{name: "multi_get", args: "HASH [SORT...]", summary: "read the listed records of a hash key, or all of them (up to the server's limit)", needTable: true, run: (*shell).cmdMultiGet},
		{name: "multi_get_range", args: "HASH START STOP [-a BOOL] [-b BOOL] [-s FILTER_TYPE] [-y PATTERN] [-n MAX_COUNT] [-i] [-r]",
			summary: "read the records of a hash key between two sort keys",
			detail: "-a/--start_inclusive (default true), -b/--stop_inclusive (default false),\n" +
				"-s/--sort_key_filter_type anywhere|prefix|postfix, -y/--sort_key_filter_pattern,\n" +
				"-n/--max_count (default no limit beyond the server's), -i/--no_value, -r/--reverse.\n" +
				"An empty START or STOP (\"\") means the first or the last record.",
			needTable: true, run: (*shell).cmdMultiGetRange},
		{name: "multi_get_sortkeys", args: "HASH", summary: "list the sort keys of a hash key", needTable: true, run: (*shell).cmdMultiGetSortKeys},
		{name: "multi_del", args: "HASH SORT [SORT...]", summary: "delete several records of one hash key atomically", needTable: true, run: (*shell).cmdMultiDel},
		{name: "del_range", aliases: []string{"multi_del_range"}, args: "HASH START STOP [-a BOOL] [-b BOOL] [-s FILTER_TYPE] [-y PATTERN]",
			summary:   "delete the records of a hash key between two sort keys",
			detail:    "-a/--start_inclusive (default true), -b/--stop_inclusive (default false),\n-s/--sort_key_filter_type, -y/--sort_key_filter_pattern.",
			needTable: true, run: (*shell).cmdDelRange},
		{name: "sortkey_count", args: "HASH", summary: "count the records of a hash key", needTable: true, run: (*shell).cmdSortKeyCount},
		{name: "scan", aliases: []string{"hash_scan"}, args: "HASH [START STOP] [-a BOOL] [-b BOOL] [-s FILTER_TYPE] [-y PATTERN] [-v FILTER_TYPE] [-z PATTERN] [-n MAX_COUNT] [-i]",
			summary: "print the records of one hash key, in sort key order",
			detail: "-a/--start_inclusive, -b/--stop_inclusive, -s/--sort_key_filter_type,\n" +
				"-y/--sort_key_filter_pattern, -v/--value_filter_type, -z/--value_filter_pattern\n" +
				"(the value filter runs in the shell), -n/--max_count, -i/--no_value.\n" +
				"FILTER_TYPE: anywhere, prefix, postfix or no_filter.",
			needTable: true, run: (*shell).cmdScan},
		{name: "full_scan", args: "[-h FILTER_TYPE] [-x PATTERN] [-s FILTER_TYPE] [-y PATTERN] [-v FILTER_TYPE] [-z PATTERN] [-n MAX_COUNT] [-i]",
			summary: "print every record of the table (in no particular order)",
			detail: "-h/--hash_key_filter_type, -x/--hash_key_filter_pattern, -s/--sort_key_filter_type,\n" +
				"-y/--sort_key_filter_pattern, -v/--value_filter_type, -z/--value_filter_pattern,\n" +
				"-n/--max_count, -i/--no_value.",
			needTable: true, run: (*shell).cmdFullScan},
		{name: "count_data", args: "[-h FILTER_TYPE] [-x PATTERN] [-s FILTER_TYPE] [-y PATTERN] [-v FILTER_TYPE] [-z PATTERN] [-b BATCH] [-d] [-a]",
			summary: "count the records of the table, with progress on stderr every second",
			detail: "Filters as full_scan; -b/--max_batch_count records per request (default 1000),\n" +
				"-d/--diff_hash_key also counts distinct hash keys, -a/--stat_size also sums key and value sizes.",
			needTable: true, run: (*shell).cmdCountData},
		{name: "copy_data", args: "-a TARGET_TABLE [-c TARGET_METAS] [-h FILTER_TYPE] [-x PATTERN] [-s FILTER_TYPE] [-y PATTERN] [-v FILTER_TYPE] [-z PATTERN] [-b BATCH] [-e]",
			summary: "copy the records of the table into another table, with progress on stderr",
			detail: "-a/--target_app_name the target table, -c/--target_cluster_name the target's meta\n" +
				"servers (comma separated; default this cluster), filters as full_scan,\n" +
				"-b/--max_batch_count records per scan request, -e/--no_ttl do not copy the records'\n" +
				"time to live (without -e each record's TTL is read and kept).",
			needTable: true, run: (*shell).cmdCopyData},
	}
}

// key reads a key or value argument: hexadecimal in hex mode, otherwise the word's bytes.
func (sh *shell) key(s string) ([]byte, error) {
	if !sh.out.hex {
		return []byte(s), nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("hex mode: %q is not hexadecimal", s)
	}
	return b, nil
}

func (sh *shell) keys(ss []string) ([][]byte, error) {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		b, err := sh.key(s)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// opCtx bounds a single-record command by the shell's timeout.
func (sh *shell) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, sh.timeout)
}

// hashSort reads exactly HASH SORT.
func (sh *shell) hashSort(args []string, usage string) ([]byte, []byte, error) {
	if len(args) != 2 {
		return nil, nil, usageErr(usage)
	}
	k, err := sh.keys(args)
	if err != nil {
		return nil, nil, err
	}
	return k[0], k[1], nil
}

func (sh *shell) cmdSet(ctx context.Context, args []string) error {
	if len(args) != 3 && len(args) != 4 {
		return usageErr("set HASH SORT VALUE [TTL_SECONDS]")
	}
	k, err := sh.keys(args[:3])
	if err != nil {
		return err
	}
	var ttl time.Duration
	if len(args) == 4 {
		n, err := strconv.Atoi(args[3])
		if err != nil || n < 0 {
			return fmt.Errorf("TTL_SECONDS %q is not a non-negative integer", args[3])
		}
		ttl = time.Duration(n) * time.Second
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.tbl.SetTTL(ctx, k[0], k[1], k[2], ttl); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdGet(ctx context.Context, args []string) error {
	h, s, err := sh.hashSort(args, "get HASH SORT")
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	v, err := sh.tbl.Get(ctx, h, s)
	if err != nil {
		return err
	}
	fields := []field{{"hash_key", sh.out.bytes(h)}, {"sort_key", sh.out.bytes(s)}, {"found", v != nil}}
	if v != nil {
		fields = append(fields, field{"value", sh.out.bytes(v)})
	}
	if !sh.out.json && v == nil {
		sh.out.message("not found")
		return nil
	}
	if !sh.out.json {
		sh.out.table([]string{"hash_key", "sort_key", "value"}, [][]any{{fields[0].val, fields[1].val, fields[3].val}}, "", nil)
		return nil
	}
	sh.out.object(fields)
	return nil
}

func (sh *shell) cmdDel(ctx context.Context, args []string) error {
	h, s, err := sh.hashSort(args, "del HASH SORT")
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.tbl.Del(ctx, h, s); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdExist(ctx context.Context, args []string) error {
	h, s, err := sh.hashSort(args, "exist HASH SORT")
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	ok, err := sh.tbl.Exist(ctx, h, s)
	if err != nil {
		return err
	}
	sh.out.object([]field{{"hash_key", sh.out.bytes(h)}, {"sort_key", sh.out.bytes(s)}, {"exist", ok}})
	return nil
}

func (sh *shell) cmdTTL(ctx context.Context, args []string) error {
	h, s, err := sh.hashSort(args, "ttl HASH SORT")
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	ttl, err := sh.tbl.TTL(ctx, h, s)
	if err != nil {
		return err
	}
	if ttl == -2 {
		if sh.out.json {
			sh.out.object([]field{{"hash_key", sh.out.bytes(h)}, {"sort_key", sh.out.bytes(s)}, {"found", false}})
		} else {
			sh.out.message("not found")
		}
		return nil
	}
	var v any = ttl
	if ttl == -1 && !sh.out.json {
		v = "infinite"
	}
	sh.out.object([]field{{"hash_key", sh.out.bytes(h)}, {"sort_key", sh.out.bytes(s)}, {"found", true}, {"ttl_seconds", v}})
	return nil
}

func (sh *shell) cmdIncr(ctx context.Context, args []string) error {
	if len(args) != 2 && len(args) != 3 {
		return usageErr("incr HASH SORT [INCREMENT]")
	}
	h, s, err := sh.hashSort(args[:2], "incr HASH SORT [INCREMENT]")
	if err != nil {
		return err
	}
	inc := int64(1)
	if len(args) == 3 {
		if inc, err = strconv.ParseInt(args[2], 10, 64); err != nil {
			return fmt.Errorf("INCREMENT %q is not an integer", args[2])
		}
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	v, err := sh.tbl.Incr(ctx, h, s, inc)
	if err != nil {
		return err
	}
	sh.out.object([]field{{"hash_key", sh.out.bytes(h)}, {"sort_key", sh.out.bytes(s)}, {"new_value", v}})
	return nil
}

var checkTypes = []struct {
	name string
	t    pegasus.CheckType
}{
	{"no_check", pegasus.CheckTypeNoCheck},
	{"not_exist", pegasus.CheckTypeValueNotExist},
	{"not_exist_or_empty", pegasus.CheckTypeValueNotExistOrEmpty},
	{"exist", pegasus.CheckTypeValueExist},
	{"not_empty", pegasus.CheckTypeValueNotEmpty},
	{"match_anywhere", pegasus.CheckTypeMatchAnywhere},
	{"match_prefix", pegasus.CheckTypeMatchPrefix},
	{"match_postfix", pegasus.CheckTypeMatchPostfix},
	{"bytes_less", pegasus.CheckTypeBytesLess},
	{"bytes_less_or_equal", pegasus.CheckTypeBytesLessOrEqual},
	{"bytes_equal", pegasus.CheckTypeBytesEqual},
	{"bytes_greater_or_equal", pegasus.CheckTypeBytesGreaterOrEqual},
	{"bytes_greater", pegasus.CheckTypeBytesGreater},
	{"int_less", pegasus.CheckTypeIntLess},
	{"int_less_or_equal", pegasus.CheckTypeIntLessOrEqual},
	{"int_equal", pegasus.CheckTypeIntEqual},
	{"int_greater_or_equal", pegasus.CheckTypeIntGreaterOrEqual},
	{"int_greater", pegasus.CheckTypeIntGreater},
}

func checkTypeNames() []string {
	var n []string
	for _, c := range checkTypes {
		n = append(n, c.name)
	}
	return n
}

func (sh *shell) cmdCheckAndSet(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{
		{"c", "check_sort_key", true}, {"t", "check_type", true}, {"o", "check_operand", true},
		{"s", "set_sort_key", true}, {"v", "set_value", true}, {"l", "set_value_ttl_seconds", true},
		{"r", "return_check_value", false},
	})
	if err != nil {
		return err
	}
	if len(o.pos) != 1 || !o.has("check_type") || !o.has("set_value") {
		return usageErr("check_and_set HASH -t CHECK_TYPE -v SET_VALUE [-c CHECK_SORT] [-o OPERAND] [-s SET_SORT] [-l TTL_SECONDS] [-r]")
	}
	ct, ok := pegasus.CheckType(-1), false
	for _, c := range checkTypes {
		if c.name == o.str("check_type", "") {
			ct, ok = c.t, true
		}
	}
	if !ok {
		return fmt.Errorf("check type %q: want one of %s", o.str("check_type", ""), strings.Join(checkTypeNames(), ", "))
	}
	k, err := sh.keys([]string{o.pos[0], o.str("check_sort_key", ""), o.str("check_operand", ""), o.str("set_sort_key", ""), o.str("set_value", "")})
	if err != nil {
		return err
	}
	ttl, err := o.int("set_value_ttl_seconds", 0)
	if err != nil {
		return err
	}
	ret, err := o.bool("return_check_value", false)
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	res, err := sh.tbl.CheckAndSet(ctx, k[0], k[1], ct, k[2], k[3], k[4], &pegasus.CheckAndSetOptions{SetValueTTLSeconds: ttl, ReturnCheckValue: ret})
	if err != nil {
		return err
	}
	fields := []field{{"hash_key", sh.out.bytes(k[0])}, {"set_succeed", res.SetSucceed}}
	if res.CheckValueReturned {
		fields = append(fields, field{"check_value_exist", res.CheckValueExist})
		if res.CheckValueExist {
			fields = append(fields, field{"check_value", sh.out.bytes(res.CheckValue)})
		}
	}
	sh.out.object(fields)
	return nil
}

func (sh *shell) cmdMultiSet(ctx context.Context, args []string) error {
	if len(args) < 3 || len(args)%2 != 1 {
		return usageErr("multi_set HASH SORT VALUE [SORT VALUE...]")
	}
	k, err := sh.keys(args)
	if err != nil {
		return err
	}
	var sorts, values [][]byte
	for i := 1; i < len(k); i += 2 {
		sorts, values = append(sorts, k[i]), append(values, k[i+1])
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.tbl.MultiSet(ctx, k[0], sorts, values); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

// records prints the records of one hash key.
func (sh *shell) records(hashKey []byte, kvs []*pegasus.KeyValue, allFetched, noValue bool) {
	cols := []string{"hash_key", "sort_key", "value"}
	if noValue {
		cols = cols[:2]
	}
	rows := make([][]any, 0, len(kvs))
	for _, kv := range kvs {
		r := []any{sh.out.bytes(hashKey), sh.out.bytes(kv.SortKey)}
		if !noValue {
			r = append(r, sh.out.bytes(kv.Value))
		}
		rows = append(rows, r)
	}
	sh.out.table(cols, rows, "records", []field{{"count", len(kvs)}, {"all_fetched", allFetched}})
}

func (sh *shell) cmdMultiGet(ctx context.Context, args []string) error {
	if len(args) < 1 {
		return usageErr("multi_get HASH [SORT...]")
	}
	k, err := sh.keys(args)
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	o := *pegasus.DefaultMultiGetOptions
	o.MaxFetchCount, o.MaxFetchSize = 0, 0
	kvs, all, err := sh.tbl.MultiGetOpt(ctx, k[0], k[1:], &o)
	if err != nil {
		return err
	}
	sh.records(k[0], kvs, all, false)
	return nil
}

func (sh *shell) cmdMultiGetSortKeys(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageErr("multi_get_sortkeys HASH")
	}
	h, err := sh.key(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	o := *pegasus.DefaultMultiGetOptions
	o.MaxFetchCount, o.MaxFetchSize, o.NoValue = 0, 0, true
	kvs, all, err := sh.tbl.MultiGetOpt(ctx, h, nil, &o)
	if err != nil {
		return err
	}
	sh.records(h, kvs, all, true)
	return nil
}

var filterSpecs = []optSpec{
	{"h", "hash_key_filter_type", true}, {"x", "hash_key_filter_pattern", true},
	{"s", "sort_key_filter_type", true}, {"y", "sort_key_filter_pattern", true},
	{"v", "value_filter_type", true}, {"z", "value_filter_pattern", true},
}

var rangeSpecs = []optSpec{{"a", "start_inclusive", true}, {"b", "stop_inclusive", true}}

func parseFilterType(s string) (pegasus.FilterType, error) {
	switch s {
	case "", "no_filter":
		return pegasus.FilterTypeNoFilter, nil
	case "anywhere", "match_anywhere":
		return pegasus.FilterTypeMatchAnywhere, nil
	case "prefix", "match_prefix":
		return pegasus.FilterTypeMatchPrefix, nil
	case "postfix", "match_postfix":
		return pegasus.FilterTypeMatchPostfix, nil
	}
	return 0, fmt.Errorf("filter type %q: want anywhere, prefix, postfix or no_filter", s)
}

// filter reads the filter named what ("hash_key", "sort_key" or "value") from the options.
func (sh *shell) filter(o *opts, what string) (pegasus.Filter, error) {
	t, err := parseFilterType(o.str(what+"_filter_type", ""))
	if err != nil {
		return pegasus.Filter{}, err
	}
	p, err := sh.key(o.str(what+"_filter_pattern", ""))
	if err != nil {
		return pegasus.Filter{}, err
	}
	if t == pegasus.FilterTypeNoFilter && len(p) > 0 {
		return pegasus.Filter{}, fmt.Errorf("a %s filter pattern needs a filter type", what)
	}
	return pegasus.Filter{Type: t, Pattern: p}, nil
}

// matches applies a filter in the shell (Pegasus scanners filter values there too).
func matches(f pegasus.Filter, b []byte) bool {
	switch f.Type {
	case pegasus.FilterTypeMatchAnywhere:
		return strings.Contains(string(b), string(f.Pattern))
	case pegasus.FilterTypeMatchPrefix:
		return strings.HasPrefix(string(b), string(f.Pattern))
	case pegasus.FilterTypeMatchPostfix:
		return strings.HasSuffix(string(b), string(f.Pattern))
	}
	return true
}

func (sh *shell) cmdMultiGetRange(ctx context.Context, args []string) error {
	o, err := parseOpts(args, append(append([]optSpec{{"n", "max_count", true}, {"i", "no_value", false}, {"r", "reverse", false}}, rangeSpecs...), filterSpecs[2:4]...))
	if err != nil {
		return err
	}
	if len(o.pos) != 3 {
		return usageErr("multi_get_range HASH START STOP [options]; \"help multi_get_range\" lists them")
	}
	k, err := sh.keys(o.pos)
	if err != nil {
		return err
	}
	mo := *pegasus.DefaultMultiGetOptions
	mo.MaxFetchSize = 0
	if mo.StartInclusive, err = o.bool("start_inclusive", true); err != nil {
		return err
	}
	if mo.StopInclusive, err = o.bool("stop_inclusive", false); err != nil {
		return err
	}
	if mo.MaxFetchCount, err = o.int("max_count", 0); err != nil {
		return err
	}
	if mo.SortKeyFilter, err = sh.filter(o, "sort_key"); err != nil {
		return err
	}
	mo.NoValue, mo.Reverse = o.has("no_value"), o.has("reverse")
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	kvs, all, err := sh.tbl.MultiGetRangeOpt(ctx, k[0], k[1], k[2], &mo)
	if err != nil {
		return err
	}
	sh.records(k[0], kvs, all, mo.NoValue)
	return nil
}

func (sh *shell) cmdMultiDel(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return usageErr("multi_del HASH SORT [SORT...]")
	}
	k, err := sh.keys(args)
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.tbl.MultiDel(ctx, k[0], k[1:]); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdDelRange(ctx context.Context, args []string) error {
	o, err := parseOpts(args, append(append([]optSpec{}, rangeSpecs...), filterSpecs[2:4]...))
	if err != nil {
		return err
	}
	if len(o.pos) != 3 {
		return usageErr("del_range HASH START STOP [-a BOOL] [-b BOOL] [-s FILTER_TYPE] [-y PATTERN]")
	}
	k, err := sh.keys(o.pos)
	if err != nil {
		return err
	}
	do := *pegasus.DefaultDelRangeOptions
	if do.StartInclusive, err = o.bool("start_inclusive", true); err != nil {
		return err
	}
	if do.StopInclusive, err = o.bool("stop_inclusive", false); err != nil {
		return err
	}
	if do.SortKeyFilter, err = sh.filter(o, "sort_key"); err != nil {
		return err
	}
	if err := sh.tbl.DelRangeOpt(ctx, k[0], k[1], k[2], &do); err != nil {
		if next := do.NextSortKey(); next != nil {
			return fmt.Errorf("%w (records from sort key %s on may remain)", err, sh.out.bytes(next))
		}
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdSortKeyCount(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageErr("sortkey_count HASH")
	}
	h, err := sh.key(args[0])
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	n, err := sh.tbl.SortKeyCount(ctx, h)
	if err != nil {
		return err
	}
	sh.out.object([]field{{"hash_key", sh.out.bytes(h)}, {"count", n}})
	return nil
}

// scanSettings are the options shared by scan, full_scan, count_data and copy_data.
type scanSettings struct {
	opts     *pegasus.ScannerOptions
	value    pegasus.Filter // applied in the shell
	maxCount int            // 0: no limit
}

func (sh *shell) scanSettings(o *opts) (*scanSettings, error) {
	so := pegasus.NewScanOptions()
	var err error
	if so.HashKeyFilter, err = sh.filter(o, "hash_key"); err != nil {
		return nil, err
	}
	if so.SortKeyFilter, err = sh.filter(o, "sort_key"); err != nil {
		return nil, err
	}
	vf, err := sh.filter(o, "value")
	if err != nil {
		return nil, err
	}
	if so.StartInclusive, err = o.bool("start_inclusive", true); err != nil {
		return nil, err
	}
	if so.StopInclusive, err = o.bool("stop_inclusive", false); err != nil {
		return nil, err
	}
	if so.BatchSize, err = o.int("max_batch_count", 1000); err != nil {
		return nil, err
	}
	max, err := o.int("max_count", 0)
	if err != nil {
		return nil, err
	}
	so.NoValue = o.has("no_value") && vf.Type == pegasus.FilterTypeNoFilter
	return &scanSettings{opts: so, value: vf, maxCount: max}, nil
}

// printScan prints what scanners return until they are done or maxCount records printed.
func (sh *shell) printScan(ctx context.Context, scanners []pegasus.Scanner, st *scanSettings, noValue bool) error {
	defer func() {
		for _, s := range scanners {
			s.Close()
		}
	}()
	cols := []string{"hash_key", "sort_key", "value"}
	if noValue {
		cols = cols[:2]
	}
	var rows [][]any
	for _, s := range scanners {
		for st.maxCount <= 0 || len(rows) < st.maxCount {
			done, h, k, v, err := s.Next(ctx)
			if err != nil {
				return err
			}
			if done {
				break
			}
			if !matches(st.value, v) {
				continue
			}
			r := []any{sh.out.bytes(h), sh.out.bytes(k)}
			if !noValue {
				r = append(r, sh.out.bytes(v))
			}
			rows = append(rows, r)
		}
	}
	sh.out.table(cols, rows, "records", []field{{"count", len(rows)}})
	return nil
}

func (sh *shell) cmdScan(ctx context.Context, args []string) error {
	o, err := parseOpts(args, append(append([]optSpec{{"n", "max_count", true}, {"i", "no_value", false}}, rangeSpecs...), filterSpecs[2:]...))
	if err != nil {
		return err
	}
	if len(o.pos) != 1 && len(o.pos) != 3 {
		return usageErr("scan HASH [START STOP] [options]; \"help scan\" lists them")
	}
	k, err := sh.keys(o.pos)
	if err != nil {
		return err
	}
	start, stop := []byte{}, []byte{}
	if len(k) == 3 {
		start, stop = k[1], k[2]
	}
	st, err := sh.scanSettings(o)
	if err != nil {
		return err
	}
	s, err := sh.tbl.GetScanner(ctx, k[0], start, stop, st.opts)
	if err != nil {
		return err
	}
	return sh.printScan(ctx, []pegasus.Scanner{s}, st, o.has("no_value"))
}

// allScanners returns one scanner per partition of the table in use.
func (sh *shell) allScanners(ctx context.Context, so *pegasus.ScannerOptions) ([]pegasus.Scanner, error) {
	return sh.tbl.GetUnorderedScanners(ctx, 1<<16, so)
}

func (sh *shell) cmdFullScan(ctx context.Context, args []string) error {
	o, err := parseOpts(args, append([]optSpec{{"n", "max_count", true}, {"i", "no_value", false}}, filterSpecs...))
	if err != nil {
		return err
	}
	if len(o.pos) != 0 {
		return usageErr("full_scan [options]; \"help full_scan\" lists them")
	}
	st, err := sh.scanSettings(o)
	if err != nil {
		return err
	}
	scanners, err := sh.allScanners(ctx, st.opts)
	if err != nil {
		return err
	}
	return sh.printScan(ctx, scanners, st, o.has("no_value"))
}
