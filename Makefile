.PHONY: run test lint format messages
run:  ## Run web + worker + beat locally (SQLite and an embedded broker unless configured)
	bin/run
test:  ## All checks and tests on PostgreSQL and Redis
	bin/test
format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
messages:  ## Extract every marked string into locale/*/LC_MESSAGES/django.po, then compile the .mo files (needs gettext)
	.venv/bin/python manage.py makemessages -l de -l es -l fr -l pl --no-obsolete --add-location=file --ignore=staticfiles --ignore=var --ignore=bench --ignore=test-output --ignore='*/node_modules/*'
	.venv/bin/python manage.py compilemessages --ignore=.venv --ignore=staticfiles
