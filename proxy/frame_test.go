package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// frame returns a message header declaring an n-byte body, followed by body.
func frame(typ byte, n int, body []byte) []byte {
	h := make([]byte, 5, 5+len(body))
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(n+4))
	return append(h, body...)
}

// TestFrameReaderLimits checks the size limit before and after authentication, and that a body is never
// allocated ahead of the bytes that arrive: a client declaring 1 GiB and sending 100 bytes costs about
// what it sent.
func TestFrameReaderLimits(t *testing.T) {
	f := newFrameReader(bytes.NewReader(frame('p', maxAuthMessageLen+1, nil)))
	if _, _, err := f.header(); !errors.Is(err, errProtocolViolation) {
		t.Errorf("a %d-byte message before authentication: %v, want a protocol violation", maxAuthMessageLen+1, err)
	}
	f = newFrameReader(bytes.NewReader(frame('p', maxAuthMessageLen, bytes.Repeat([]byte{'x'}, maxAuthMessageLen))))
	typ, n, err := f.header()
	if err != nil || typ != 'p' || n != maxAuthMessageLen {
		t.Fatalf("header of a %d-byte message: %q %d %v", maxAuthMessageLen, typ, n, err)
	}
	if body, err := f.body(n); err != nil || len(body) != n || body[n-1] != 'x' {
		t.Fatalf("body of a %d-byte message: %d bytes, %v", n, len(body), err)
	}

	f = newFrameReader(bytes.NewReader(frame('Q', maxMessageLen, bytes.Repeat([]byte{'x'}, 100))))
	f.authenticated()
	if _, n, err = f.header(); err != nil || n != maxMessageLen {
		t.Fatalf("after authentication, a 1 GiB message header: %d %v", n, err)
	}
	if _, err := f.body(n); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a 1 GiB body of which 100 bytes arrive: %v, want an unexpected EOF", err)
	}
	if c := cap(f.scratch); c > 2*bufferSize {
		t.Errorf("reading 100 bytes of a declared 1 GiB body allocated %d bytes", c)
	}
}
