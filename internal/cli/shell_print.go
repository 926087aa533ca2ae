package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// printer writes command results as aligned text tables or as JSON, one document per
// command. Keys and values go through [printer.bytes], so binary data stays readable.
type printer struct {
	w    io.Writer
	json bool
	hex  bool
}

// field is one named value of a result; a list of fields keeps its order in JSON.
type field struct {
	key string
	val any
}

// object is an ordered JSON object.
type object []field

// MarshalJSON implements json.Marshaler, keeping the fields' order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.val)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (p *printer) writeJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are marshalled; this is a bug
		panic(fmt.Sprintf("shell: marshal result: %v", err))
	}
	p.w.Write(append(b, '\n'))
}

// object prints one record: "key : value" lines, or a JSON object.
func (p *printer) object(fields []field) {
	if p.json {
		p.writeJSON(object(fields))
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 8, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t: %s\n", f.key, textOf(f.val))
	}
	tw.Flush()
}

// table prints rows under column headers followed by summary fields; in JSON it is one
// object holding the summary fields and the rows (as objects) under rowsKey.
func (p *printer) table(cols []string, rows [][]any, rowsKey string, summary []field) {
	if p.json {
		p.writeJSON(append(object{{rowsKey, rowsJSON(cols, rows)}}, summary...))
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = textOf(v)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	if len(summary) > 0 {
		fmt.Fprintln(p.w)
		p.object(summary)
	}
}

// message prints a short result ("OK"); in JSON {"result": msg}.
func (p *printer) message(msg string) {
	if p.json {
		p.writeJSON(object{{"result", msg}})
		return
	}
	fmt.Fprintln(p.w, msg)
}

// rowsJSON turns table rows into objects keyed by the column names.
func rowsJSON(cols []string, rows [][]any) []object {
	out := make([]object, 0, len(rows))
	for _, r := range rows {
		o := make(object, len(cols))
		for i, c := range cols {
			o[i] = field{c, r[i]}
		}
		out = append(out, o)
	}
	return out
}

func textOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		return v
	case []string:
		if len(v) == 0 {
			return "-"
		}
		return strings.Join(v, ",")
	default:
		return fmt.Sprint(v)
	}
}

// bytes renders a key or value: hexadecimal in hex mode, otherwise escaped.
func (p *printer) bytes(b []byte) string {
	if p.hex {
		return hex.EncodeToString(b)
	}
	return escapeBytes(b)
}

// escapeBytes renders b as printable ASCII: printable bytes as they are, backslash and
// double quote preceded by a backslash, tab, new line and carriage return as \t, \n, \r and
// every other byte as \xHH. [splitCommands] reads the same escapes back.
func escapeBytes(b []byte) string {
	var s strings.Builder
	s.Grow(len(b))
	for _, c := range b {
		switch {
		case c == '\\':
			s.WriteString(`\\`)
		case c == '"':
			s.WriteString(`\"`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\t':
			s.WriteString(`\t`)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			fmt.Fprintf(&s, `\x%02X`, c)
		}
	}
	return s.String()
}

// splitCommands splits an input line into commands (separated by unquoted ';') made of
// words (separated by unquoted white space). Double or single quotes group words; in and
// out of quotes a backslash escapes: \xHH, \n, \r, \t, \0, and any other character stands
// for itself (\\, \", \', \;, \ ). A word that is an empty pair of quotes is an empty word.
func splitCommands(line string) ([][]string, error) {
	var (
		cmds  [][]string
		words []string
		cur   []byte
		inTok bool
		quote byte
	)
	endWord := func() {
		if inTok {
			words = append(words, string(cur))
		}
		cur, inTok = nil, false
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("dangling backslash at the end of %q", line)
			}
			i++
			inTok = true
			switch e := line[i]; e {
			case 'n':
				cur = append(cur, '\n')
			case 'r':
				cur = append(cur, '\r')
			case 't':
				cur = append(cur, '\t')
			case '0':
				cur = append(cur, 0)
			case 'x', 'X':
				if i+2 >= len(line) {
					return nil, fmt.Errorf("\\x needs two hexadecimal digits in %q", line)
				}
				v, err := strconv.ParseUint(line[i+1:i+3], 16, 8)
				if err != nil {
					return nil, fmt.Errorf("\\x needs two hexadecimal digits in %q", line)
				}
				cur = append(cur, byte(v))
				i += 2
			default:
				cur = append(cur, e)
			}
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur = append(cur, c)
			}
		case c == '"' || c == '\'':
			quote, inTok = c, true
		case c == ';':
			endCmd()
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			endWord()
		default:
			cur, inTok = append(cur, c), true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, line)
	}
	endCmd()
	return cmds, nil
}

// optSpec declares one option of a shell command, getopt style: -x or --long, with a value
// ("-x V", "--long V", "--long=V") when hasArg.
type optSpec struct {
	short, long string
	hasArg      bool
}

// opts holds parsed options by long name, and the positional arguments in order.
type opts struct {
	vals map[string]string
	pos  []string
}

func (o *opts) has(long string) bool { _, ok := o.vals[long]; return ok }

func (o *opts) str(long, def string) string {
	if v, ok := o.vals[long]; ok {
		return v
	}
	return def
}

func (o *opts) int(long string, def int) (int, error) {
	v, ok := o.vals[long]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("--%s: %q is not an integer", long, v)
	}
	return n, nil
}

func (o *opts) bool(long string, def bool) (bool, error) {
	v, ok := o.vals[long]
	if !ok {
		return def, nil
	}
	if v == "" { // a flag without value
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("--%s: %q is not true or false", long, v)
	}
	return b, nil
}

// parseOpts separates options from positional arguments, which may come in any order, as
// getopt does; "--" ends the options.
func parseOpts(args []string, specs []optSpec) (*opts, error) {
	o := &opts{vals: make(map[string]string)}
	find := func(name string, long bool) (optSpec, bool) {
		for _, s := range specs {
			if (long && s.long == name) || (!long && s.short == name) {
				return s, true
			}
		}
		return optSpec{}, false
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.pos = append(o.pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			o.pos = append(o.pos, a)
			continue
		}
		long := strings.HasPrefix(a, "--")
		name, val, hasVal := strings.TrimLeft(a, "-"), "", false
		if long {
			name, val, hasVal = strings.Cut(name, "=")
		}
		s, ok := find(name, long)
		if !ok {
			return nil, fmt.Errorf("unknown option %s (\"--\" ends the options)", a)
		}
		if s.hasArg && !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("option %s needs a value", a)
			}
			i++
			val = args[i]
		}
		o.vals[s.long] = val
	}
	return o, nil
}
