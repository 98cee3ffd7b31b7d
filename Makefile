# Engage: `make run` for a working demo on the embedded default, `make test` for everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_PHONE ?= +15550100001

PRISM := $(VENV)/prism/node_modules/.bin/prism

.PHONY: install catalogs extract run chat test lint typecheck format clean prism browser bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Compile the gettext catalogs: `messages` (texts workers read: es, en, ht) and `web` (the
# pages: es, en) -> locales/*/LC_MESSAGES/*.mo.
catalogs: install
	$(BIN)/pybabel compile --domain messages --directory locales --statistics
	$(BIN)/pybabel compile --domain web --directory locales --statistics

# After changing a text: extract, then merge into every catalog and translate the new entries.
extract: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext --no-location --omit-header \
		-o locales/messages.pot .
	$(BIN)/pybabel update --domain messages --input-file locales/messages.pot \
		--output-dir locales --no-fuzzy-matching --ignore-obsolete --width 100
	$(BIN)/pybabel extract -F babel-web.cfg -k _ -k gettext -k Phrase --no-location \
		--omit-header -o locales/web.pot .
	$(BIN)/pybabel update --domain web --input-file locales/web.pot \
		--output-dir locales --no-fuzzy-matching --ignore-obsolete --width 100

run: catalogs
	ENGAGE_ENV=development $(BIN)/engage db upgrade
	ENGAGE_ENV=development $(BIN)/engage surveys load
	ENGAGE_ENV=development $(BIN)/engage run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy over engage/, strict for survey/ and services/ (pyproject.toml, [tool.mypy]).
typecheck: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Twilio's OpenAPI description served as a validating mock, for the test that proves our
# outbound requests are what Twilio accepts (skipped, with its reason, where npm is missing).
prism: $(PRISM)

$(PRISM):
	@if command -v npm >/dev/null; then \
		npm install --silent --no-audit --no-fund --prefix $(VENV)/prism @stoplight/prism-cli@5.16.0; \
	else echo "npm not found: the Prism schema test will be skipped"; fi

# Debian's Chromium and ChromeDriver for the pages' browser tests; sox and espeak-ng for the
# tests of recordings in other encodings and of `engage voice prompts --render-with espeak-ng`.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		&& command -v sox >/dev/null && command -v espeak-ng >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver sox espeak-ng >/dev/null; }

test: catalogs lint typecheck prism browser
	ENGAGE_PRISM=$(abspath $(PRISM)) $(BIN)/pytest

# Benchmarks (not part of test): webhook, sending, fan-out, then results over 1,000,000 answers.
# Each prints ratios against ceilings measured in the same run; see bench/README.md.
bench: catalogs
	status=0; bench/run.sh || status=$$?; \
	$(BIN)/python bench/results_bench.py --answers 1000000 --databases postgresql,sqlite \
		|| status=$$?; exit $$status

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis .mypy_cache
	find locales -name '*.mo' -delete
