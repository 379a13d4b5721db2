package proxy

import (
	"errors"
	"testing"
	"time"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// op is one event in a queue scenario: a push of a frontend message, or a backend message arriving.
type op struct {
	push    kind
	refused bool
	backend byte // 0 for a push; 'E' for ErrorResponse, 'Z' for ReadyForQuery, else a step
	status  byte // ReadyForQuery status
}

func push(k kind) op          { return op{push: k} }
func refused(k kind) op       { return op{push: k, refused: true} }
func recv(typ byte) op        { return op{backend: typ} }
func readyFor(status byte) op { return op{backend: 'Z', status: status} }

var testRefusal = &rewrite.Error{Code: "42501", Reason: "test", Text: "refused"}

// play runs ops and returns the refusals substituted, in order, and the first error.
func play(q *queue, ops []op) (substituted int, err error) {
	for _, o := range ops {
		switch o.backend {
		case 0:
			var r *rewrite.Error
			if o.refused {
				r = testRefusal
			}
			_, err = q.push(entry{kind: o.push, refusal: r})
		case 'E':
			if failed, _ := q.fail(); failed != nil && failed.refusal != nil {
				substituted++
			}
		case 'Z':
			_, _, err = q.ready(o.status)
		default:
			_, err = q.step(o.backend)
		}
		if err != nil {
			return substituted, err
		}
	}
	return substituted, nil
}

func TestQueue(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ops         []op
		substituted int
		wantErr     error
		skipping    bool
		pending     int
	}{
		{name: "simple query", ops: []op{push(kindQuery), recv('T'), recv('D'), recv('C'), readyFor('I')}},
		{name: "multi-statement query with an error", ops: []op{push(kindQuery), recv('C'), recv('E'), readyFor('I')}},
		{name: "extended query", ops: []op{
			push(kindParse), push(kindBind), push(kindDescribe), push(kindExecute), push(kindSync),
			recv('1'), recv('2'), recv('T'), recv('D'), recv('C'), readyFor('I')}},
		{name: "statement describe has a parameter description", ops: []op{
			push(kindParse), push(kindDescribe), push(kindSync), recv('1'), recv('t'), recv('n'), readyFor('I')}},
		{name: "portal suspended and close", ops: []op{
			push(kindBind), push(kindExecute), push(kindClose), push(kindSync),
			recv('2'), recv('D'), recv('s'), recv('3'), readyFor('T')}},
		{name: "copy in extended protocol", ops: []op{
			push(kindParse), push(kindBind), push(kindExecute), push(kindSync),
			recv('1'), recv('2'), recv('H'), recv('d'), recv('c'), recv('C'), readyFor('I')}},
		{name: "copy in simple protocol", ops: []op{push(kindQuery), recv('G'), recv('C'), readyFor('I')}},
		{name: "error skips the rest of the pipeline up to Sync", ops: []op{
			push(kindParse), push(kindBind), push(kindExecute), push(kindParse), push(kindBind), push(kindExecute), push(kindSync),
			push(kindQuery),
			recv('1'), recv('E'), readyFor('I'),
			recv('C'), readyFor('I')}},
		{name: "error before Sync is sent: later messages are not queued", ops: []op{
			push(kindParse), push(kindBind), recv('E'), push(kindExecute), push(kindQuery), push(kindSync), readyFor('E')}},
		{name: "error before Sync leaves the queue skipping", ops: []op{push(kindParse), recv('E'), push(kindBind)}, skipping: true},
		{name: "flushed pipeline, error, then Sync", ops: []op{
			push(kindParse), push(kindBind), push(kindExecute), recv('1'), recv('2'), recv('E'), push(kindSync), readyFor('E')}},
		{name: "refused Parse", ops: []op{
			push(kindParse), refused(kindParse), push(kindBind), push(kindExecute), push(kindSync),
			recv('1'), recv('E'), readyFor('T')}, substituted: 1},
		{name: "refused Query", ops: []op{refused(kindQuery), recv('E'), readyFor('E')}, substituted: 1},
		{name: "a refusal after an earlier error is never reported", ops: []op{
			push(kindParse), refused(kindParse), push(kindSync), recv('E'), readyFor('I')}},
		{name: "refused message while skipping is not queued", ops: []op{
			push(kindParse), recv('E'), refused(kindParse), push(kindSync), readyFor('I')}},
		{name: "two refused queries in a row", ops: []op{
			refused(kindQuery), refused(kindQuery), recv('E'), readyFor('I'), recv('E'), readyFor('I')}, substituted: 2},
		{name: "failed commit at Sync", ops: []op{push(kindExecute), push(kindSync), recv('C'), recv('E'), readyFor('I')}},
		{name: "error with nothing pending passes through", ops: []op{recv('E')}},
		{name: "pending entries are counted", ops: []op{push(kindParse), push(kindSync), recv('1')}, pending: 1},

		{name: "row description with nothing pending", ops: []op{recv('T')}, wantErr: errDesync},
		{name: "ReadyForQuery answering a Parse", ops: []op{push(kindParse), readyFor('I')}, wantErr: errDesync},
		{name: "BindComplete answering a Parse", ops: []op{push(kindParse), recv('2')}, wantErr: errDesync},
		{name: "a poison that did not fail", ops: []op{refused(kindParse), recv('1')}, wantErr: errDesync},
		{name: "a poison query that returned rows", ops: []op{refused(kindQuery), recv('T')}, wantErr: errDesync},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(0, nil)
			substituted, err := play(q, tc.ops)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if substituted != tc.substituted {
				t.Errorf("substituted %d refusals, want %d", substituted, tc.substituted)
			}
			if q.skipping != tc.skipping {
				t.Errorf("skipping = %v, want %v", q.skipping, tc.skipping)
			}
			if q.len() != tc.pending {
				t.Errorf("%d entries pending, want %d", q.len(), tc.pending)
			}
		})
	}
}

func TestQueueDrain(t *testing.T) {
	q := newQueue(0, nil)
	if !q.drain() {
		t.Fatal("a fresh session is idle")
	}
	if _, err := q.push(entry{kind: kindQuery}); err != errShutdown {
		t.Fatalf("push while draining and idle = %v, want errShutdown", err)
	}

	q = newQueue(0, nil)
	_, _ = play(q, []op{push(kindQuery), readyFor('T'), push(kindQuery)})
	if q.drain() {
		t.Fatal("a session with a query in flight is not idle")
	}
	if _, end, _ := q.ready('T'); end {
		t.Fatal("a session inside a transaction must not be ended")
	}
	if _, err := q.push(entry{kind: kindQuery}); err != nil {
		t.Fatalf("a draining session inside a transaction must still run statements: %v", err)
	}
	if _, end, _ := q.ready('I'); !end {
		t.Fatal("a draining session that reaches idle must end")
	}
}

// TestQueueStaysCompact keeps maxInFlight requests in flight while 100,000 are served, as a client that
// sends one request for each answer does: the queue never empties, and its slice must not grow with the
// requests served. Entries popped must not hold what they referred to.
func TestQueueStaysCompact(t *testing.T) {
	q := newQueue(0, nil)
	res := &rewrite.Result{SQL: "SELECT 1"}
	for range maxInFlight {
		if _, err := q.push(entry{kind: kindQuery, res: res}); err != nil {
			t.Fatal(err)
		}
	}
	for range 100000 {
		if _, _, err := q.ready('I'); err != nil {
			t.Fatal(err)
		}
		if _, err := q.push(entry{kind: kindQuery, res: res}); err != nil {
			t.Fatal(err)
		}
	}
	if q.len() != maxInFlight {
		t.Fatalf("%d pending, want %d", q.len(), maxInFlight)
	}
	if c := cap(q.entries); c > 4*maxInFlight {
		t.Errorf("after 100,000 requests served the queue's slice holds %d entries, want at most %d", c, 4*maxInFlight)
	}
	for i := range q.head {
		if q.entries[i].res != nil {
			t.Fatalf("popped entry %d still refers to its result", i)
		}
	}
}

// TestQueueWaitRoom checks the bound: full at maxInFlight, and a waiting reader is released once half
// are answered, or when the queue stops.
func TestQueueWaitRoom(t *testing.T) {
	q := newQueue(0, nil)
	for range maxInFlight {
		if _, err := q.push(entry{kind: kindQuery}); err != nil {
			t.Fatal(err)
		}
	}
	if !q.full() {
		t.Fatal("not full at maxInFlight")
	}
	released := make(chan struct{})
	go func() { q.waitRoom(); close(released) }()
	for range maxInFlight/2 - 1 {
		if _, _, err := q.ready('I'); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-released:
		t.Fatal("released with more than half in flight")
	default:
	}
	if _, _, err := q.ready('I'); err != nil {
		t.Fatal(err)
	}
	<-released

	for q.len() < maxInFlight {
		if _, err := q.push(entry{kind: kindQuery}); err != nil {
			t.Fatal(err)
		}
	}
	stopped := make(chan struct{})
	go func() { q.waitRoom(); close(stopped) }()
	q.stop()
	<-stopped
}

// TestQueueTimeoutIdentity checks a statement timeout names the request it was armed for: once that
// request is answered, the timeout no longer counts as pending, even though the next request is.
func TestQueueTimeoutIdentity(t *testing.T) {
	fired := make(chan uint64, 4)
	q := newQueue(20*time.Millisecond, func(answered uint64) { fired <- answered })
	if _, err := q.push(entry{kind: kindQuery}); err != nil {
		t.Fatal(err)
	}
	first := <-fired // the first request ran past the timeout
	if !q.pendingSince(first) {
		t.Fatal("the request the timeout fired for is not pending")
	}
	if _, _, err := q.ready('I'); err != nil {
		t.Fatal(err)
	}
	if _, err := q.push(entry{kind: kindQuery}); err != nil {
		t.Fatal(err)
	}
	if q.pendingSince(first) {
		t.Fatal("a timeout fired for the first request counts the second as the one to cancel")
	}
	second := <-fired
	if second == first || !q.pendingSince(second) {
		t.Fatalf("the second request's timeout names %d (the first's %d)", second, first)
	}
	if _, _, err := q.ready('I'); err != nil {
		t.Fatal(err)
	}
	q.stop()
	select {
	case a := <-fired:
		t.Fatalf("a timeout fired with nothing pending (%d)", a)
	case <-time.After(60 * time.Millisecond):
	}
}
