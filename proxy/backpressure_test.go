package proxy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The proxy bounds the requests a session has in flight (maxInFlight, 1024): past it, it stops reading
// the client until the server has answered. These tests check the bound costs nothing in correctness:
// pipelines far longer than it, sent before a single answer is read, are answered in full and in order,
// including extended-protocol messages that the server answers only at a Sync or Flush.

// pipelineSend writes msgs on their own goroutine, as a client that pipelines without reading would, and
// returns the channel its error arrives on.
func pipelineSend(c *rawConn, msgs []pgproto3.FrontendMessage) chan error {
	done := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			c.fe.Send(m)
		}
		done <- c.fe.Flush()
	}()
	return done
}

// pipelineRead reads until the n'th ReadyForQuery and returns the DataRow values and the count of each
// message type seen.
func pipelineRead(t *testing.T, c *rawConn, n int) ([]string, map[byte]int) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	var values []string
	types := map[byte]int{}
	for types['Z'] < n {
		msg, err := c.fe.Receive()
		if err != nil {
			t.Fatalf("after %d ReadyForQuery: %v", types['Z'], err)
		}
		_, typ := render(msg)
		types[typ]++
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			values = append(values, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			t.Fatalf("error after %d ReadyForQuery: %s", types['Z'], m.Message)
		}
	}
	return values, types
}

func TestBackpressureLongPipelines(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	const n = 5000 // several times maxInFlight

	t.Run("simple", func(t *testing.T) {
		c := dialRaw(t, p.DSN(acme))
		var msgs []pgproto3.FrontendMessage
		for i := range n {
			msgs = append(msgs, q(fmt.Sprintf("SELECT %d", i)))
		}
		sent := pipelineSend(c, msgs)
		time.Sleep(200 * time.Millisecond) // nothing read yet: the proxy stops reading the client
		values, _ := pipelineRead(t, c, n)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		for i, v := range values {
			if v != fmt.Sprint(i) {
				t.Fatalf("answer %d is %q: out of order or lost", i, v)
			}
		}
		if len(values) != n {
			t.Fatalf("%d answers, want %d", len(values), n)
		}
	})

	t.Run("extended", func(t *testing.T) {
		c := dialRaw(t, p.DSN(acme))
		var msgs []pgproto3.FrontendMessage
		for i := range n {
			msgs = append(msgs, parse("", "SELECT $1::int"), bind("", "", fmt.Sprint(i)), execute("", 0), &pgproto3.Sync{})
		}
		sent := pipelineSend(c, msgs)
		values, types := pipelineRead(t, c, n)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if len(values) != n || types['1'] != n || types['2'] != n || types['C'] != n {
			t.Fatalf("%d rows, %d ParseComplete, %d BindComplete, %d CommandComplete; want %d each", len(values), types['1'], types['2'], types['C'], n)
		}
		for i, v := range values {
			if v != fmt.Sprint(i) {
				t.Fatalf("answer %d is %q", i, v)
			}
		}
	})

	// More unanswered messages than the bound before the first Sync: the server holds their answers
	// until a Sync or Flush, so the proxy must ask for them or both ends wait forever.
	t.Run("no sync", func(t *testing.T) {
		c := dialRaw(t, p.DSN(acme))
		var msgs []pgproto3.FrontendMessage
		for range n {
			msgs = append(msgs, parse("", "SELECT 1"))
		}
		msgs = append(msgs, &pgproto3.Sync{})
		sent := pipelineSend(c, msgs)
		_, types := pipelineRead(t, c, 1)
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if types['1'] != n {
			t.Fatalf("%d ParseComplete, want %d", types['1'], n)
		}
	})
}
