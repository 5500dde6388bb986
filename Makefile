.PHONY: run test lint format
run:  ## Run web + worker + beat locally (SQLite and an embedded broker unless configured)
	bin/run
test:  ## All checks and tests on PostgreSQL and Redis
	bin/test
format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
