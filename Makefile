# make schema-validate: every YAML of the project (jobs, assets, recipes, registry, configs) against its JSON
# Schema (schemas/) and its pydantic model; the same as `dativo_ingest validate`.
# make lock: regenerate requirements.txt from pyproject.toml (needs uv: pip install uv); it keeps the pins that
# still fit; make lock LOCK_FLAGS=--upgrade moves every pin to the newest allowed version.
LOCK_FLAGS ?=
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: schema-validate lock

schema-validate:
	$(PYTHON) -m dativo_ingest.config.validate .

lock:
	uv pip compile pyproject.toml --extra dev --universal --quiet $(LOCK_FLAGS) --custom-compile-command "make lock  (pip install uv; then: uv pip compile pyproject.toml --extra dev --universal -o requirements.txt)" -o requirements.txt
