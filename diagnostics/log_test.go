package diagnostics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// parseEvents parses r as a log, returning an error for a line that is not a whole event.
func parseEvents(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLineBytes)
	var events []Event
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return events, fmt.Errorf("line %d is not a whole event: %w\n%s", len(events)+1, err, sc.Bytes())
		}
		if e.Version != FormatVersion || e.Time.IsZero() {
			return events, fmt.Errorf("line %d: version %d, time %v", len(events)+1, e.Version, e.Time)
		}
		events = append(events, e)
	}
	return events, sc.Err()
}

func readEvents(t *testing.T, r io.Reader) []Event {
	t.Helper()
	events, err := parseEvents(r)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func readEventFile(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readEvents(t, f)
}

// connIDs returns the ConnID of each event, which the tests use to number them.
func connIDs(events []Event) []uint64 {
	ids := make([]uint64, len(events))
	for i, e := range events {
		ids[i] = e.ConnID
	}
	return ids
}

// span returns the ConnIDs from..to.
func span(from, to uint64) []uint64 {
	var ids []uint64
	for id := from; id <= to; id++ {
		ids = append(ids, id)
	}
	return ids
}

// TestLogConcurrentReports: events reported from many goroutines are all in the file after Flush, one
// whole line each, with the log still open.
func TestLogConcurrentReports(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	path := filepath.Join(t.TempDir(), "diag.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 250
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Lines of different lengths, so that batches mix them; the total stays under
				// maxQueueBytes, so that none is dropped however far the writer falls behind.
				l.Report(Event{Type: EventRefused, Severity: SeverityWarning, Reason: "r",
					Workspace: strings.Repeat("w", (w*each+i)%100), ConnID: uint64(w*each + i + 1)})
			}
		})
	}
	wg.Wait()
	l.Flush()
	ids := connIDs(readEventFile(t, path))
	slices.Sort(ids)
	if !slices.Equal(ids, span(1, writers*each)) {
		t.Errorf("after Flush the file has %d events, want each of 1..%d once", len(ids), writers*each)
	}
	if l.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", l.Dropped())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, leaks)
}

// TestLogReopenAfterRename: as logrotate does, the log is renamed and the proxy told to reopen it; events
// before go to the renamed file, events after to a new file at the path, none lost or duplicated.
func TestLogReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "diag.jsonl")
	rotated := path + ".1"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for id := range uint64(10) {
		l.Report(Event{Type: EventRefused, ConnID: id + 1})
	}
	l.Flush()
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	for id := range uint64(10) {
		l.Report(Event{Type: EventRefused, ConnID: id + 11})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := connIDs(readEventFile(t, rotated)); !slices.Equal(got, span(1, 10)) {
		t.Errorf("rotated file has events %v, want 1..10", got)
	}
	if got := connIDs(readEventFile(t, path)); !slices.Equal(got, span(11, 20)) {
		t.Errorf("new file has events %v, want 11..20", got)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("new file: %v, mode %v; want mode 0600", err, info.Mode().Perm())
	}
	if l.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", l.Dropped())
	}
}

// TestLogReopenFailureKeepsOldFile: when the path cannot be opened again, Reopen says so and events keep
// going to the file the log has.
func TestLogReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "diag.jsonl")
	rotated := path + ".1"
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Report(Event{Type: EventRefused, ConnID: 1})
	l.Flush()
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	// A directory in the way: opening it for writing fails even for root, unlike a permission.
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil {
		t.Error("Reopen of a path that is a directory succeeded")
	}
	l.Report(Event{Type: EventRefused, ConnID: 2})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := connIDs(readEventFile(t, rotated)); !slices.Equal(got, span(1, 2)) {
		t.Errorf("old file has events %v, want 1..2", got)
	}
	if l.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", l.Dropped())
	}
}

// TestLogReportDoesNotBlockOnStuckWriter: a disk that stops answering costs dropped events, not blocked
// queries, and every event is either written or counted.
func TestLogReportDoesNotBlockOnStuckWriter(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	pr, pw := io.Pipe() // nobody reads yet: the first Write blocks
	l := newLog(pw, pw)
	e := Event{Type: EventRefused, Workspace: strings.Repeat("w", 1000)}
	// Every line is over 1000 bytes, so these cannot all fit in the queue.
	const n = maxQueueBytes/1000 + 100
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		for range n {
			l.Report(e)
		}
	}()
	select {
	case <-reported:
	case <-time.After(10 * time.Second): // a safety net, not a timing assertion: Report must not block at all
		t.Fatal("Report blocked on a writer that does not return")
	}
	dropped := l.Dropped()
	if dropped == 0 {
		t.Fatalf("%d events reported into a full queue, none dropped", n)
	}

	// Unblock the writer: what was queued is written, and Close closes the pipe.
	var written []Event
	var readErr error
	read := make(chan struct{})
	go func() {
		defer close(read)
		written, readErr = parseEvents(pr)
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	<-read
	if readErr != nil {
		t.Fatal(readErr)
	}
	if len(written) == 0 || uint64(len(written))+l.Dropped() != n || l.Dropped() != dropped {
		t.Errorf("%d events written, %d dropped (%d before the writer was unblocked); want %d in all",
			len(written), l.Dropped(), dropped, n)
	}
	goleak.VerifyNone(t, leaks)
}

// scriptWriter records what is written to it, with each Write going through fn.
type scriptWriter struct {
	mu     sync.Mutex
	writes [][]byte
	fn     func(call int, p []byte) (int, error)
}

func (w *scriptWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	call := len(w.writes)
	w.writes = append(w.writes, slices.Clone(p))
	w.mu.Unlock()
	return w.fn(call, p)
}

func (w *scriptWriter) calls() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes)
}

var errDiskFull = errors.New("no space left on device")

// TestLogCountsWriteErrors: events a failed Write carried are dropped, and the log goes on writing.
func TestLogCountsWriteErrors(t *testing.T) {
	var (
		mu   sync.Mutex
		fail = true
		ok   bytes.Buffer // what was written while the disk worked
	)
	w := &scriptWriter{fn: func(_ int, p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return 0, errDiskFull
		}
		return ok.Write(p)
	}}
	l := newLog(w, nil)
	for range 3 {
		l.Report(Event{Type: EventRefused})
	}
	l.Flush()
	if l.Dropped() != 3 {
		t.Errorf("Dropped() = %d after 3 failed events, want 3", l.Dropped())
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	l.Report(Event{Type: EventRefused, ConnID: 1})
	l.Report(Event{Type: EventRefused, ConnID: 2})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := connIDs(readEvents(t, &ok)); l.Dropped() != 3 || !slices.Equal(got, span(1, 2)) {
		t.Errorf("after the disk recovered: Dropped() = %d, written %v; want 3 and events 1, 2", l.Dropped(), got)
	}
}

// TestLogShortWriteDropsCutLines: a Write cut short counts as dropped only the lines it did not write
// whole, and every Write carries whole lines.
func TestLogShortWriteDropsCutLines(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	w := &scriptWriter{fn: func(call int, p []byte) (int, error) {
		switch call {
		case 0:
			close(entered)
			<-release
			return len(p), nil
		case 1:
			return len(p) - 1, errDiskFull // all but the last line's newline
		}
		return len(p), nil
	}}
	l := newLog(w, nil)
	defer l.Close()
	l.Report(Event{Type: EventRefused, ConnID: 1})
	<-entered
	// Queued while the first Write is in progress, these three go in the next Write together.
	for id := range uint64(3) {
		l.Report(Event{Type: EventRefused, ConnID: id + 2})
	}
	close(release)
	l.Flush()
	writes := w.calls()
	if len(writes) != 2 {
		t.Fatalf("%d writes, want 2", len(writes))
	}
	for i, want := range [][]uint64{{1}, {2, 3, 4}} {
		if got := connIDs(readEvents(t, bytes.NewReader(writes[i]))); !slices.Equal(got, want) {
			t.Errorf("write %d has events %v, want %v", i, got, want)
		}
		if !bytes.HasSuffix(writes[i], []byte("}\n")) {
			t.Errorf("write %d does not end a line: %q", i, writes[i])
		}
	}
	if l.Dropped() != 1 {
		t.Errorf("Dropped() = %d after a write cut in its last line, want 1", l.Dropped())
	}
}

// TestLogAfterClose: a late Report, as from a session still ending at shutdown, is dropped, not a panic;
// Close, Flush and Reopen can be called again.
func TestLogAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "diag.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Report(Event{Type: EventRefused, ConnID: 1})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Report(Event{Type: EventRefused, ConnID: 2})
	l.Flush()
	if err := l.Reopen(); err != nil {
		t.Errorf("Reopen after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if l.Dropped() != 1 {
		t.Errorf("Dropped() = %d after one Report after Close, want 1", l.Dropped())
	}
	if got := connIDs(readEventFile(t, path)); !slices.Equal(got, []uint64{1}) {
		t.Errorf("file has events %v, want only 1", got)
	}
}

// TestLogDropsOversizedEvent: an event too long for the report command to read is dropped, so that it does
// not make the whole log unreadable.
func TestLogDropsOversizedEvent(t *testing.T) {
	var buf bytes.Buffer
	l := newLog(&buf, nil)
	l.Report(Event{Type: EventRefused, Statement: strings.Repeat("x", maxLineBytes)})
	l.Report(Event{Type: EventRefused, ConnID: 1})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := connIDs(readEvents(t, &buf)); l.Dropped() != 1 || !slices.Equal(got, []uint64{1}) {
		t.Errorf("Dropped() = %d, written %v; want 1 and only event 1", l.Dropped(), got)
	}
}

// TestLogBatchesWholeLines: lines queued while a Write is in progress go out together, in Writes of whole
// lines no longer than maxWriteBytes (a longer line alone), in the order they were reported.
func TestLogBatchesWholeLines(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	w := &scriptWriter{fn: func(call int, p []byte) (int, error) {
		if call == 0 {
			close(entered)
			<-release
		}
		return len(p), nil
	}}
	l := newLog(w, nil)
	l.Report(Event{Type: EventRefused, ConnID: 1})
	<-entered
	for id := range uint64(60) {
		e := Event{Type: EventRefused, ConnID: id + 2, Workspace: strings.Repeat("w", 200)}
		if id == 30 {
			e.Workspace = strings.Repeat("w", 2*maxWriteBytes)
		}
		l.Report(e)
	}
	close(release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	batched := false
	for i, p := range w.calls() {
		events := readEvents(t, bytes.NewReader(p))
		if !bytes.HasSuffix(p, []byte("}\n")) || len(p) > maxWriteBytes && len(events) > 1 {
			t.Errorf("write %d: %d bytes, %d events", i, len(p), len(events))
		}
		batched = batched || len(events) > 1
		ids = append(ids, connIDs(events)...)
	}
	if !slices.Equal(ids, span(1, 61)) || !batched || l.Dropped() != 0 {
		t.Errorf("written %v, batched %v, dropped %d; want events 1..61 in order, in shared writes, none dropped",
			ids, batched, l.Dropped())
	}
}
