package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gopegasus/pegasus/admin"
)

func hotkeyCommands() []shellCommand {
	return []shellCommand{
		{name: "detect_hotkey", args: "-a APP_ID -p PARTITION -t read|write -c start|stop|query -d HOST:PORT",
			summary: "start, stop or query the detection of a partition's read or write hot key on a replica server",
			detail: "Long forms: --app_id, --partition_index, --hotkey_type, --hotkey_action, --address. Send it to\n" +
				"the partition's primary (app TABLE -d lists them): it sees the reads and the writes, a secondary\n" +
				"only the writes. A detection stops by itself when it finds nothing within\n" +
				"max_seconds_to_detect_hotkey (150 s); stop it before starting another.",
			run: (*shell).cmdDetectHotkey},
		{name: "hotkeys", args: "[TABLE] [-t read|write] [-k COUNT]",
			summary: "the hottest hash keys of every partition of a table (the table in use by default), from each primary's top-k",
			detail: "-t/--hotkey_type only one type (default both); -k/--count keys per partition and type (default 3).\n" +
				"Requests are estimated over the last 10 to 20 s; share is of the partition's requests of the type.",
			run: (*shell).cmdHotkeys},
	}
}

func (sh *shell) cmdDetectHotkey(ctx context.Context, args []string) error {
	const usage = "detect_hotkey -a APP_ID -p PARTITION -t read|write -c start|stop|query -d HOST:PORT"
	o, err := parseOpts(args, []optSpec{{"a", "app_id", true}, {"p", "partition_index", true},
		{"t", "hotkey_type", true}, {"c", "hotkey_action", true}, {"d", "address", true}})
	if err != nil {
		return err
	}
	if len(o.pos) != 0 || !o.has("app_id") || !o.has("partition_index") || !o.has("hotkey_type") ||
		!o.has("hotkey_action") || !o.has("address") {
		return usageErr(usage)
	}
	appID, err := strconv.ParseInt(o.str("app_id", ""), 10, 32)
	if err != nil {
		return fmt.Errorf("%q is an invalid num", o.str("app_id", ""))
	}
	pidx, err := strconv.ParseInt(o.str("partition_index", ""), 10, 32)
	if err != nil {
		return fmt.Errorf("%q is an invalid num", o.str("partition_index", ""))
	}
	typName, actName, addr := o.str("hotkey_type", ""), o.str("hotkey_action", ""), o.str("address", "")
	var typ admin.HotkeyType
	switch strings.ToLower(typName) {
	case "read":
		typ = admin.HotkeyRead
	case "write":
		typ = admin.HotkeyWrite
	default:
		return fmt.Errorf("%q is an invalid hotkey type (should be 'read' or 'write')", typName)
	}
	var act admin.DetectAction
	switch strings.ToLower(actName) {
	case "start":
		act = admin.DetectStart
	case "stop":
		act = admin.DetectStop
	case "query":
		act = admin.DetectQuery
	default:
		return fmt.Errorf("%q is an invalid hotkey detect action (should be 'start', 'stop' or 'query')", actName)
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	res, err := sh.admin.DetectHotkey(ctx, addr, int32(appID), int32(pidx), typ, act)
	var he *admin.HotkeyError
	switch {
	case errors.As(err, &he):
		return fmt.Errorf("Hotkey detection performed failed, in %d.%d, error_hint:%s %s", appID, pidx, he.Code, he.Hint)
	case err != nil:
		return fmt.Errorf("Hotkey detection rpc sending failed, in %d.%d, error_hint:%w", appID, pidx, err)
	}
	switch act {
	case admin.DetectStart:
		sh.out.message(fmt.Sprintf("Hotkey detection is starting, using 'detect_hotkey -a %d -p %d -t %s -c query -d %s' to get the result later",
			appID, pidx, typName, addr))
	case admin.DetectStop:
		sh.out.message("Hotkey detection is stopped now")
	case admin.DetectQuery:
		if sh.out.json {
			sh.out.object([]field{{"app_id", appID}, {"partition_index", pidx}, {"hotkey_type", typ.String()}, {"hotkey", res}})
			return nil
		}
		sh.out.message(fmt.Sprintf("Find %s hotkey in %d.%d result:%s", typName, appID, pidx, res))
	}
	return nil
}

func (sh *shell) cmdHotkeys(ctx context.Context, args []string) error {
	const usage = "hotkeys [TABLE] [-t read|write] [-k COUNT]"
	o, err := parseOpts(args, []optSpec{{"t", "hotkey_type", true}, {"k", "count", true}})
	if err != nil {
		return err
	}
	table := sh.table
	switch len(o.pos) {
	case 0:
		if table == "" {
			return errors.New("no table: name one, or \"use\" one first")
		}
	case 1:
		table = o.pos[0]
	default:
		return usageErr(usage)
	}
	k, err := o.int("count", 3)
	if err != nil {
		return err
	}
	if k <= 0 {
		return fmt.Errorf("--count: %d is not positive", k)
	}
	types := []admin.HotkeyType{admin.HotkeyRead, admin.HotkeyWrite}
	switch t := strings.ToLower(o.str("hotkey_type", "")); t {
	case "":
	case "read":
		types = types[:1]
	case "write":
		types = types[1:]
	default:
		return fmt.Errorf("%q is an invalid hotkey type (should be 'read' or 'write')", t)
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	parts, err := sh.admin.TableHotKeys(ctx, table, k)
	if err != nil {
		return err
	}
	cols := []string{"pidx", "primary", "type", "rank", "hash_key", "requests", "qps", "share"}
	var rows [][]any
	failed := 0
	for _, p := range parts {
		if p.Err != nil {
			failed++
			rows = append(rows, []any{p.Index, p.Server, "", "", "error: " + p.Err.Error(), "", "", ""})
			continue
		}
		for _, t := range types {
			l := p.Read
			if t == admin.HotkeyWrite {
				l = p.Write
			}
			for i, hk := range l.Keys {
				name := sh.out.bytes(hk.HashKey)
				if hk.Len > len(hk.HashKey) {
					name += fmt.Sprintf("...(%d bytes)", hk.Len)
				}
				qps, share := "", ""
				if s := l.Span.Seconds(); s > 0 {
					qps = strconv.FormatFloat(float64(hk.Requests)/s, 'f', 1, 64)
				}
				if l.Total > 0 {
					share = strconv.FormatFloat(100*float64(hk.Requests)/float64(l.Total), 'f', 1, 64) + "%"
				}
				rows = append(rows, []any{p.Index, p.Server, t.String(), i + 1, name, hk.Requests, qps, share})
			}
		}
	}
	sh.out.table(cols, rows, "hotkeys", []field{{"table", table}, {"partitions", len(parts)}, {"failed", failed}})
	if failed > 0 {
		return fmt.Errorf("hotkeys: %d of %d partitions could not be asked", failed, len(parts))
	}
	return nil
}
