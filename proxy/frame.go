package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// bufferSize is the size of each connection's read and write buffers.
const bufferSize = 8 << 10

// maxMessageLen is the largest message the proxy accepts, PostgreSQL's own limit (PQ_LARGE_MESSAGE_LIMIT).
const maxMessageLen = 1 << 30

// maxAuthMessageLen is the largest message accepted before authentication completes: PostgreSQL's
// PG_MAX_AUTH_TOKEN_LENGTH, which bounds a SASL or password message. A client nobody knows yet cannot
// make the proxy hold more.
const maxAuthMessageLen = 65535

// frameReader reads protocol messages as raw frames: a type byte, a length, and a body the caller either
// reads (body), passes on without looking at it (copyBody), or drops (skipBody). Nothing is decoded unless
// the caller needs it, and small bodies are returned without copying.
type frameReader struct {
	r       *bufio.Reader
	scratch []byte
	// limit is the largest body header accepts: maxAuthMessageLen until authenticated, then
	// maxMessageLen (authenticated).
	limit int
	// peak is the largest scratch buffer ever allocated.
	peak int
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, bufferSize), limit: maxAuthMessageLen}
}

// authenticated lifts the message size limit to PostgreSQL's own, once the client is known.
func (f *frameReader) authenticated() { f.limit = maxMessageLen }

// header reads the next message's type and body length.
func (f *frameReader) header() (typ byte, n int, err error) {
	h, err := f.r.Peek(5)
	if err != nil {
		return 0, 0, err
	}
	typ = h[0]
	l := binary.BigEndian.Uint32(h[1:5])
	if l < 4 || int64(l)-4 > int64(f.limit) {
		return 0, 0, fmt.Errorf("%w: message %q has invalid length %d", errProtocolViolation, typ, l)
	}
	_, _ = f.r.Discard(5)
	return typ, int(l - 4), nil
}

// body reads a body of n bytes. The slice is valid until the next call on f.
func (f *frameReader) body(n int) ([]byte, error) {
	if n <= f.r.Size() {
		b, err := f.r.Peek(n)
		if err != nil {
			return nil, unexpectedEOF(err)
		}
		_, _ = f.r.Discard(n)
		return b, nil
	}
	// The declared length is the client's claim: the buffer grows with the bytes that arrive (doubling,
	// so a large message costs O(log n) copies), never ahead of them.
	f.scratch = f.scratch[:0]
	for len(f.scratch) < n {
		if len(f.scratch) == cap(f.scratch) {
			grown := make([]byte, len(f.scratch), min(n, max(2*cap(f.scratch), 2*bufferSize)))
			copy(grown, f.scratch)
			f.scratch = grown
			f.peak = max(f.peak, cap(grown))
		}
		m, err := f.r.Read(f.scratch[len(f.scratch):cap(f.scratch)])
		f.scratch = f.scratch[:len(f.scratch)+m]
		if err != nil && len(f.scratch) < n {
			return nil, unexpectedEOF(err)
		}
	}
	return f.scratch, nil
}

// releaseScratch drops a large scratch buffer so that one huge message does not pin its memory for the
// rest of the session.
func (f *frameReader) releaseScratch() {
	if cap(f.scratch) > bufferSize {
		f.scratch = nil
	}
}

// copyBody writes the header of a message of type typ and its n-byte body to w, streaming the body
// through the read buffer.
func (f *frameReader) copyBody(w *frameWriter, typ byte, n int) error {
	writeHeader(w, typ, n)
	for n > 0 {
		chunk, err := f.r.Peek(min(n, max(f.r.Buffered(), 1)))
		if err != nil {
			return unexpectedEOF(err)
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		_, _ = f.r.Discard(len(chunk))
		n -= len(chunk)
	}
	return nil
}

// peekName returns the string a body of n bytes starts with (a Parse's statement name), without consuming
// anything. It must end within the read buffer.
func (f *frameReader) peekName(n int) (string, error) {
	b, err := f.r.Peek(min(n, f.r.Size()))
	if err != nil {
		return "", unexpectedEOF(err)
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", fatalf(codeProtocolViolation, "protocol_violation", "the statement name of a Parse message is over %d bytes", f.r.Size())
	}
	return string(b[:i]), nil
}

// skipBody drops an n-byte body.
func (f *frameReader) skipBody(n int) error {
	_, err := f.r.Discard(n)
	return unexpectedEOF(err)
}

// messageBuffered reports whether a whole message is already buffered, that is, whether the next read
// cannot block. Writers flush before a read that can.
func (f *frameReader) messageBuffered() bool {
	if f.r.Buffered() < 5 {
		return false
	}
	h, _ := f.r.Peek(5)
	return f.r.Buffered() >= 1+int(binary.BigEndian.Uint32(h[1:5]))
}

// frameWriter buffers the messages written to a connection until Flush. Its buffer comes from a pool at
// the first write after a Flush and goes back at the Flush, so an idle session holds none: a session
// costs its buffers only while a request is in flight.
type frameWriter struct {
	w   io.Writer
	buf *bufio.Writer
}

var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufferSize) }}

func newFrameWriter(w io.Writer) *frameWriter { return &frameWriter{w: w} }

// Write buffers p. Errors stick, as in a bufio.Writer, and surface at Flush.
func (f *frameWriter) Write(p []byte) (int, error) {
	if f.buf == nil {
		f.buf = writerPool.Get().(*bufio.Writer)
		f.buf.Reset(f.w)
	}
	return f.buf.Write(p)
}

// Flush writes what is buffered and returns the buffer to the pool. After an error the buffer is kept,
// holding the error.
func (f *frameWriter) Flush() error {
	if f.buf == nil {
		return nil
	}
	if err := f.buf.Flush(); err != nil {
		return err
	}
	f.buf.Reset(nil)
	writerPool.Put(f.buf)
	f.buf = nil
	return nil
}

// writeHeader writes a message header for a body of n bytes.
func writeHeader(w *frameWriter, typ byte, n int) {
	var h [5]byte
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(n+4))
	_, _ = w.Write(h[:]) // errors stick in the writer and surface at Flush
}

// writeFrame writes a whole message.
func writeFrame(w *frameWriter, typ byte, body []byte) {
	writeHeader(w, typ, len(body))
	_, _ = w.Write(body)
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
