package proxy

import (
	"fmt"
	"sync"
	"time"

	"github.com/tenantproxy/tenantproxy/rewrite"
)

// kind is the kind of a frontend message that awaits a response. See doc.go for the state machine.
type kind uint8

const (
	kindQuery kind = iota // Query or FunctionCall: everything up to ReadyForQuery
	kindParse
	kindBind
	kindDescribe
	kindExecute
	kindClose
	kindSync
)

var kindNames = [...]string{"Query", "Parse", "Bind", "Describe", "Execute", "Close", "Sync"}

func (k kind) String() string { return kindNames[k] }

// extended reports whether an error in response to k makes the server discard messages until Sync.
func (k kind) extended() bool { return k != kindQuery && k != kindSync }

// step says what backend message type typ means for an entry of kind k: it completes the entry (done), is
// part of the entry's response (ok), or does not belong to it (neither). ErrorResponse, ReadyForQuery and
// the asynchronous messages are handled before step is consulted.
func (k kind) step(typ byte) (done, ok bool) {
	switch k {
	case kindQuery:
		// RowDescription, DataRow, CommandComplete, EmptyQueryResponse, the COPY sub-protocol and
		// FunctionCallResponse; ReadyForQuery completes it.
		return false, typ == 'T' || typ == 'D' || typ == 'C' || typ == 'I' || typ == 'G' || typ == 'H' ||
			typ == 'd' || typ == 'c' || typ == 'V'
	case kindParse:
		return typ == '1', typ == '1'
	case kindBind:
		return typ == '2', typ == '2'
	case kindDescribe:
		// ParameterDescription precedes the RowDescription or NoData of a statement Describe.
		return typ == 'T' || typ == 'n', typ == 'T' || typ == 'n' || typ == 't'
	case kindExecute:
		done = typ == 'C' || typ == 'I' || typ == 's'
		return done, done || typ == 'D' || typ == 'G' || typ == 'H' || typ == 'd' || typ == 'c'
	case kindClose:
		return typ == '3', typ == '3'
	}
	return false, false // kindSync: only ReadyForQuery, handled by ready
}

type entry struct {
	kind kind
	// refusal, when set, is the error the client gets instead of the ErrorResponse the server sends for
	// the poison message forwarded in place of the refused one.
	refusal *rewrite.Error
	// res is the rewriter's result for a Query or Parse whose text it changed: error positions the server
	// reports refer to the changed text and are mapped back to the client's.
	res *rewrite.Result
	// parse and bind are the records of a Parse and a Bind, whose outcomes the mirror of statements and
	// portals needs (statements.go).
	parse *record[prepared]
	bind  *record[portal]
	// closed is the name of the statement (closeStmt) or portal a Close closes.
	closed    string
	closeStmt bool
	// effects are what the statements of a Query or the statement of an Execute do to the session's
	// statements and portals once complete; done counts the statements of a Query completed so far.
	effects []rewrite.Effect
	done    int
	// run, for a Query or Execute, is the statement it runs, for metrics and the audit trail.
	run statementRun
}

// queue holds the frontend messages awaiting a response, in order, and what the proxy knows of the
// server's state. clientToUpstream pushes; upstreamToClient pops. It is the only state the two relay
// goroutines share.
type queue struct {
	mu      sync.Mutex
	entries []entry
	head    int
	// skipping: the server is discarding messages until the next Sync.
	skipping bool
	// txStatus is the status of the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' failed one.
	txStatus byte
	// draining: the server is shutting down; the session ends at its next idle point.
	draining bool
	// timeout bounds how long the server may work on the oldest unanswered request: timer runs while one
	// is pending, a new one whenever one is answered (see arm), and onTimeout gets the answered count
	// the request it fired for was armed at. Zero without a timeout.
	timeout   time.Duration
	timer     *time.Timer
	onTimeout func(answered uint64)
	// room is signalled when a request completes while the client's reader waits for room (waiting), or
	// when the queue stops; stopped makes waitRoom return at once.
	room    *sync.Cond
	waiting bool
	stopped bool
	// peak is the most requests that were ever pending at once.
	peak int
	// answered counts the requests answered so far: a timeout is for the request at the head when it
	// fired, not for a later one (pendingSince).
	answered uint64
}

// maxInFlight bounds the requests a session has waiting for the server's answer. A client that sends
// without reading the answers (pipelining 200,000 queries) is not read from any further until the
// server has answered some of what it sent, so its memory stays bounded as PostgreSQL's own TCP buffers
// bound it without the proxy. Compacting keeps the queue's slice no longer than about twice that.
const maxInFlight = 1024

// newQueue returns an empty queue. With a timeout, onTimeout runs (on its own goroutine) when the
// oldest pending request has waited that long for its answer, with the count of requests answered before
// it: pendingSince tells whether it is still pending.
func newQueue(timeout time.Duration, onTimeout func(answered uint64)) *queue {
	q := &queue{txStatus: 'I', timeout: timeout, onTimeout: onTimeout}
	q.room = sync.NewCond(&q.mu)
	return q
}

func (q *queue) len() int { return len(q.entries) - q.head }

// busy reports whether a request is waiting for the server's answer.
func (q *queue) busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.len() > 0
}

// arm restarts the timeout for the request now at the head of the queue, or stops it when none is
// pending. q.mu must be held.
func (q *queue) arm() {
	if q.timeout <= 0 || q.stopped {
		return
	}
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	if q.len() > 0 {
		// A timer of its own per request: one that already fired for an earlier request, its callback
		// not yet run, names that request, not this one.
		answered := q.answered
		q.timer = time.AfterFunc(q.timeout, func() { q.onTimeout(answered) })
	}
}

// stop stops the timeout for good, and wakes a waitRoom, when the session ends.
func (q *queue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.timer != nil {
		q.timer.Stop()
		q.timer = nil
	}
	q.stopped = true
	q.room.Broadcast()
}

// pendingSince reports whether no request was answered since answered and one is pending.
func (q *queue) pendingSince(answered uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.answered == answered && q.len() > 0
}

// burst reports whether the queue ever held more than half of maxInFlight requests.
func (q *queue) burst() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.peak > maxInFlight/2
}

// full reports whether maxInFlight requests wait for the server's answer.
func (q *queue) full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.len() >= maxInFlight
}

// waitRoom blocks while maxInFlight requests wait for an answer, until half of them are answered or the
// queue stops.
func (q *queue) waitRoom() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.len() > maxInFlight/2 && !q.stopped {
		q.waiting = true
		q.room.Wait()
	}
	q.waiting = false
}

// pop removes the entry at the head, dropping its references so that what it held can be collected, and
// wakes a waitRoom. q.mu must be held.
func (q *queue) pop() {
	q.entries[q.head] = entry{}
	q.head++
	q.answered++
	if q.waiting && q.len() <= maxInFlight/2 {
		q.room.Broadcast()
	}
}

// idle reports whether the session is between transactions with nothing in flight. q.mu must be held.
func (q *queue) idle() bool { return q.len() == 0 && q.txStatus == 'I' }

// push records a frontend message that is being forwarded. It reports whether the message was queued:
// while the server skips to the next Sync it discards messages without a response. It returns errShutdown
// instead when the session is draining and idle, so no new work starts.
func (q *queue) push(e entry) (queued bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.draining && q.idle() {
		return false, errShutdown
	}
	if q.skipping {
		if e.kind != kindSync {
			return false, nil
		}
		q.skipping = false
	}
	switch {
	case q.head > 0 && q.head == len(q.entries):
		if cap(q.entries) > 4*maxInFlight {
			q.entries = nil // a burst is over: do not keep its backing array
		}
		q.entries, q.head = q.entries[:0], 0
	case q.head >= maxInFlight && 2*q.head >= len(q.entries):
		// Requests keep arriving as others complete: the queue never empties, so slide the pending
		// ones to the front instead of growing the slice with every request served.
		n := copy(q.entries, q.entries[q.head:])
		clear(q.entries[n:])
		q.entries, q.head = q.entries[:n], 0
	}
	q.entries = append(q.entries, e)
	if q.len() == 1 {
		q.arm()
	}
	q.peak = max(q.peak, q.len())
	return true, nil
}

// step accounts for a backend message that is neither an error nor ReadyForQuery nor asynchronous. It
// returns the entry the message completed, if it completed one.
func (q *queue) step(typ byte) (completed *entry, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.len() == 0 {
		return nil, fmt.Errorf("%w: unexpected message %q with no request pending", errDesync, typ)
	}
	e := q.entries[q.head]
	done, ok := e.kind.step(typ)
	if !ok || e.refusal != nil {
		// A refused message's poison can only fail.
		return nil, fmt.Errorf("%w: unexpected message %q in response to %s", errDesync, typ, e.kind)
	}
	if !done {
		return nil, nil
	}
	q.pop()
	q.arm()
	return &e, nil
}

// statementDone accounts for the completion of one statement (CommandComplete) of the request at the head
// of the queue, and returns the effects that statement had.
func (q *queue) statementDone() []rewrite.Effect {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.len() == 0 {
		return nil
	}
	e := &q.entries[q.head]
	i := e.done
	e.done++
	if e.kind == kindExecute {
		i = 0 // the one statement of a Parse
	}
	var out []rewrite.Effect
	for _, ef := range e.effects {
		if ef.Stmt == i {
			out = append(out, ef)
		}
	}
	return out
}

// fail accounts for an ErrorResponse. It returns the entry the error answers (nil for an error outside
// any request, such as FATAL on administrator shutdown) and the entries the server will now skip.
func (q *queue) fail() (failed *entry, skipped []entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.len() == 0 {
		return nil, nil
	}
	e := q.entries[q.head]
	if !e.kind.extended() {
		// Query and Sync complete at the ReadyForQuery that follows; substitute only this one error.
		q.entries[q.head].refusal = nil
		return &e, nil
	}
	// The server now discards every message up to the next Sync without responding.
	for q.pop(); q.head < len(q.entries) && q.entries[q.head].kind != kindSync; q.pop() {
		skipped = append(skipped, q.entries[q.head])
	}
	q.skipping = q.head == len(q.entries)
	q.arm()
	return &e, skipped
}

// ready accounts for ReadyForQuery with transaction status status. It returns the entry the message
// completed, and reports whether the session is now idle while draining, that is, whether it should end.
func (q *queue) ready(status byte) (completed entry, endNow bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.len() == 0 {
		return entry{}, false, fmt.Errorf("%w: ReadyForQuery with no request pending", errDesync)
	}
	e := q.entries[q.head]
	if e.kind != kindQuery && e.kind != kindSync {
		return entry{}, false, fmt.Errorf("%w: ReadyForQuery in response to %s", errDesync, e.kind)
	}
	q.pop()
	q.txStatus = status
	q.arm()
	return e, q.draining && q.idle(), nil
}

// drain marks the session as draining and reports whether it is idle now.
func (q *queue) drain() (idleNow bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.draining = true
	return q.idle()
}
