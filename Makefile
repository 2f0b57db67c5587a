# make schema-validate: every YAML of the project (jobs, assets, recipes, registry, configs) against its JSON
# Schema (schemas/) and its pydantic model; the same as `dativo_ingest validate`.
# make lock: regenerate requirements.txt from pyproject.toml (needs uv: pip install uv).
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)

.PHONY: schema-validate lock

schema-validate:
	$(PYTHON) -m dativo_ingest.config.validate .

lock:
	uv pip compile pyproject.toml --extra dev --universal --quiet --custom-compile-command "make lock  (pip install uv; then: uv pip compile pyproject.toml --extra dev --universal -o requirements.txt)" -o requirements.txt
