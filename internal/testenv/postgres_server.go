package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresServer is a throwaway PostgreSQL cluster in a temp folder,
// listening on 127.0.0.1 only, with trust auth and no fsync (unless
// SWITCHBOARD_TEST_PG_FSYNC=1).
type postgresServer struct {
	bin    string // folder of initdb, postgres, pg_ctl
	dir    string // everything: data, socket, log
	data   string
	url    string // of the "postgres" database
	asUser string // "postgres" when we are root (PostgreSQL refuses root), else ""
	cmd    *exec.Cmd
	exited <-chan struct{} // closed when cmd has exited
}

func startPostgres() (*postgresServer, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, err
	}
	s := &postgresServer{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		s.asUser = "postgres"
		if err := chownTo(dir, s.asUser); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := s.command(ctx, "initdb", "-D", s.data, "--auth=trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}

	// The port can be taken between FreePort and the bind: try a few.
	for attempt := 0; ; attempt++ {
		err = s.run(ctx, FreePort())
		if err == nil {
			return s, nil
		}
		if attempt == 2 || ctx.Err() != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// run starts the postmaster as a child of this process, not daemonized by
// pg_ctl: Pdeathsig then stops it even when the test binary dies without
// reaching Main (a panic, a -timeout, a kill).
func (s *postgresServer) run(ctx context.Context, port int) error {
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own copy

	args := []string{"-D", s.data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + s.dir,
		"-c", "max_connections=200"}
	if !durablePostgres() {
		// Tests throw the data away: no need to wait for the disk.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := s.command(context.Background(), "postgres", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	exited, err := startChild(cmd, s.quitSignal())
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}

	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	for {
		if err := ping(ctx, url); err == nil {
			s.cmd, s.exited, s.url = cmd, exited, url
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited on port %d:\n%s", port, tail(logPath, 2000))
		case <-ctx.Done():
			s.cmd, s.exited = cmd, exited
			s.kill()
			return fmt.Errorf("postgres not ready on port %d: %w\n%s", port, ctx.Err(), tail(logPath, 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop shuts the server down without a checkpoint (its data is thrown away)
// and removes its folder.
func (s *postgresServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.command(ctx, "pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// quitSignal is what stops the server at once: SIGQUIT is postgres's
// "immediate shutdown"; runuser cannot pass SIGQUIT on but answers SIGTERM
// by stopping its child.
func (s *postgresServer) quitSignal() syscall.Signal {
	if s.asUser != "" {
		return syscall.SIGTERM
	}
	return syscall.SIGQUIT
}

// kill stops the server without pg_ctl. SIGKILL comes last: it would kill
// runuser and orphan the postmaster.
func (s *postgresServer) kill() {
	s.cmd.Process.Signal(s.quitSignal())
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// command runs a PostgreSQL program as the server's user.
func (s *postgresServer) command(ctx context.Context, program string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, program)
	if s.asUser == "" {
		return exec.CommandContext(ctx, path, args...)
	}
	return exec.CommandContext(ctx, "runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
}

const tempPrefix = "switchboard-pg-"

// sweepStale removes the folders of servers whose test binary died before
// Main could (their postmaster is gone, killed by Pdeathsig). Young folders
// are left alone: another binary may be running initdb in one.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil || time.Since(info.ModTime()) < 10*time.Minute {
			continue
		}
		if pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(pidFile), "\n")
			pid, err := strconv.Atoi(strings.TrimSpace(first))
			if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
				continue // running, or unreadable: not ours to judge
			}
		}
		os.RemoveAll(dir)
	}
}

// postgresBin finds the newest /usr/lib/postgresql/<version>/bin (Debian's
// layout, not on PATH), else the folder of initdb on PATH.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL found: neither /usr/lib/postgresql/*/bin/initdb " +
		"nor initdb on PATH (apt-get install postgresql)")
}

func chownTo(dir, username string) error {
	u, err := user.Lookup(username)
	if err != nil {
		return fmt.Errorf("running as root, PostgreSQL needs the %q user: %w", username, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// tail returns at most the last n bytes of the file at path, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// restart stops the server with a fast shutdown (committed data stays) and
// runs it again on the same port after down.
func (s *postgresServer) restart(down time.Duration) error {
	u, err := url.Parse(s.url)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(u.Port())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := s.command(ctx, "pg_ctl", "-D", s.data, "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
	}
	time.Sleep(down)
	return s.run(ctx, port)
}
