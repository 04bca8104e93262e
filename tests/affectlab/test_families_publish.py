"""Every family's run, published: a tiny run of each family (its smoke recipe, shortened) is pushed to the
offline Hub emulator; the pushed files are exactly the allow-list (model or adapter, config, tokenizer,
code, card, eval summary), no pushed file contains a sentence of the training data or the token, and
the usage snippet of every card runs against the saved folder in a fresh process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from affectlab.testing.hub_emulator import HubEmulator

REPO = Path(__file__).resolve().parents[2]
TOKEN = "hf_familiesPublishToken012345678"
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json"}
SHORT = ["--max_steps", "2", "--logging_steps", "1", "--save_strategy", "no", "--eval_strategy", "no",
         "--load_best_model_at_end", "false"]

FAMILIES = {
    # family: (smoke recipe, extra flags, files that must be pushed beside the tokenizer, card and summary)
    "classifier": ("classifier", ["--max_train_samples", "64", "--max_eval_samples", "32", "--max_length", "32"],
                   {"config.json", "model.safetensors", "multilabel_pipeline.py"}),
    "nli": ("nli", ["--num_folds", "0", "--max_train_samples", "64", "--max_length", "64"],
            {"config.json", "model.safetensors"}),
    "span-qa": ("span_qa", ["--max_train_samples", "16", "--max_eval_samples", "16", "--max_length", "96",
                            "--doc_stride", "32"],
                {"config.json", "model.safetensors", "configuration_span_qa.py", "modeling_span_qa.py",
                 "configuration_gemma_encoder.py", "modeling_gemma_encoder.py"}),
    "regression": ("regression", ["--max_train_samples", "64", "--max_eval_samples", "32"],
                   {"config.json", "model.safetensors", "configuration_regression_head.py",
                    "modeling_regression_head.py", "personas.json", "label_set.json"}),
    "sft": ("sft", ["--max_train_samples", "16", "--max_eval_samples", "4", "--num_train_epochs", "1"],
            {"adapter_config.json", "adapter_model.safetensors", "personas.json", "label_set.json"}),
}


def env_for(hub, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_TOKEN")}
    env.update(hub.client_env(token=TOKEN), HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1",
               AFFECTLAB_RESULTS=str(tmp_path / "results"), TOKENIZERS_PARALLELISM="false")
    return env


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("families")
    out = {}
    with HubEmulator(tokens={TOKEN: "alice"}) as hub:
        env = env_for(hub, root)
        for family, (recipe, extra, _) in FAMILIES.items():
            run_dir = root / recipe
            model = [] if family == "sft" else ["--model_name_or_path", str(tiny_bert_dir)]
            cmd = [sys.executable, "-m", "affectlab.cli", "train", family, "--config",
                   str(REPO / "recipes" / "smoke" / f"{recipe}.yaml"), *model, "--output_dir", str(run_dir),
                   "--results_location", str(root / "results"), *SHORT, *extra, "--push_to_hub", "true",
                   "--hub_model_id", f"alice/{recipe}", "--hub_token", TOKEN]
            proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, (family, proc.stderr[-4000:])
            repo = hub.repos[("model", f"alice/{recipe}")]
            tree = repo.commits[repo.branches["main"]].tree
            blobs = {path: hub.blobs[entry.sha256] for path, entry in tree.items()}
            out[family] = {"dir": run_dir, "files": set(tree), "blobs": blobs, "log": proc.stdout + proc.stderr}
    return out


def training_sentences(family: str, limit: int = 300) -> list[str]:
    """Sentences of the data each family trained on (long enough to be unmistakable)."""
    from dataset_builders import build_dataset

    if family == "classifier":
        texts = build_dataset("goemotions")["train"].select(range(limit))["text"]
    elif family in ("nli", "span-qa"):
        texts = build_dataset("redsm5", config="nli")["train"]["text"]
        texts = [s for t in texts for s in re.split(r"(?<=[.!?])\s+", t)]
    else:
        texts = build_dataset("emobank", config="aggregated")["train"].select(range(limit))["text"]
    return [t.strip() for t in texts if len(t.strip()) >= 40]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_push_carries_exactly_the_allow_list(pushed, family):
    files = pushed[family]["files"]
    expected = FAMILIES[family][2] | TOKENIZER_FILES | {"README.md", "eval_results.json"}
    assert expected <= files, expected - files
    others = files - expected
    allowed_more = {"special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt", "chat_template.jinja",
                    "added_tokens.json"}
    assert {f for f in others if not f.startswith(".eval_results/")} <= allowed_more, others
    for never in ("training_args.bin", "train_results.json", "result_records.json", "gradient_health.jsonl",
                  "report.txt"):
        assert never not in files
    assert not [f for f in files if f.endswith((".arrow", ".jsonl", ".csv", ".png")) or "checkpoint" in f]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_nothing_pushed_quotes_the_training_data_or_the_token(pushed, family):
    blobs = pushed[family]["blobs"]
    text = "\n".join(b.decode("utf-8", "ignore") for b in blobs.values())
    assert TOKEN not in text and TOKEN not in pushed[family]["log"]
    quoted = [s for s in training_sentences(family) if s in text]
    assert quoted == [], quoted[:3]
    for path in pushed[family]["dir"].rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("family", list(FAMILIES))
def test_card_usage_snippet_runs_against_the_saved_folder(pushed, family):
    run_dir = pushed[family]["dir"]
    card = (run_dir / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", card, re.S)
    assert block, "the card has no usage snippet"
    code = block.group(1).replace(f"alice/{run_dir.name}", str(run_dir))
    assert str(run_dir) in code, "the snippet does not name the model's repo"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=run_dir.parent, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "the snippet printed nothing"


def test_cards_are_hub_ready(pushed):
    from huggingface_hub import ModelCard

    for family, info in pushed.items():
        card = ModelCard.load(info["dir"] / "README.md")
        assert card.data.license and card.data.language and card.data.pipeline_tag and card.data.eval_results, family
        for section in ("## Intended use", "## Out-of-scope use", "## Limitations and biases",
                        "## Training data and split protocol", "### Framework versions"):
            assert section in card.text, (family, section)
        if family in ("nli", "span-qa"):
            assert "Not for diagnosis, screening or triage" in card.text and card.data.license == "other"
        summary = json.loads((info["dir"] / "eval_results.json").read_text())
        assert summary["dataset"]["name"]
