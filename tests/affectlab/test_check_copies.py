"""`affectlab.testing.check_copies`: the repository's marked copies equal their sources; a drifted copy (whole
file or one object, with `with A->B` replacements) is reported with a diff and the CLI exits 1; `--fix`
rewrites it from the source; markers that cannot be checked are reported, never silently passed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from affectlab.testing.check_copies import check_copies, main, resolve

REPO = Path(__file__).resolve().parents[2]
SPAN_COPY = "custom_models/span_qa/modeling_gemma_encoder.py"
SOURCE = "custom_models/gemma_encoder/modeling_gemma_encoder.py"


def test_repository_copies_are_consistent():
    assert check_copies(root=REPO) == []
    proc = subprocess.run([sys.executable, "-m", "affectlab.testing.check_copies"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    # the span_qa copies really are whole-file copies of the Gemma encoder
    for name in ("modeling_gemma_encoder.py", "configuration_gemma_encoder.py"):
        copy = (REPO / "custom_models/span_qa" / name).read_text(encoding="utf-8")
        first, rest = copy.split("\n", 1)
        assert first == f"# Copied from custom_models.gemma_encoder.{name[:-3]}"
        assert rest == (REPO / "custom_models/gemma_encoder" / name).read_text(encoding="utf-8")


@pytest.fixture()
def tree(tmp_path):
    """A temporary copy of custom_models/ to break."""
    shutil.copytree(REPO / "custom_models", tmp_path / "custom_models", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_drift_in_a_whole_file_copy_is_reported_and_fixed(tree, capsys):
    copy = tree / SPAN_COPY
    copy.write_text(copy.read_text().replace('self.mode == "mean"', 'self.mode == "avg"'))
    drifts = check_copies(root=tree)
    assert [(d.path, d.line, d.target) for d in drifts] == [(copy, 1, "custom_models.gemma_encoder.modeling_gemma_encoder")]
    assert '-        if self.mode == "avg":' in drifts[0].diff() and '+        if self.mode == "mean":' in drifts[0].diff()

    assert main(["--root", str(tree)]) == 1
    err = capsys.readouterr().err
    assert f"{copy}:1: differs from custom_models.gemma_encoder.modeling_gemma_encoder (whole file)" in err
    assert "run with --fix" in err

    # the source changes and the copy does not follow: drift too
    assert main(["--root", str(tree), "--fix"]) == 0
    assert check_copies(root=tree) == []
    assert copy.read_text().split("\n", 1)[1] == (tree / SOURCE).read_text()
    source = tree / SOURCE
    source.write_text(source.read_text() + "\n\nNEW_CONSTANT = 1\n")
    assert len(check_copies(root=tree)) == 1
    check_copies(root=tree, fix=True)
    assert copy.read_text().endswith("NEW_CONSTANT = 1\n") and check_copies(root=tree) == []


def test_the_cli_runs_as_a_module_on_a_temp_tree(tree):
    copy = tree / "custom_models/span_qa/configuration_gemma_encoder.py"
    copy.write_text(copy.read_text().replace('"mean", "cls"', '"cls", "mean"'))
    cmd = [sys.executable, "-m", "affectlab.testing.check_copies", "--root", str(tree)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "configuration_gemma_encoder.py:1: differs" in proc.stderr
    proc = subprocess.run(cmd + ["--fix"], cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "(fixed)" in proc.stderr
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr


SOURCE_MODULE = '''\
"""A source module."""

import torch


class BertPooler(torch.nn.Module):
    """Pools BERT states."""

    def forward(self, hidden):
        return hidden[:, 0]  # BERT takes the first token

    @staticmethod
    def name():
        return "bert"


def bert_helper(x):
    return x + 1
'''

COPY_MODULE = '''\
"""A module with copies of single objects."""

import torch


# Copied from pkg.source.BertPooler with Bert->Roberta, bert->roberta, BERT->ROBERTA
class RobertaPooler(torch.nn.Module):
    """Pools ROBERTA states."""

    def forward(self, hidden):
        return hidden[:, 0]  # ROBERTA takes the first token

    @staticmethod
    def name():
        return "roberta"


class Other:
    # Copied from pkg.source.BertPooler.name with bert->other
    @staticmethod
    def name():
        return "other"

    # Copied from pkg.source.bert_helper with bert->my all-casing
    def my_helper(x):
        return x + 1


def own_code():
    return 0
'''


@pytest.fixture()
def objects(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "source.py").write_text(SOURCE_MODULE)
    (tmp_path / "pkg" / "copy.py").write_text(COPY_MODULE)
    return tmp_path


def test_object_copies_with_replacements(objects):
    copy = objects / "pkg" / "copy.py"
    assert check_copies(["pkg"], root=objects) == []
    # a method of a copied class and a nested copy drift independently
    copy.write_text(COPY_MODULE.replace('return "roberta"', 'return "robbie"').replace("return x + 1", "return x + 2"))
    drifts = check_copies(["pkg"], root=objects)
    assert [(d.line, d.target) for d in drifts] == [(6, "pkg.source.BertPooler"), (24, "pkg.source.bert_helper")]
    assert '-        return "robbie"' in drifts[0].diff() and '+        return "roberta"' in drifts[0].diff()
    check_copies(["pkg"], root=objects, fix=True)
    assert copy.read_text() == COPY_MODULE
    # the source changes (the replacement applies to the new text too)
    source = objects / "pkg" / "source.py"
    source.write_text(SOURCE_MODULE.replace("hidden[:, 0]  # BERT", "hidden[:, -1]  # BERT"))
    assert [d.target for d in check_copies(["pkg"], root=objects)] == ["pkg.source.BertPooler"]
    check_copies(["pkg"], root=objects, fix=True)
    assert "return hidden[:, -1]  # ROBERTA takes the first token" in copy.read_text()
    assert check_copies(["pkg"], root=objects) == []


def test_markers_that_cannot_be_checked_are_reported(objects):
    bad = objects / "pkg" / "bad.py"
    bad.write_text(textwrap.dedent('''\
        """Docstrings never count:
        # Copied from pkg.nowhere.Thing
        """
        x = 1
        # Copied from pkg.source
        # Copied from pkg.nowhere.Thing
        def a():
            pass


        # Copied from pkg.source.Missing
        def b():
            pass


        # Copied from pkg.source.bert_helper with bert=>my
        def c():
            pass


        # Copied from pkg.source.bert_helper

        y = 2
    '''))
    drifts = {d.line: d.message for d in check_copies(["pkg/bad.py"], root=objects)}
    assert sorted(drifts) == [5, 6, 11, 16, 21]
    assert "first line" in drifts[5]
    assert "not found" in drifts[6]
    assert "defines no class or function Missing" in drifts[11]
    assert "bad replacement" in drifts[16]
    assert "right above a class or def" in drifts[21]
    before = bad.read_text()
    check_copies(["pkg/bad.py"], root=objects, fix=True)
    assert bad.read_text() == before  # nothing to fix automatically


def test_resolve():
    assert resolve("custom_models.gemma_encoder.modeling_gemma_encoder.GemmaEncoderPooler.forward", REPO) == (
        REPO / SOURCE, ["GemmaEncoderPooler", "forward"])
    assert resolve("custom_models.gemma_encoder", REPO) == (REPO / "custom_models/gemma_encoder/__init__.py", [])
    assert resolve("nowhere.at_all", REPO) is None
