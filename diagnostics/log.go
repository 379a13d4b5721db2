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

// Queue and write limits of a Log.
const (
	// maxQueueBytes bounds the memory held by events not yet written (queued, or in a Write that has not
	// returned). Past it the disk is not keeping up, and events are dropped rather than held: a stuck disk
	// must cost a bounded amount of memory, not grow until the proxy is killed.
	maxQueueBytes = 4 << 20
	// maxWriteBytes bounds how many queued lines go into one Write. 4096 is PIPE_BUF on Linux: when the
	// log is standard output and that is a pipe, a write up to it is not interleaved with other writers of
	// the pipe, as a single line was not before lines were batched. (With O_APPEND, a write to a regular
	// file lands whole whatever its size.) A longer line is written alone.
	maxWriteBytes = 4096
)

// Log appends events to a JSON-lines file. It is safe for concurrent use.
//
// Report never waits for the disk: it encodes the event in the caller and queues the line, and one writer
// goroutine appends what is queued, as soon as it is queued. A query must never stall on a slow, full or
// vanished disk, so an event that cannot be queued (the queue is full) or written (the write fails) is
// counted in Dropped, which operators see as a metric, and the log goes on with the next event.
//
// Each Write carries whole lines only, so with O_APPEND an event lands whole even when other processes
// append to the same file. Reopen starts a new file at the same path, for logrotate.
type Log struct {
	now     func() time.Time
	dropped atomic.Uint64
	// path is the file Reopen opens again; "" for standard output and writers given to newLog.
	path string

	// fileMu guards the destination. The writer holds it across each Write, and Reopen and Close swap and
	// close the file under it, so that a file is never closed under a Write in progress.
	fileMu     sync.Mutex
	w          io.Writer
	closer     io.Closer // nil for standard output
	fileClosed bool

	// mu guards the queue and the counters Flush waits on. work wakes the writer when a line is queued or
	// the log closes; done wakes Flush when lines have been written or dropped.
	mu      sync.Mutex
	work    *sync.Cond
	done    *sync.Cond
	queue   [][]byte
	pending int    // bytes queued or in a Write that has not returned, bounded by maxQueueBytes
	queued  uint64 // lines ever accepted into the queue
	settled uint64 // lines of those the writer has written or dropped
	closing bool
	exited  chan struct{} // closed when the writer goroutine returns

	closeOnce sync.Once
	closeErr  error
}

// Open opens the log at path for appending, creating it with mode 0600 (events name workspaces); "-" is
// standard output. It starts the writer goroutine that Close stops.
func Open(path string) (*Log, error) {
	if path == "-" {
		return newLog(os.Stdout, nil), nil
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	l := newLog(f, f)
	l.path = path
	return l, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening diagnostics log: %w", err)
	}
	return f, nil
}

// newLog returns a Log writing to w from its own goroutine; Close closes closer, which may be nil. Reopen
// does nothing on it: there is no path to open again.
func newLog(w io.Writer, closer io.Closer) *Log {
	l := &Log{w: w, closer: closer, now: time.Now, exited: make(chan struct{})}
	l.work = sync.NewCond(&l.mu)
	l.done = sync.NewCond(&l.mu)
	go l.run()
	return l
}

// Report queues e for writing, filling Version and, when zero, Time. It never returns an error and never
// waits for the disk: an event that cannot be queued or written, or that is reported after Close, is
// counted in Dropped.
//
// e is encoded before Report returns, so the caller may reuse it and the slices it holds.
func (l *Log) Report(e Event) {
	e.Version = FormatVersion
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	line, err := json.Marshal(e)
	// The report command refuses a file with a line over maxLineBytes as not a diagnostics log: one huge
	// event must not make the whole log unreadable.
	if err != nil || len(line) >= maxLineBytes {
		l.dropped.Add(1)
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	if l.closing || l.pending+len(line) > maxQueueBytes {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.queue = append(l.queue, line)
	l.pending += len(line)
	l.queued++
	l.mu.Unlock()
	l.work.Signal()
}

// run is the writer goroutine: it takes everything queued and writes it, in Writes of whole lines, until
// Close has been called and the queue is empty.
func (l *Log) run() {
	defer close(l.exited)
	var spare [][]byte // the previous batch's slice, reused as the next queue
	var buf []byte
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closing {
			l.work.Wait()
		}
		if len(l.queue) == 0 {
			l.mu.Unlock()
			return
		}
		batch := l.queue
		l.queue = spare
		l.mu.Unlock()

		for rest := batch; len(rest) > 0; {
			k, size := 1, len(rest[0])
			for k < len(rest) && size+len(rest[k]) <= maxWriteBytes {
				size += len(rest[k])
				k++
			}
			lines := rest[:k]
			rest = rest[k:]
			p := lines[0]
			if k > 1 {
				buf = buf[:0]
				for _, line := range lines {
					buf = append(buf, line...)
				}
				p = buf
			}
			if whole := l.write(p, lines); whole < k {
				l.dropped.Add(uint64(k - whole))
			}
			l.mu.Lock()
			l.pending -= size
			l.settled += uint64(k)
			l.mu.Unlock()
			l.done.Broadcast()
		}
		clear(batch) // let the written lines be collected
		spare = batch[:0]
	}
}

// write writes p, the concatenation of lines, and returns how many of lines were written whole. A write
// cut short by an error may leave part of a line in the file; that event is counted as dropped, and the
// report command skips the line.
func (l *Log) write(p []byte, lines [][]byte) (whole int) {
	l.fileMu.Lock()
	n, err := l.w.Write(p)
	l.fileMu.Unlock()
	if err == nil && n >= len(p) {
		return len(lines)
	}
	for _, line := range lines {
		if n < len(line) {
			break
		}
		n -= len(line)
		whole++
	}
	return whole
}

// Flush blocks until every event reported before it was called has been written or dropped. It waits for
// the disk as the writer does, for as long as a Write takes. It returns at once after Close.
func (l *Log) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for target := l.queued; l.settled < target; {
		l.done.Wait()
	}
}

// Reopen closes the log file and opens the file at its path again, creating it: after logrotate renames
// the log, new events go to a new file at the path. Events written before the switch are in the old file;
// none is lost or written twice, since no Write is in progress while the file is switched. If the file
// cannot be opened, Reopen returns the error and events keep going to the old file.
//
// It does nothing for standard output, which has no path, or after Close: a SIGHUP that comes during
// shutdown is not an error.
func (l *Log) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.fileMu.Lock()
	if l.fileClosed {
		l.fileMu.Unlock()
		_ = f.Close()
		return nil
	}
	old := l.closer
	l.w, l.closer = f, f
	l.fileMu.Unlock()
	// Closed outside fileMu: closing can take as long as a write on a network filesystem, and the writer
	// no longer uses the old file.
	if err := old.Close(); err != nil {
		return fmt.Errorf("closing the rotated diagnostics log: %w", err)
	}
	return nil
}

// Dropped returns how many events could not be written: the queue was full, the write failed, or they
// were reported after Close.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Close writes what is queued, stops the writer goroutine and closes the file (not standard output). Like
// Flush it waits for the disk. Later calls return what the first returned; a later Report is dropped.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closing = true
		l.mu.Unlock()
		l.work.Signal()
		<-l.exited
		l.fileMu.Lock()
		defer l.fileMu.Unlock()
		l.fileClosed = true
		if l.closer != nil {
			l.closeErr = l.closer.Close()
		}
	})
	return l.closeErr
}
