package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is a PostgreSQL instance private to one test, so that the test
// can stop and restart it without disturbing the machine's shared server,
// which other packages' tests use at the same time.
type pgServer struct {
	t    *testing.T
	bin  string // directory of initdb, pg_ctl and postgres
	dir  string // everything lives here: data, socket, log
	port int
	// asUser runs the server's commands as this user when the test runs as
	// root, which initdb refuses.
	asUser string
}

// startPostgres initialises and starts a private PostgreSQL on a free
// loopback port, with trust authentication for user postgres, and stops
// and deletes it when the test ends. Without PostgreSQL's server binaries
// the test is skipped, or fails when CI=true.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		const msg = "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or via pg_config"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "oauthgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgServer{t: t, bin: bin, dir: dir, port: freePort(t)}
	t.Cleanup(p.destroy)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, initdb needs an unprivileged user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.asUser = "postgres"
	}
	// fsync=off: the tests crash oauthgate, never the machine, so what
	// PostgreSQL has written survives; skipping the flushes keeps the
	// shared machine's disk free for the others.
	if out, err := p.run("initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Start()
	return p
}

// postgresBin finds the newest installed server's binaries.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d
		}
	}
	return ""
}

func versionOf(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func (p *pgServer) data() string { return filepath.Join(p.dir, "data") }

// run runs one of the server's programs, as the unprivileged user if need be.
func (p *pgServer) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(p.bin, prog)
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// Start starts the server (again) and waits until it accepts connections.
func (p *pgServer) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=16MB",
		p.port, p.dir)
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		p.t.Fatalf("starting private PostgreSQL: %v\n%s\n%s", err, out, p.serverLog())
	}
}

// Stop shuts the server down as an operator would (fast: open sessions are
// ended, committed work is kept).
func (p *pgServer) Stop() {
	p.t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.data(), "-w", "-t", "60", "-m", "fast", "stop"); err != nil {
		p.t.Fatalf("stopping private PostgreSQL: %v\n%s", err, out)
	}
}

// DSN is a connection string for database name.
func (p *pgServer) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, name)
}

// CreateDB creates an empty database and returns its DSN.
func (p *pgServer) CreateDB(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		p.t.Fatalf("connecting to private PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		p.t.Fatalf("creating database %s: %v", name, err)
	}
	return p.DSN(name)
}

// destroy stops the server whatever its state, killing it if pg_ctl cannot,
// and deletes its files.
func (p *pgServer) destroy() {
	if _, err := os.Stat(filepath.Join(p.data(), "postmaster.pid")); err == nil {
		if out, err := p.run("pg_ctl", "-D", p.data(), "-w", "-t", "20", "-m", "immediate", "stop"); err != nil {
			p.t.Logf("pg_ctl stop: %v\n%s", err, out)
			p.kill()
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		p.t.Logf("removing %s: %v", p.dir, err)
	}
}

// kill sends SIGKILL to the postmaster named in postmaster.pid; its
// children exit once it is gone.
func (p *pgServer) kill() {
	b, err := os.ReadFile(filepath.Join(p.data(), "postmaster.pid"))
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 1 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (p *pgServer) serverLog() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
	return string(b)
}
