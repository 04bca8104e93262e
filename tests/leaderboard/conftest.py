"""Fixtures of the leaderboard app's tests: a results folder holding records of every task family
(`board_records.py`), and the app module loaded from leaderboard/app.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def board_dir(tmp_path_factory) -> Path:
    import board_records

    root = tmp_path_factory.mktemp("board_results")
    board_records.write(root)
    return root


@pytest.fixture(scope="session")
def app_module():
    spec = importlib.util.spec_from_file_location("leaderboard_app", REPO / "leaderboard" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["leaderboard_app"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def board(app_module, board_dir):
    return app_module.load_board(str(board_dir), n_boot=200, hub_url="http://hub.example")
