package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/term"
)

// historyFile is where the interactive shell keeps its history, in the home directory.
const historyFile = ".pegasus_shell_history"

// maxHistory bounds the history kept in memory and on disk.
const maxHistory = 1000

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// interactive reads commands from a terminal with line editing (arrows, Ctrl-A/E/K/U/W),
// history (up/down, kept in ~/.pegasus_shell_history) and Tab completion of command names.
// The terminal is in raw mode only while a line is read, so Ctrl-C during a command
// interrupts the process as usual.
func (sh *shell) interactive(ctx context.Context, in *os.File, stdout io.Writer) error {
	fd := int(in.Fd())
	hist := loadHistory()
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, stdout}, "")
	t.History = hist
	t.AutoCompleteCallback = completeCommand
	fmt.Fprintf(stdout, "gopegasus %s shell, meta servers %s; \"help\" lists the commands, \"exit\" or Ctrl-D leaves.\n",
		Version, strings.Join(sh.metas, ","))
	defer hist.save()
	for !sh.quit && ctx.Err() == nil {
		if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 {
			t.SetSize(w, h)
		}
		prompt := "pegasus> "
		if sh.table != "" {
			prompt = "pegasus[" + sh.table + "]> "
		}
		t.SetPrompt(prompt)
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
		line, err := t.ReadLine()
		term.Restore(fd, old)
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(stdout)
			return nil
		}
		if err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
		sh.runLine(ctx, line)
	}
	return nil
}

// completeCommand completes the first word of a line to a command name on Tab.
func completeCommand(line string, pos int, key rune) (string, int, bool) {
	if key != '\t' || strings.ContainsAny(line[:pos], " \t") {
		return "", 0, false
	}
	var names []string
	for _, c := range shellCommands() {
		if strings.HasPrefix(c.name, line[:pos]) {
			names = append(names, c.name)
		}
	}
	if len(names) == 0 {
		return "", 0, false
	}
	sort.Strings(names)
	common := names[0]
	for _, n := range names[1:] {
		for !strings.HasPrefix(n, common) {
			common = common[:len(common)-1]
		}
	}
	if len(names) == 1 {
		common += " "
	}
	return common + line[pos:], len(common), true
}

// history is the shell's bounded history, most recent last, saved to a file on exit.
type history struct {
	path    string // "" when there is no home directory
	entries []string
}

var _ term.History = (*history)(nil)

func loadHistory() *history {
	h := &history{}
	home, err := os.UserHomeDir()
	if err != nil {
		return h
	}
	h.path = filepath.Join(home, historyFile)
	f, err := os.Open(h.path)
	if err != nil {
		return h
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			h.entries = append(h.entries, sc.Text())
		}
	}
	h.trim()
	return h
}

func (h *history) trim() {
	if n := len(h.entries) - maxHistory; n > 0 {
		h.entries = h.entries[n:]
	}
}

// Add implements term.History; repeating the last entry adds nothing.
func (h *history) Add(entry string) {
	if entry == "" || (len(h.entries) > 0 && h.entries[len(h.entries)-1] == entry) {
		return
	}
	h.entries = append(h.entries, entry)
	h.trim()
}

// Len implements term.History.
func (h *history) Len() int { return len(h.entries) }

// At implements term.History: 0 is the most recent entry.
func (h *history) At(i int) string { return h.entries[len(h.entries)-1-i] }

// save writes the history back; a history that cannot be saved is not worth an error.
func (h *history) save() {
	if h.path == "" || len(h.entries) == 0 {
		return
	}
	_ = os.WriteFile(h.path, []byte(strings.Join(h.entries, "\n")+"\n"), 0o600)
}
