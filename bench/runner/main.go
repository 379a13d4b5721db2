// Command runner is bench/run: it compares tenantproxy with PgBouncer (session mode) and with PostgreSQL
// directly, with pgbench, on a throwaway PostgreSQL loaded with a multi-tenant schema, and prints a
// markdown table. See bench/README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantproxy/tenantproxy/auth"
	"github.com/tenantproxy/tenantproxy/internal/pgcluster"
)

// The schema: workspaces × accounts, with projects and tasks for the join.
const (
	workspaces     = 100
	accountsPerWS  = 10000
	projectsPerWS  = 1000
	tasksPerWS     = 10000
	benchWorkspace = "ws042"
	appRole        = "bench_app"
)

const schema = `
CREATE TABLE accounts (workspace_id text NOT NULL, id int NOT NULL, name text NOT NULL, balance int NOT NULL,
	PRIMARY KEY (workspace_id, id));
CREATE TABLE projects (workspace_id text NOT NULL, id int NOT NULL, account_id int NOT NULL, name text NOT NULL,
	PRIMARY KEY (workspace_id, id));
CREATE TABLE tasks (workspace_id text NOT NULL, id int NOT NULL, project_id int NOT NULL, title text NOT NULL,
	done boolean NOT NULL DEFAULT false, PRIMARY KEY (workspace_id, id));
INSERT INTO accounts SELECT 'ws' || lpad(w::text, 3, '0'), a, 'account ' || a, 0
	FROM generate_series(1, %[1]d) w, generate_series(1, %[2]d) a;
INSERT INTO projects SELECT 'ws' || lpad(w::text, 3, '0'), p, 1 + (p * 7) %% %[2]d, 'project ' || p
	FROM generate_series(1, %[1]d) w, generate_series(1, %[3]d) p;
INSERT INTO tasks SELECT 'ws' || lpad(w::text, 3, '0'), t, 1 + (t * 13) %% %[3]d, 'task ' || t
	FROM generate_series(1, %[1]d) w, generate_series(1, %[4]d) t;
`

// workload is a pgbench script: scoped by hand (direct and PgBouncer) and as the application writes it
// (tenantproxy scopes it).
type workload struct {
	name, scoped, app string
}

var workloads = []workload{
	{"select",
		"\\set id random(1, 10000)\nSELECT balance FROM accounts WHERE workspace_id = 'ws042' AND id = :id;\n",
		"\\set id random(1, 10000)\nSELECT balance FROM accounts WHERE id = :id;\n"},
	{"update",
		"\\set id random(1, 10000)\nUPDATE accounts SET balance = balance + 1 WHERE workspace_id = 'ws042' AND id = :id;\n",
		"\\set id random(1, 10000)\nUPDATE accounts SET balance = balance + 1 WHERE id = :id;\n"},
	{"join",
		"\\set id random(1, 10000)\nSELECT t.title, p.name, a.name FROM tasks t JOIN projects p ON p.workspace_id = t.workspace_id AND p.id = t.project_id " +
			"JOIN accounts a ON a.workspace_id = p.workspace_id AND a.id = p.account_id WHERE t.workspace_id = 'ws042' AND t.id = :id;\n",
		"\\set id random(1, 10000)\nSELECT t.title, p.name, a.name FROM tasks t JOIN projects p ON p.id = t.project_id " +
			"JOIN accounts a ON a.id = p.account_id WHERE t.id = :id;\n"},
	{"range",
		"\\set id random(1, 9901)\nSELECT id, balance FROM accounts WHERE workspace_id = 'ws042' AND id BETWEEN :id AND :id + 99;\n",
		"\\set id random(1, 9901)\nSELECT id, balance FROM accounts WHERE id BETWEEN :id AND :id + 99;\n"},
}

var protocols = []string{"simple", "extended", "prepared"}

type target struct {
	name string
	dsn  string
	pid  int // the process whose CPU is accounted per transaction; 0 for none
	app  bool
}

type result struct {
	tps      []float64
	lat      []float64 // microseconds, every transaction of every run
	cpuMicro []float64 // proxy CPU per transaction, per run
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(1)
	}
}

func run() error {
	duration := flag.Duration("duration", 10*time.Second, "length of each pgbench run")
	repeat := flag.Int("repeat", 3, "runs of each combination, interleaved across targets")
	only := flag.String("workloads", "select,update,join,range", "workloads to run")
	protos := flag.String("protocols", "simple,extended,prepared", "pgbench query modes to run")
	clientsFlag := flag.String("clients", "1,8", "client counts to run")
	targetsFlag := flag.String("targets", "direct,pgbouncer,tenantproxy", "targets to run")
	out := flag.String("out", "", "also write the table to this file")
	memory := flag.Bool("memory", false, "run the memory scenarios (memory.go) against PgBouncer and tenantproxy instead of pgbench")
	memScenariosFlag := flag.String("memory-scenarios", "", "with -memory, the scenarios to run (default all)")
	plans := flag.Bool("plans", false, "time application query shapes forwarded vs hand-scoped vs row-level security (plans.go) instead of pgbench")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "tp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	owner, err := serverOwner()
	if err != nil {
		return err
	}
	if err := owner.chown(work); err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "starting PostgreSQL and loading", workspaces*accountsPerWS, "accounts...")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"max_connections": "200", "shared_buffers": "256MB"}})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	if *plans {
		table, err := runPlans(ctx, cluster)
		if err != nil {
			return err
		}
		report := fmt.Sprintf("Measured %s on %s (%d cores), PostgreSQL %d: `bench/run -plans`.\n\n%s", time.Now().UTC().Format("2006-01-02"),
			hostname(), runtime.NumCPU(), cluster.Version, table)
		fmt.Print(report)
		if *out != "" {
			return os.WriteFile(*out, []byte(report), 0o644)
		}
		return nil
	}
	password := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := load(ctx, cluster, password); err != nil {
		return err
	}
	directDSN := cluster.DSN(appRole, password, "bench")

	bouncerPort, bouncer, err := startPgBouncer(ctx, work, owner, cluster, password)
	if err != nil {
		return err
	}
	defer stopProcess(bouncer)
	proxyPort, proxy, key, err := startTenantproxy(ctx, work, directDSN)
	if err != nil {
		return err
	}
	defer stopProcess(proxy)

	targets := map[string]target{
		"direct":      {name: "direct", dsn: directDSN},
		"pgbouncer":   {name: "pgbouncer", dsn: fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/bench?sslmode=disable", appRole, password, bouncerPort), pid: bouncer.Process.Pid},
		"tenantproxy": {name: "tenantproxy", dsn: fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/bench?sslmode=disable", benchWorkspace, key, proxyPort), pid: proxy.Process.Pid, app: true},
	}
	if *memory {
		var only []string
		if *memScenariosFlag != "" {
			only = strings.Split(*memScenariosFlag, ",")
		}
		table, err := runMemory(ctx, []target{targets["pgbouncer"], targets["tenantproxy"]}, only)
		if err != nil {
			return err
		}
		report := fmt.Sprintf("Measured %s on %s (%d cores), PostgreSQL %d, %s: `bench/run -memory`.\n\n%s", time.Now().UTC().Format("2006-01-02"),
			hostname(), runtime.NumCPU(), cluster.Version, pgbouncerVersion(), table)
		fmt.Print(report)
		if *out != "" {
			return os.WriteFile(*out, []byte(report), 0o644)
		}
		return nil
	}
	var order []string
	for _, t := range strings.Split(*targetsFlag, ",") {
		if _, ok := targets[t]; !ok {
			return fmt.Errorf("unknown target %q", t)
		}
		order = append(order, t)
	}
	var clients []int
	for _, c := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(c)
		if err != nil {
			return fmt.Errorf("clients: %w", err)
		}
		clients = append(clients, n)
	}

	results := map[string]*result{}
	key3 := func(w, p string, c int, t string) string { return fmt.Sprintf("%s/%s/%d/%s", w, p, c, t) }
	for rep := 0; rep < *repeat; rep++ {
		for _, w := range workloads {
			if !slices.Contains(strings.Split(*only, ","), w.name) {
				continue
			}
			for _, p := range strings.Split(*protos, ",") {
				for _, c := range clients {
					// Rotate the targets' order each repetition, so none always runs on a warmer cache.
					for i := range order {
						t := targets[order[(i+rep)%len(order)]]
						r, err := pgbench(ctx, work, t, w, p, c, *duration)
						if err != nil {
							return fmt.Errorf("%s %s %s %d clients: %w", t.name, w.name, p, c, err)
						}
						k := key3(w.name, p, c, t.name)
						if results[k] == nil {
							results[k] = &result{}
						}
						results[k].tps = append(results[k].tps, r.tps[0])
						results[k].lat = append(results[k].lat, r.lat...)
						results[k].cpuMicro = append(results[k].cpuMicro, r.cpuMicro...)
						fmt.Fprintf(os.Stderr, "run %d/%d %-8s %-8s %d clients %-11s %8.0f tps\n", rep+1, *repeat, w.name, p, c, t.name, r.tps[0])
					}
				}
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s (%d cores, %s), PostgreSQL %d, %s.\n\n", time.Now().UTC().Format("2006-01-02"), hostname(), runtime.NumCPU(),
		runtime.GOARCH, cluster.Version, pgbouncerVersion())
	fmt.Fprintf(&b, "`bench/run -duration %s -repeat %d`: pgbench per run; TPS is the median of the runs, latency percentiles over every transaction of every run, proxy CPU is the proxy process's user+system time per transaction (median of the runs).\n\n", *duration, *repeat)
	b.WriteString("| workload | protocol | clients | target | TPS | vs direct | vs PgBouncer | p50 ms | p99 ms | proxy CPU µs/txn |\n")
	b.WriteString("|---|---|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range workloads {
		for _, p := range strings.Split(*protos, ",") {
			for _, c := range clients {
				direct := results[key3(w.name, p, c, "direct")]
				bouncer := results[key3(w.name, p, c, "pgbouncer")]
				for _, t := range order {
					r := results[key3(w.name, p, c, t)]
					if r == nil {
						continue
					}
					tps := median(r.tps)
					ratio := func(o *result) string {
						if o == nil {
							return "-"
						}
						return fmt.Sprintf("%.2fx", tps/median(o.tps))
					}
					cpu := "-"
					if len(r.cpuMicro) > 0 {
						cpu = fmt.Sprintf("%.1f", median(r.cpuMicro))
					}
					fmt.Fprintf(&b, "| %s | %s | %d | %s | %.0f | %s | %s | %.3f | %.3f | %s |\n", w.name, p, c, t, tps, ratio(direct), ratio(bouncer),
						percentile(r.lat, 0.50)/1000, percentile(r.lat, 0.99)/1000, cpu)
				}
			}
		}
	}
	fmt.Print(b.String())
	if *out != "" {
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	}
	return nil
}

// load creates the bench database, its application role and the data.
func load(ctx context.Context, cluster *pgcluster.Cluster, password string) error {
	admin, err := pgx.Connect(ctx, cluster.AdminDSN())
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	for _, sql := range []string{"CREATE DATABASE bench", "CREATE ROLE " + appRole + " LOGIN PASSWORD '" + password + "'"} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	db, err := pgx.Connect(ctx, cluster.DSN(cluster.Superuser, cluster.SuperuserPassword, "bench"))
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	sql := fmt.Sprintf(schema, workspaces, accountsPerWS, projectsPerWS, tasksPerWS) +
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + appRole + ";"
	if err := db.PgConn().Exec(ctx, sql).Close(); err != nil {
		return err
	}
	_, err = db.Exec(ctx, "VACUUM ANALYZE")
	return err
}

// startPgBouncer starts PgBouncer in session mode in front of the cluster, as the server's OS user (it
// refuses to run as root).
func startPgBouncer(ctx context.Context, work string, owner *osUser, cluster *pgcluster.Cluster, password string) (int, *exec.Cmd, error) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
			if _, statErr := os.Stat(p); statErr == nil {
				bin, err = p, nil
			}
		}
		if err != nil {
			return 0, nil, errors.New("pgbouncer not found: apt-get install -y pgbouncer")
		}
	}
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	dir := filepath.Join(work, "pgbouncer")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return 0, nil, err
	}
	ini := fmt.Sprintf(`[databases]
bench = host=127.0.0.1 port=%d dbname=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = plain
auth_file = %s
pool_mode = session
max_client_conn = 200
default_pool_size = 50
logfile = %s
pidfile = %s
log_connections = 0
log_disconnections = 0
`, cluster.Port, port, filepath.Join(dir, "users.txt"), filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	files := map[string]string{"pgbouncer.ini": ini, "users.txt": fmt.Sprintf("%q %q\n", appRole, password)}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return 0, nil, err
		}
	}
	for _, p := range []string{dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "users.txt")} {
		if err := owner.chown(p); err != nil {
			return 0, nil, err
		}
	}
	cmd := exec.Command(bin, "--quiet", filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr = owner.sysProcAttr()
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	return port, cmd, waitPort(ctx, port)
}

// startTenantproxy builds tenantproxy and runs it in enforce mode with one enterprise workspace per
// workspace of the schema, and returns its port and the bench workspace's key.
func startTenantproxy(ctx context.Context, work, upstream string) (int, *exec.Cmd, string, error) {
	bin := filepath.Join(work, "tenantproxy")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tenantproxy")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return 0, nil, "", fmt.Errorf("building tenantproxy: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return 0, nil, "", err
	}
	var key string
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "listen: 127.0.0.1:%d\nupstream: '%s'\nmode: enforce\nadmin: {listen: ''}\n", port, upstream)
	fmt.Fprintf(&cfg, "diagnostics: {log: '%s', verify_interval: 0s}\nworkspaces:\n", filepath.Join(work, "diagnostics.jsonl"))
	for w := 1; w <= workspaces; w++ {
		id := fmt.Sprintf("ws%03d", w)
		k, err := auth.NewKey()
		if err != nil {
			return 0, nil, "", err
		}
		salt, err := auth.NewSalt()
		if err != nil {
			return 0, nil, "", err
		}
		v, err := auth.HashKey(k, salt, auth.DefaultIterations)
		if err != nil {
			return 0, nil, "", err
		}
		if id == benchWorkspace {
			key = k
		}
		fmt.Fprintf(&cfg, "  - {id: %s, slug: %s, tier: enterprise, keys: ['%s']}\n", id, id, v)
	}
	path := filepath.Join(work, "tenantproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		return 0, nil, "", err
	}
	args := []string{"serve", "--config", path}
	if profile := os.Getenv("TENANTPROXY_CPUPROFILE"); profile != "" {
		args = append(args, "--cpuprofile", profile)
	}
	cmd := exec.Command(bin, args...)
	logFile, err := os.Create(filepath.Join(work, "tenantproxy.log"))
	if err != nil {
		return 0, nil, "", err
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return 0, nil, "", err
	}
	return port, cmd, key, waitPort(ctx, port)
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs one pgbench and returns its TPS, every transaction's latency and the proxy's CPU time per
// transaction.
func pgbench(ctx context.Context, work string, t target, w workload, protocol string, clients int, d time.Duration) (*result, error) {
	script := w.scoped
	if t.app {
		script = w.app
	}
	dir, err := os.MkdirTemp(work, "run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	scriptPath := filepath.Join(dir, "script.sql")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		return nil, err
	}
	threads := min(clients, runtime.NumCPU())
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-f", scriptPath, "-M", protocol, "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(int(d.Seconds())), "-l", "--log-prefix", filepath.Join(dir, "log"), t.dsn)
	cmd.Dir = dir
	var stdout strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stdout
	cpuBefore := cpuTime(t.pid)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pgbench: %w\n%s", err, stdout.String())
	}
	cpuAfter := cpuTime(t.pid)
	m := tpsLine.FindStringSubmatch(stdout.String())
	if m == nil {
		return nil, fmt.Errorf("no tps in pgbench's output:\n%s", stdout.String())
	}
	tps, _ := strconv.ParseFloat(m[1], 64)
	r := &result{tps: []float64{tps}}
	logs, _ := filepath.Glob(filepath.Join(dir, "log.*"))
	for _, l := range logs {
		lat, err := latencies(l)
		if err != nil {
			return nil, err
		}
		r.lat = append(r.lat, lat...)
	}
	if t.pid != 0 && len(r.lat) > 0 {
		r.cpuMicro = []float64{(cpuAfter - cpuBefore).Seconds() * 1e6 / float64(len(r.lat))}
	}
	return r, nil
}

// latencies reads a pgbench transaction log: "client_id transaction_no time script_no time_epoch
// time_us", time being the latency in microseconds.
func latencies(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		v, err := strconv.ParseFloat(fields[2], 64)
		if err == nil {
			out = append(out, v)
		}
	}
	return out, sc.Err()
}

// cpuTime returns the user+system CPU time of process pid from /proc; 0 for pid 0.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces) in parentheses.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const clkTck = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration((utime + stime) / clkTck * float64(time.Second))
}

func median(v []float64) float64 { return percentile(v, 0.5) }

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func waitPort(ctx context.Context, port int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on port %d: %w", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func pgbouncerVersion() string {
	out, err := exec.Command("pgbouncer", "--version").Output()
	if err != nil {
		return "PgBouncer"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// osUser is the account PgBouncer runs as: nil for the current user, the postgres OS user as root.
type osUser struct{ uid, gid int }

func serverOwner() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root: PgBouncer must run as the postgres OS user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &osUser{uid, gid}, nil
}

func (o *osUser) chown(path string) error {
	if o == nil {
		return nil
	}
	return os.Chown(path, o.uid, o.gid)
}

func (o *osUser) sysProcAttr() *syscall.SysProcAttr {
	if o == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}}
}
