# keyflow: every target a person or CI runs. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
BIN       ?= bin
STATICCHECK_VERSION ?= v0.8.2

.PHONY: help test lint bench bench-durable demo build fuzz golden clean lambda npm

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the keyflow CLI into bin/
	$(GO) build -o $(BIN)/keyflow ./cmd/keyflow

test: node_modules/.package-lock.json ## vet, then every test with the race detector (moto-backed tests skip, saying why, where moto_server is absent)
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt wants to rewrite:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

bench: ## the engine's and the language's benchmarks, with allocations
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./states/...

fuzz: ## each fuzz target for 30 s
	$(GO) test ./states -run '^$$' -fuzz FuzzDecode -fuzztime 30s
	$(GO) test ./states/jsonpath -run '^$$' -fuzz FuzzCompilePath -fuzztime 30s
	$(GO) test ./states/intrinsic -run '^$$' -fuzz FuzzIntrinsic -fuzztime 30s
	$(GO) test ./states/payload -run '^$$' -fuzz FuzzPayload -fuzztime 30s
	$(GO) test ./policy -run '^$$' -fuzz FuzzParse -fuzztime 30s
	$(GO) test ./engine/sfnjson -run '^$$' -fuzz FuzzUnmarshal -fuzztime 30s

bench-durable: ## executions parked in a Wait: process memory, store size and restart time (KEYFLOW_BENCH_PARKED, default 100000)
	KEYFLOW_BENCH_PARKED=$${KEYFLOW_BENCH_PARKED:-100000} $(GO) test -run '^$$' -bench Parked -benchtime 1x -timeout 60m ./engine/service/

demo: ## the whole story: a sandbox Organization, every due key through 90 days, a quarantine, the audit and keyflow-report.html
	$(GO) run ./cmd/keyflow demo

golden: ## refresh golden files after a deliberate change
	$(GO) test ./... -run Golden -update

lambda: ## build the Lambda bootstrap (provided.al2023, arm64) from cmd/lambda into dist/keyflow-lambda.zip
	rm -rf dist/lambda && mkdir -p dist/lambda
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -tags lambda.norpc -ldflags='-s -w -buildid=' -o dist/lambda/bootstrap ./cmd/lambda
	@# a fixed time stamp keeps the zip, and so the template's CodeSha256, the same for the same code
	touch -t 198001010000 dist/lambda/bootstrap
	rm -f dist/keyflow-lambda.zip && cd dist/lambda && zip -X -q ../keyflow-lambda.zip bootstrap

npm: node_modules/.package-lock.json ## install the pinned Node validators (asl-validator) that the cfn tests run

# npm ci only when the lock file changed: the test target depends on it, so a
# fresh clone gets the validator and later runs skip the install.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

clean:
	rm -rf $(BIN)
