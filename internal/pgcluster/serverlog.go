package pgcluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// tailSize bounds how much of the server log a startup error quotes: enough
// for the FATAL line and its context, not a whole log.
const tailSize = 4 << 10

// serverLog is where the postmaster's output goes, and where Start reads it
// back from to explain a failed start.
//
// By default the output goes to a file (pg_ctl -l). With Options.Log set, each
// start attempt instead gets a fresh pipe as pg_ctl's stdout, which the
// postmaster inherits, and a goroutine forwards it line by line to
// Options.Log while keeping the last tailSize bytes. A fresh pipe per attempt
// means a failed attempt's output ends with EOF once its postmaster exits, so
// Start can quote all of it without guessing how long to wait.
type serverLog struct {
	path string    // file mode: the file given to pg_ctl -l
	dst  io.Writer // pipe mode: Options.Log

	mu    sync.Mutex
	tail  []byte // last tailSize bytes forwarded
	total int64  // bytes forwarded so far

	r    *os.File      // read end of the current attempt's pipe
	done chan struct{} // closed when forwarding from r hits EOF
}

func newFileLog(path string) *serverLog {
	return &serverLog{path: path}
}

func newPipeLog(dst io.Writer) *serverLog {
	return &serverLog{dst: dst}
}

// openAttempt returns the stdout to give pg_ctl for one start attempt, or nil
// in file mode (pg_ctl -l then redirects the postmaster itself). The caller
// passes it to endAttempt once pg_ctl has returned.
func (l *serverLog) openAttempt() (*os.File, error) {
	if l.dst == nil {
		return nil, nil
	}
	if err := l.close(); err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating server log pipe: %w", err)
	}
	l.r, l.done = r, make(chan struct{})
	go l.forward(r, l.done)
	return w, nil
}

// endAttempt drops our copy of the write end: from now on only the postmaster
// (if it is running) holds it, so forwarding ends when the server exits.
func (l *serverLog) endAttempt(w *os.File) {
	if w != nil {
		_ = w.Close()
	}
}

// forward copies whole lines to dst, so a line-oriented writer (a logger)
// never sees half a line. It keeps draining when dst fails: a full pipe would
// block the postmaster.
func (l *serverLog) forward(r io.Reader, done chan struct{}) {
	defer close(done)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			_, _ = l.dst.Write(line)
			l.record(line)
		}
		if err != nil {
			return
		}
	}
}

func (l *serverLog) record(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total += int64(len(b))
	l.tail = append(l.tail, b...)
	if n := len(l.tail); n > tailSize {
		l.tail = append(l.tail[:0], l.tail[n-tailSize:]...)
	}
}

// settle waits up to d for the current attempt's output to be fully forwarded,
// which happens once its postmaster has exited.
func (l *serverLog) settle(d time.Duration) bool {
	if l.done == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.done:
		return true
	case <-t.C:
		return false
	}
}

// mark returns a position in the log; since(mark) returns what came after it,
// so each start attempt reports only its own failure.
func (l *serverLog) mark() int64 {
	if l.path != "" {
		fi, err := os.Stat(l.path)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// since returns the end of the log written after mark, at most tailSize bytes,
// starting at a line boundary.
func (l *serverLog) since(mark int64) string {
	var b []byte
	if l.path != "" {
		f, err := os.Open(l.path)
		if err != nil {
			return fmt.Sprintf("(server log unreadable: %v)", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Size()-mark > tailSize {
			mark = fi.Size() - tailSize
		}
		if _, err := f.Seek(mark, io.SeekStart); err != nil {
			return fmt.Sprintf("(server log unreadable: %v)", err)
		}
		b, _ = io.ReadAll(io.LimitReader(f, tailSize))
	} else {
		l.mu.Lock()
		n := max(min(int(l.total-mark), len(l.tail)), 0)
		b = append([]byte(nil), l.tail[len(l.tail)-n:]...)
		l.mu.Unlock()
	}
	s := string(b)
	if len(b) == tailSize {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return strings.TrimSpace(s)
}

// close ends forwarding. The server must have stopped; if something still
// holds the pipe after a grace period, the read end is closed anyway so no
// goroutine outlives the cluster.
func (l *serverLog) close() error {
	if l.r == nil {
		return nil
	}
	var err error
	if !l.settle(10 * time.Second) {
		err = errors.New("server log pipe still open 10s after shutdown")
	}
	err = errors.Join(err, l.r.Close())
	<-l.done
	l.r, l.done = nil, nil
	return err
}
