package diagnostics

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Log appends events to a JSON-lines file. It is safe for concurrent use.
type Log struct {
	mu      sync.Mutex
	w       io.Writer
	closer  io.Closer // nil for standard output
	now     func() time.Time
	dropped atomic.Uint64
}

// Open opens the log at path for appending, creating it with mode 0600 (events name workspaces); "-" is
// standard output.
func Open(path string) (*Log, error) {
	if path == "-" {
		return &Log{w: os.Stdout, now: time.Now}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening diagnostics log: %w", err)
	}
	return &Log{w: f, closer: f, now: time.Now}, nil
}

// Report writes e, filling Version and, when zero, Time. It never returns an error and never blocks on a
// failing file: an event that cannot be written is counted in Dropped.
func (l *Log) Report(e Event) {
	e.Version = FormatVersion
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	line, err := json.Marshal(e)
	if err != nil {
		l.dropped.Add(1)
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	// One write per event: with O_APPEND the line lands whole even when other processes append too.
	if _, err := l.w.Write(line); err != nil {
		l.dropped.Add(1)
	}
}

// Dropped returns how many events could not be written.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Close closes the file.
func (l *Log) Close() error {
	if l.closer == nil {
		return nil
	}
	return l.closer.Close()
}
