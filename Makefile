# Qudao — the two commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
GEN_STAMP := gen/.stamp
# The web portal (portal/): npm packages from the lock file, a Vite build into
# portal/dist, redone only when the portal's sources change.
NODE_STAMP := portal/node_modules/.installed
PORTAL_STAMP := portal/dist/.stamp
PORTAL_SOURCES := $(shell find portal/src portal/public -type f 2>/dev/null) portal/index.html \
                  portal/vite.config.js portal/package.json portal/package-lock.json
PYTEST_WORKERS ?= 2
BENCH ?=

.PHONY: install gen portal lint lock test test-service test-fast fault run demo bench clean help

help:
	@echo "make run    install into .venv and start the whole suite (qudao up)"
	@echo "make demo [SCALE=small|medium|full]  fill the running suite with a demo world"
	@echo "make test   install if needed, lint (buf, import contracts) and run the tests"
	@echo "make bench [BENCH=name]  run benchmarks into var/bench/results.json"
	@echo "make fault  long fault-injection runs (NATS cluster soak, processes killed under qudao up)"
	@echo "make lock   re-resolve requirements/*.txt after changing pyproject.toml"

# Dependencies come from the lock (requirements/dev.txt, exact versions with hashes), the
# same resolution the image installs from requirements/runtime.txt; `pip check` fails if
# pyproject.toml asks for something the lock lacks (then run `make lock`).
$(STAMP): pyproject.toml requirements/dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (looked for $(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check || { echo "requirements/*.txt is behind pyproject.toml: run make lock"; exit 1; }
	$(PY) requirements/check.py
	touch $(STAMP)

# Re-resolve the locks after a change of pyproject.toml (needs the package index).
lock:
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes --quiet -o requirements/runtime.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --extra embedded --python-version 3.11 --generate-hashes --quiet -o requirements/dev.txt
	$(VENV)/bin/uv pip compile requirements/build.in -c requirements/dev.txt --python-version 3.11 --generate-hashes --quiet -o requirements/build.txt

install: $(STAMP) $(GEN_STAMP) $(PORTAL_STAMP)

# Generated protobuf/gRPC code is not committed: it is built here from protos/ into gen/,
# which the venv has on its path (gen.pth).
$(GEN_STAMP): $(STAMP) $(PROTOS)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	find gen/qudao -type d -exec touch {}/__init__.py \;
	$(PY) -c "import site,os; open(os.path.join(site.getsitepackages()[0],'qudao-gen.pth'),'w').write(os.path.abspath('gen')+'\n')"
	touch $(GEN_STAMP)

gen: $(GEN_STAMP)

$(NODE_STAMP): portal/package.json portal/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "Node.js 20 and npm are required to build the portal"; exit 1; }
	cd portal && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

$(PORTAL_STAMP): $(NODE_STAMP) $(PORTAL_SOURCES)
	cd portal && npm run --silent build -- --logLevel warn
	touch $(PORTAL_STAMP)

portal: $(PORTAL_STAMP)

# buf breaking: the protos must stay wire-compatible with main's (on main itself a no-op).
MAIN_GIT := $(shell git rev-parse --git-common-dir 2>/dev/null)

lint: install
	$(VENV)/bin/buf lint
	@if git rev-parse --verify -q main >/dev/null; then \
		$(VENV)/bin/buf breaking --against '$(MAIN_GIT)#branch=main,subdir=.'; \
	else echo "buf breaking: no main branch here, skipped"; fi
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check shared services gateway suite tests

test: install lint
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) -m "not fault"

# The service-layer tier alone: use cases on in-memory fakes, no I/O, seconds.
test-service: install
	$(VENV)/bin/pytest -q tests/service tests/unit

test-fast: install
	$(VENV)/bin/pytest -q -x -m "not fault and not postgres"

# Long fault-injection runs with real processes (make test runs a short version of each):
# the 3-node cluster soak (every member killed in turn), and `qudao up` with nats-server,
# each service and the gateway killed in turn during a stream of orders. -s: they print
# their recovery times.
fault: install
	$(VENV)/bin/pytest -q -s -m fault

run: install
	$(VENV)/bin/qudao up

# With `make run` going in another terminal: a demo world through the gateway and the
# ERP's gRPC door (SCALE=small|medium|full).
SCALE ?= full
demo: install
	$(VENV)/bin/qudao demo --scale $(SCALE)

# The HTTP benchmarks drive the gateway with wrk in its own process (Debian's package).
bench: install
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk (Debian package)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(PY) -m tests.bench $(if $(BENCH),--only $(BENCH),)

clean:
	rm -rf $(VENV) gen var portal/node_modules portal/dist
