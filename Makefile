# One command runs what CI runs: `make check` (lint, types, import rules, tests).
# PYTHON defaults to the project venv made by `make venv` (the README's test command).
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
PACKAGES := core agent detectors actions playbooks nlq sim
PYTEST_ARGS ?=

.PHONY: check lint types imports test venv typecheck-shim clean docs

check: lint types imports test

venv:
	python3 -m venv .venv
	.venv/bin/python -m pip install --quiet --upgrade pip
	.venv/bin/python -m pip install --quiet -e '.[dev,llm]'

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

# mypy cannot see setuptools' editable import hook: give it a shim tree of symlinks
# (.typecheck/vigil/<pkg> -> ../../<pkg>), see ../shared/notes/packaging.md.
typecheck-shim:
	@mkdir -p .typecheck/vigil
	@for p in $(PACKAGES); do ln -sfn ../../$$p .typecheck/vigil/$$p; done

types: typecheck-shim
	MYPYPATH=.typecheck $(PYTHON) -m mypy $(foreach p,$(PACKAGES),-p vigil.$(p))

imports:
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"

test:
	$(PYTHON) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf .typecheck build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

docs:
	$(PYTHON) -c "from vigil.agent.config_docs import config_reference as c; open('docs/configuration.md', 'w').write(c())"
