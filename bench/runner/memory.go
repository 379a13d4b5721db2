package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The memory scenarios (bench/run -memory) send what a hostile or broken client sends, against PgBouncer
// and tenantproxy in the same run, and report each process's resident memory: before, at its peak during
// the scenario (VmHWM, reset through /proc/PID/clear_refs first), and a while after the client left.

// memScenario is one client behaviour; run drives it against the target at dsn.
type memScenario struct {
	name, what string
	run        func(ctx context.Context, t target) (time.Duration, error)
}

var memScenarios = []memScenario{
	{"pre_auth_huge_message", "2 connections each declare a 256 MiB password/SASL message in a 5-byte header and send 100 bytes of it", preAuthHuge},
	{"pipeline_unread", "200,000 pipelined `SELECT 1` Query messages, not read for 5 s, then read", func(ctx context.Context, t target) (time.Duration, error) {
		return pipelineUnread(ctx, t, false)
	}},
	{"extended_unread", "200,000 pipelined Parse/Bind/Execute/Sync, not read for 5 s, then read", func(ctx context.Context, t target) (time.Duration, error) {
		return pipelineUnread(ctx, t, true)
	}},
	{"inflight_1024", "1,024 requests kept in flight for 6 s (one sent for each answer read)", inflight},
}

// runMemory runs the scenarios named in only (all when empty) against each target in order and returns a
// markdown table. RSS counts the binary's mapped text too (file-backed, shared: tenantproxy's binary
// holds the PostgreSQL parser), so the anonymous part is shown beside it.
func runMemory(ctx context.Context, targets []target, only []string) (string, error) {
	var b strings.Builder
	b.WriteString("| scenario | target | RSS before MiB | of it anonymous | peak MiB | peak - before | 10 s after MiB | time s | peak vs PgBouncer | time vs PgBouncer |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range memScenarios {
		if len(only) > 0 && !slices.Contains(only, sc.name) {
			continue
		}
		var bouncerPeak float64
		var bouncerTime time.Duration
		for _, t := range targets {
			before, anon := rssMiB(t.pid, "VmRSS"), rssMiB(t.pid, "RssAnon")
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", t.pid), []byte("5"), 0); err != nil {
				return "", fmt.Errorf("resetting the peak RSS of %s: %w", t.name, err)
			}
			took, err := sc.run(ctx, t)
			if err != nil {
				return "", fmt.Errorf("%s against %s: %w", sc.name, t.name, err)
			}
			peak := rssMiB(t.pid, "VmHWM")
			time.Sleep(10 * time.Second)
			after := rssMiB(t.pid, "VmRSS")
			peakRatio, timeRatio := "-", "-"
			if t.name == "pgbouncer" {
				bouncerPeak, bouncerTime = peak, took
			} else if bouncerPeak > 0 {
				peakRatio = fmt.Sprintf("%.2fx", peak/bouncerPeak)
				timeRatio = fmt.Sprintf("%.2fx", took.Seconds()/bouncerTime.Seconds())
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %+.1f | %.1f | %.2f | %s | %s |\n", sc.name, t.name, before, anon, peak, peak-before, after, took.Seconds(), peakRatio, timeRatio)
			fmt.Fprintf(os.Stderr, "%s %s: before %.1f MiB, peak %.1f MiB, after %.1f MiB, %.2fs\n", sc.name, t.name, before, peak, after, took.Seconds())
		}
	}
	b.WriteString("\n")
	for _, sc := range memScenarios {
		fmt.Fprintf(&b, "- `%s`: %s.\n", sc.name, sc.what)
	}
	return b.String(), nil
}

// rssMiB reads a /proc/PID/status field (VmRSS, VmHWM) in MiB.
func rssMiB(pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// preAuthHuge opens two connections that start up, get asked for a password, and declare a 256 MiB
// answer of which they send 100 bytes; it holds them for 3 s.
func preAuthHuge(ctx context.Context, t target) (time.Duration, error) {
	cfg, err := pgconn.ParseConfig(t.dsn)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range 2 {
		c, err := net.Dial("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
		fe := pgproto3.NewFrontend(c, c)
		fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": cfg.User, "database": cfg.Database}})
		if err := fe.Flush(); err != nil {
			return 0, err
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := fe.Receive(); err != nil { // the authentication request
			return 0, err
		}
		msg := make([]byte, 105)
		msg[0] = 'p'
		binary.BigEndian.PutUint32(msg[1:], 256<<20)
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
	}
	time.Sleep(3 * time.Second)
	return time.Since(start), nil
}

// authenticated returns a connection that has completed startup, taken over from pgconn.
func authenticated(ctx context.Context, t target) (net.Conn, *pgproto3.Frontend, error) {
	pg, err := pgconn.Connect(ctx, t.dsn)
	if err != nil {
		return nil, nil, err
	}
	hc, err := pg.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return hc.Conn, pgproto3.NewFrontend(hc.Conn, hc.Conn), nil
}

// pipelineUnread writes 200,000 requests without reading for 5 s (or until written), then reads every
// answer; it returns the time from the first write to the last answer.
func pipelineUnread(ctx context.Context, t target, extended bool) (time.Duration, error) {
	const n = 200000
	c, fe, err := authenticated(ctx, t)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	written := make(chan error, 1)
	go func() {
		for i := range n {
			if extended {
				fe.Send(&pgproto3.Parse{Query: "SELECT 1"})
				fe.Send(&pgproto3.Bind{})
				fe.Send(&pgproto3.Execute{})
				fe.Send(&pgproto3.Sync{})
			} else {
				fe.Send(&pgproto3.Query{String: "SELECT 1"})
			}
			if i%256 == 255 {
				if err := fe.Flush(); err != nil {
					written <- err
					return
				}
			}
		}
		written <- fe.Flush()
	}()
	select {
	case err := <-written:
		if err != nil {
			return 0, err
		}
		written <- nil
	case <-time.After(5 * time.Second):
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
	for ready := 0; ready < n; {
		msg, err := fe.Receive()
		if err != nil {
			return 0, fmt.Errorf("after %d answers: %w", ready, err)
		}
		switch m := msg.(type) {
		case *pgproto3.ReadyForQuery:
			ready++
		case *pgproto3.ErrorResponse:
			return 0, fmt.Errorf("error: %s", m.Message)
		}
	}
	if err := <-written; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// inflight keeps 1,024 queries in flight for 6 s: it sends 1,024, then one more for each answer.
func inflight(ctx context.Context, t target) (time.Duration, error) {
	const window = 1024
	c, fe, err := authenticated(ctx, t)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	for range window {
		fe.Send(&pgproto3.Query{String: "SELECT 1"})
	}
	if err := fe.Flush(); err != nil {
		return 0, err
	}
	pending := window
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	for pending > 0 {
		msg, err := fe.Receive()
		if err != nil {
			return 0, err
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); !ok {
			continue
		}
		pending--
		if time.Since(start) < 6*time.Second {
			fe.Send(&pgproto3.Query{String: "SELECT 1"})
			if err := fe.Flush(); err != nil {
				return 0, err
			}
			pending++
		}
	}
	return time.Since(start), nil
}
