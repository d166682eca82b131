# The test command of the README and of .ci/run.
.PHONY: test build vet fuzz

test: vet
	go test -race -count=1 -timeout 15m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt: the files above need formatting'; exit 1)
	go vet ./...

build:
	go build -o bin/ ./cmd/...

# Every Go fuzz target in the repository (func FuzzXxx in a _test.go file),
# one after the other, for FUZZTIME each. A crasher stops the run and is
# written to that package's testdata/fuzz/FuzzXxx: fix it and commit it as a
# regression case. CI runs this after `make test`.
FUZZTIME ?= 10s
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  pkg=./$$(dirname $${f#./}); \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
	    go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done
