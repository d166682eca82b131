package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// Program lets a program outside `go test` (cmd/sbcluster) start services
// with this package: it is the testing.TB they take. Cleanup functions run
// at Close, last first; Fatal and Skip end the function given to Run with an
// error. Only the methods this package calls are implemented: the embedded
// testing.TB is nil.
type Program struct {
	testing.TB
	name string
	log  io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

var _ testing.TB = (*Program)(nil)

// NewProgram returns a Program named name that logs to log.
func NewProgram(name string, log io.Writer) *Program { return &Program{name: name, log: log} }

// programExit is what Fatal panics with, for Run to recover.
type programExit struct{ err error }

// Run calls fn and returns the error of a Fatal or Skip inside it (nil if
// none). Cleanups registered meanwhile stay for Close.
func (p *Program) Run(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(programExit)
			if !ok {
				panic(r)
			}
			err = e.err
		}
	}()
	fn()
	return nil
}

// Close runs the cleanups, last registered first.
func (p *Program) Close() {
	for {
		p.mu.Lock()
		if len(p.cleanups) == 0 {
			p.mu.Unlock()
			return
		}
		f := p.cleanups[len(p.cleanups)-1]
		p.cleanups = p.cleanups[:len(p.cleanups)-1]
		p.mu.Unlock()
		f()
	}
}

func (p *Program) Helper()      {}
func (p *Program) Name() string { return p.name }

func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// TempDir returns a new folder removed at Close.
func (p *Program) TempDir() string {
	dir, err := os.MkdirTemp("", p.name+"-")
	if err != nil {
		p.Fatalf("temp dir: %v", err)
	}
	p.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (p *Program) Log(args ...any)                 { fmt.Fprintln(p.log, args...) }
func (p *Program) Logf(format string, args ...any) { fmt.Fprintf(p.log, format+"\n", args...) }

func (p *Program) Error(args ...any) { p.fail(); p.Log(args...) }
func (p *Program) Errorf(format string, args ...any) {
	p.fail()
	p.Logf(format, args...)
}

func (p *Program) Fatal(args ...any)                 { p.exit(fmt.Sprint(args...)) }
func (p *Program) Fatalf(format string, args ...any) { p.exit(fmt.Sprintf(format, args...)) }
func (p *Program) FailNow()                          { p.exit("failed") }
func (p *Program) Skip(args ...any)                  { p.exit(fmt.Sprint(args...)) }
func (p *Program) Skipf(format string, args ...any)  { p.exit(fmt.Sprintf(format, args...)) }
func (p *Program) SkipNow()                          { p.exit("skipped") }

func (p *Program) fail() {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
}

func (p *Program) exit(msg string) {
	p.fail()
	panic(programExit{errors.New(msg)})
}
