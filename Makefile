# The test command of the README and of .ci/run.
SHELL := /bin/bash
.PHONY: test test-deps build vet fuzz

# Installs PostgreSQL, Redis, NGINX, Prometheus and Alertmanager from Debian's packages if missing.
test-deps:
	@scripts/test-deps.sh

test: test-deps vet
	go test -race -count=1 -timeout 20m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt: the files above need formatting'; exit 1)
	go vet ./...

build:
	go build -o bin/ ./cmd/...

# Every Go fuzz target in the repository (func FuzzXxx in a _test.go file),
# one after the other, for FUZZTIME each. A crasher stops the run and is
# written to that package's testdata/fuzz/FuzzXxx: fix it and commit it as a
# regression case. CI runs this after `make test`.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is mid-call on a loaded box
# (golang/go#75804, fixed in Go 1.27): no input is written, nothing was
# found. Such a run is retried once; a real finding (a written input) or a
# second failure fails.
FUZZTIME ?= 10s
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  pkg=./$$(dirname $${f#./}); \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
	    log=$$(mktemp); \
	    go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | tee $$log; rc=$${PIPESTATUS[0]}; \
	    if [ $$rc -ne 0 ]; then \
	      if grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
	        echo "fuzz: $$name stopped on Go's fuzztime deadline race (golang/go#75804), nothing found; running it again"; \
	        go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	      else rm -f $$log; exit 1; fi; \
	    fi; \
	    rm -f $$log; \
	  done; \
	done
