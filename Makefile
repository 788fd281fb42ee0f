# The two commands of the README: `make demo` and `make test` (each sets up first).
.PHONY: setup demo test

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/finpatrol demo

test: setup
	.venv/bin/python -m pytest
