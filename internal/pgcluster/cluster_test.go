package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestFindBinDir(t *testing.T) {
	dir, err := FindBinDir()
	if err != nil {
		t.Fatalf("FindBinDir: %v", err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinDir() = %s, which lacks %s: %v", dir, name, err)
		}
	}
}

// fakeBinDir creates dir holding the given fake executables.
func fakeBinDir(t *testing.T, dir string, names ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFindBinDirSearchOrder(t *testing.T) {
	all := []string{"initdb", "pg_ctl", "postgres"}
	notOnPath := func(string) (string, error) { return "", errors.New("not found") }

	tests := []struct {
		name string
		// setup builds the fake layout under tmp and returns the PATH lookup
		// and the Debian-style root to search.
		setup func(tmp string) (lookPath func(string) (string, error), root string)
		want  string // relative to tmp; "" means ErrNoBinaries
	}{
		{
			name: "nothing installed",
			setup: func(tmp string) (func(string) (string, error), string) {
				return notOnPath, filepath.Join(tmp, "missing")
			},
		},
		{
			name: "highest version wins numerically",
			setup: func(tmp string) (func(string) (string, error), string) {
				root := filepath.Join(tmp, "lib")
				fakeBinDir(t, filepath.Join(root, "9.6", "bin"), all...)
				fakeBinDir(t, filepath.Join(root, "16", "bin"), all...)
				fakeBinDir(t, filepath.Join(root, "15", "bin"), all...)
				fakeBinDir(t, filepath.Join(root, "not-a-version", "bin"), all...)
				return notOnPath, root
			},
			want: "lib/16/bin",
		},
		{
			name: "incomplete newer version is skipped",
			setup: func(tmp string) (func(string) (string, error), string) {
				root := filepath.Join(tmp, "lib")
				fakeBinDir(t, filepath.Join(root, "17", "bin"), "initdb", "pg_ctl") // client-only leftovers
				fakeBinDir(t, filepath.Join(root, "15", "bin"), all...)
				return notOnPath, root
			},
			want: "lib/15/bin",
		},
		{
			name: "PATH symlink is resolved and preferred",
			setup: func(tmp string) (func(string) (string, error), string) {
				real := fakeBinDir(t, filepath.Join(tmp, "opt", "pg", "bin"), all...)
				links := fakeBinDir(t, filepath.Join(tmp, "usr-local-bin"))
				link := filepath.Join(links, "initdb")
				if err := os.Symlink(filepath.Join(real, "initdb"), link); err != nil {
					t.Fatal(err)
				}
				root := filepath.Join(tmp, "lib")
				fakeBinDir(t, filepath.Join(root, "99", "bin"), all...)
				return func(string) (string, error) { return link, nil }, root
			},
			want: "opt/pg/bin",
		},
		{
			name: "PATH initdb without pg_ctl beside it falls back",
			setup: func(tmp string) (func(string) (string, error), string) {
				lonely := fakeBinDir(t, filepath.Join(tmp, "bin"), "initdb")
				root := filepath.Join(tmp, "lib")
				fakeBinDir(t, filepath.Join(root, "15", "bin"), all...)
				return func(string) (string, error) { return filepath.Join(lonely, "initdb"), nil }, root
			},
			want: "lib/15/bin",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			lookPath, root := tt.setup(tmp)
			got, err := findBinDir(lookPath, root)
			if tt.want == "" {
				if !errors.Is(err, ErrNoBinaries) {
					t.Fatalf("findBinDir() = %q, %v; want ErrNoBinaries", got, err)
				}
				if !strings.Contains(err.Error(), "apt-get install") {
					t.Errorf("error %q does not say what to install", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("findBinDir: %v", err)
			}
			if want := filepath.Join(tmp, tt.want); got != want {
				t.Errorf("findBinDir() = %s, want %s", got, want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"zero value", Options{}, false},
		{"custom settings", Options{Port: 5433, Settings: map[string]string{"work_mem": "64MB", "auto_explain.log_min_duration": "0"}}, false},
		{"negative port", Options{Port: -1}, true},
		{"port too large", Options{Port: 70000}, true},
		{"name with a space", Options{Settings: map[string]string{"work mem": "1"}}, true},
		{"name smuggling a line", Options{Settings: map[string]string{"a = 1\nb": "2"}}, true},
		{"value with a line break", Options{Settings: map[string]string{"work_mem": "1\nfsync = on"}}, true},
		{"managed setting", Options{Settings: map[string]string{"Port": "5432"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestDSN(t *testing.T) {
	c := &Cluster{Host: "127.0.0.1", Port: 54321}
	tests := []struct {
		user, password, database string
	}{
		{"postgres", "secret", "postgres"},
		{"us er", `p@ss:w/rd?#%'"`, "my db/x?y"},
		{"nopass", "", "db"},
	}
	for _, tt := range tests {
		dsn := c.DSN(tt.user, tt.password, tt.database)
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("DSN(%q, %q, %q) = %q, which pgx cannot parse: %v", tt.user, tt.password, tt.database, dsn, err)
		}
		if cfg.Host != "127.0.0.1" || cfg.Port != 54321 || cfg.User != tt.user ||
			cfg.Password != tt.password || cfg.Database != tt.database || cfg.TLSConfig != nil {
			t.Errorf("DSN(%q, %q, %q) = %q, parsed as host=%s port=%d user=%q password=%q database=%q tls=%v",
				tt.user, tt.password, tt.database, dsn, cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database, cfg.TLSConfig != nil)
		}
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := Start(ctx, Options{Settings: map[string]string{"max_connections": "120"}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Stop()

	if c.Host != "127.0.0.1" || c.Port == 0 || c.Superuser != "postgres" || c.SuperuserPassword == "" {
		t.Errorf("Start() = %+v, want host 127.0.0.1, a port, superuser postgres and a password", c)
	}

	conn, err := pgx.Connect(ctx, c.AdminDSN())
	if err != nil {
		t.Fatalf("connecting with AdminDSN: %v", err)
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatalf("SELECT version(): %v", err)
	}
	if want := "PostgreSQL " + strconv.Itoa(c.Version) + "."; !strings.HasPrefix(version, want) {
		t.Errorf("version() = %q, want prefix %q (Cluster.Version)", version, want)
	}
	// Options.Settings are written last, so they override the defaults (300).
	var maxConns string
	if err := conn.QueryRow(ctx, "SHOW max_connections").Scan(&maxConns); err != nil {
		t.Fatalf("SHOW max_connections: %v", err)
	}
	if maxConns != "120" {
		t.Errorf("max_connections = %s, want 120 from Options.Settings", maxConns)
	}
	conn.Close(ctx)

	// A wrong password must be refused: host connections use scram, not trust.
	if conn, err := pgx.Connect(ctx, c.DSN(c.Superuser, "wrong", "postgres")); err == nil {
		conn.Close(ctx)
		t.Errorf("connecting with a wrong password succeeded")
	}

	if runtime.GOOS == "linux" {
		pid := postmasterPID(t, c)
		fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
		if err != nil {
			t.Fatalf("postmaster pid %d: %v", pid, err)
		}
		uid := fi.Sys().(*syscall.Stat_t).Uid
		if want := uint32(os.Geteuid()); want != 0 && uid != want {
			t.Errorf("postmaster runs as uid %d, want the current user %d", uid, want)
		}
		if uid == 0 {
			t.Errorf("postmaster runs as root")
		}
	}

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Stop, os.Stat(%s) = %v, want not exist", c.Dir, err)
	}
	if conn, err := pgx.Connect(ctx, c.AdminDSN()); err == nil {
		conn.Close(ctx)
		t.Errorf("server still accepts connections after Stop")
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func postmasterPID(t *testing.T, c *Cluster) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("parsing postmaster.pid: %v", err)
	}
	return pid
}

// syncBuffer is a bytes.Buffer safe for the log forwarder and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStartFailureCleansUp(t *testing.T) {
	const wantLog = `unrecognized configuration parameter "tp_bogus"`
	for _, withLog := range []bool{false, true} {
		t.Run("Log set "+strconv.FormatBool(withLog), func(t *testing.T) {
			// A private TMPDIR shows whether Start left anything behind. It
			// must be traversable by the postgres user when we are root.
			tmp, err := os.MkdirTemp("", "pgcluster-test-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(tmp) })
			if err := os.Chmod(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TMPDIR", tmp)

			var logBuf syncBuffer
			opts := Options{Settings: map[string]string{"tp_bogus": "1"}}
			if withLog {
				opts.Log = &logBuf
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := Start(ctx, opts)
			if err == nil {
				c.Stop()
				t.Fatal("Start with an unknown setting succeeded")
			}
			if c != nil {
				t.Errorf("Start returned a cluster with error %v", err)
			}
			if !strings.Contains(err.Error(), wantLog) {
				t.Errorf("Start error does not quote the server log line %q:\n%v", wantLog, err)
			}
			if withLog && !strings.Contains(logBuf.String(), wantLog) {
				t.Errorf("Options.Log got %q, want it to contain %q", logBuf.String(), wantLog)
			}
			left, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("failed Start left %d entries in TMPDIR, e.g. %s", len(left), left[0].Name())
			}
		})
	}
}

func TestStartWithLog(t *testing.T) {
	t.Parallel()
	var logBuf syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Log: &logBuf})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer c.Stop()
	if _, err := os.Stat(filepath.Join(c.Dir, "server.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server.log exists although Options.Log is set (stat: %v)", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	// Stop waits for the forwarder, so the shutdown lines are already there.
	if got := logBuf.String(); !strings.Contains(got, "database system is shut down") {
		t.Errorf("Options.Log got %q, want the server's shutdown message", got)
	}
}

// TestStartRetriesTakenPort covers the race freePort cannot exclude: someone
// else binds the port between picking it and the server binding it.
func TestStartRetriesTakenPort(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	var picks int
	pick := func() (int, error) {
		picks++
		if picks == 1 {
			return takenPort, nil
		}
		return freePort()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := start(ctx, Options{}, pick)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer c.Stop()
	if picks != 2 || c.Port == takenPort {
		t.Errorf("start picked %d ports and listens on %d (taken: %d); want a retry on a new port", picks, c.Port, takenPort)
	}
	conn, err := pgx.Connect(ctx, c.AdminDSN())
	if err != nil {
		t.Fatalf("connecting after retry: %v", err)
	}
	conn.Close(ctx)

	// An explicit Options.Port is the caller's choice: no retry, a clear error.
	_, err = Start(ctx, Options{Port: takenPort})
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("Start on a taken explicit port: err = %v, want one quoting \"Address already in use\"", err)
	}
}

func TestTempBase(t *testing.T) {
	// A stranger's uid: only the "other" permission bits apply to it.
	stranger := &osUser{name: "stranger", uid: 4242424, gid: 4242424}
	parent, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(parent, "open")
	private := filepath.Join(parent, "private")
	long := filepath.Join(parent, strings.Repeat("x", maxTempBaseLen))
	for dir, mode := range map[string]os.FileMode{open: 0o711, private: 0o700, long: 0o755} {
		if err := os.Mkdir(dir, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil { // undo the umask
			t.Fatal(err)
		}
	}

	tests := []struct {
		name   string
		tmpdir string
		owner  *osUser
		want   string
	}{
		{"traversable TMPDIR is used", open, stranger, open},
		{"TMPDIR the server user cannot enter", private, stranger, "/tmp"},
		{"current user can always enter", private, nil, private},
		{"too long for a socket path", long, nil, "/tmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TMPDIR", tt.tmpdir)
			want, err := filepath.EvalSymlinks(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if got := tempBase(tt.owner); got != want {
				t.Errorf("tempBase() = %s, want %s", got, want)
			}
		})
	}
}
