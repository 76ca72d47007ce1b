# regbridge — the two commands: `make run` and `make test`. Everything else is set-up they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test install lint typecheck unit integration tools kafka-jars lock schemas clean \
	bench bench-runtime bench-chunk bench-catalog bench-gvr bench-nvr bench-scale bench-vgpv bench-cvr bench-retry \
	bench-console fhir-validator-jars

run: install tools kafka-jars  ## the local stack: Kafka, the sandboxes, every worker, a demo stream, until Ctrl-C
	$(BIN)/regbridge dev up

test: install tools kafka-jars fhir-validator-jars lint typecheck  ## lint, type-check, then every test against a real broker
	$(BIN)/pytest

install: $(STAMP)

$(STAMP):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "regbridge needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

tools:  ## OS packages the tests need (Java, Maven, PostgreSQL): installed in CI when missing
	@bash deploy/ci/ensure-tools.sh

kafka-jars:  ## Apache Kafka's jars from Maven Central, cached outside the repository
	@$(BIN)/python deploy/kafka/localkafka.py fetch >/dev/null || [ -z "$$CI" ]

fhir-validator-jars:  ## HAPI FHIR's R4 validator from Maven Central (checks NVR bundles), cached likewise
	@$(BIN)/python deploy/fhir-validator/fhirvalidator.py fetch >/dev/null || [ -z "$$CI" ]

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

integration: install kafka-jars fhir-validator-jars
	$(BIN)/pytest tests/integration

schemas: install
	$(BIN)/regbridge schema export --out schemas

bench: bench-runtime bench-chunk bench-catalog bench-gvr bench-nvr bench-scale bench-vgpv bench-cvr bench-retry bench-console  ## every benchmark (minutes; prints figures, asserts nothing)

bench-runtime: install tools kafka-jars
	$(BIN)/python -m benchmarks.runtime_overhead

bench-chunk: install tools  ## a chunk's steps per event, no Kafka: CPU µs, and instructions (valgrind)
	$(BIN)/python -m benchmarks.chunk_cost --postgres $(if $(shell command -v valgrind),--instructions)

bench-catalog: install tools kafka-jars  ## 300,000 units, 1 % changed
	$(BIN)/python -m benchmarks.catalog_import

bench-gvr: install tools kafka-jars  ## 50,000 visits, GVR sandbox answering in 20 ms
	$(BIN)/python -m benchmarks.gvr_drain

bench-nvr: install tools kafka-jars  ## 100,000 vaccinations, NVR sandbox answering in 50 ms
	$(BIN)/python -m benchmarks.nvr_drain

bench-scale: install tools kafka-jars  ## GVR workers 1 → 2 → 4, one SIGKILLed, one added; no loss
	$(BIN)/python -m benchmarks.scale_out

bench-vgpv: install tools kafka-jars  ## 700,000 visits over 200 units: one month built and delivered
	$(BIN)/python -m benchmarks.vgpv_month

bench-cvr: install tools kafka-jars  ## 500,000 waiting-list entries over 200 units: a month's reports over SFTP
	$(BIN)/python -m benchmarks.cvr_report

bench-retry: install tools kafka-jars  ## retries of a 2 s tier: lateness with the input idle, and draining 100,000 events
	$(BIN)/python -m benchmarks.retry_lateness

bench-console: install tools kafka-jars  ## the console's overview over 100,000 dead letters, 3 workers × 12 partitions
	$(BIN)/python -m benchmarks.console_overview

lock: install  ## re-resolve the locks after changing pyproject.toml: dev, workers, sandboxes
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		-o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes \
		-o requirements.prod.lock
	$(BIN)/uv pip compile pyproject.toml --extra sandbox --python-version 3.11 --generate-hashes \
		-o requirements.sandbox.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
