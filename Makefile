# The test command of the README and of .ci/run.
.PHONY: test build vet

test: vet
	go test -race -count=1 -timeout 15m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt: the files above need formatting'; exit 1)
	go vet ./...

build:
	go build -o bin/ ./cmd/...
