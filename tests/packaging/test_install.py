"""A non-editable `pip install .` works away from the checkout: the console command, every family's
`--help`, the metric modules (through affectlab.metrics and evaluate.load on the installed path), the
card templates and the recipes all come from the installed package.

The wheel is installed with `--no-deps` into a fresh venv; the dependencies are borrowed from the
project's environment through a `.pth` line (the project's own editable install is not: `.pth` files of
an added folder are not processed), so the test checks our packaging, not PyPI.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAMILIES = ["classifier", "nli", "span-qa", "regression", "sft"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    wheels = root / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(wheels), str(REPO)], capture_output=True, text=True, cwd=root)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(wheels.glob("affectlab-*.whl"))
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                          capture_output=True, text=True, cwd=root)
    assert inst.returncode == 0, inst.stderr[-3000:]
    deps = sysconfig.get_paths()["purelib"]
    (purelib / "_affectlab_test_deps.pth").write_text("\n".join([deps, *site.getsitepackages()]) + "\n")
    work = root / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return {"venv": venv, "py": py, "purelib": purelib, "cwd": work, "env": env}


def run(installed, *cmd, check=True):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=installed["cwd"], env=installed["env"],
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def test_package_is_the_installed_copy_not_the_checkout(installed):
    out = run(installed, installed["py"], "-c", "import affectlab, dataset_builders, custom_models; "
              "print(affectlab.__file__); print(dataset_builders.__file__); print(custom_models.__file__)").stdout
    for line in out.split():
        assert line.startswith(str(installed["purelib"])), out
        assert not line.startswith(str(REPO)), out


def test_console_command_and_every_family_help(installed):
    exe = installed["venv"] / "bin" / "affectlab"
    assert exe.is_file(), "no console script"
    top = run(installed, exe, "--help").stdout
    for command in ("train", "benchmark", "build-dataset", "push", "leaderboard"):
        assert command in top
    listing = run(installed, exe, "train", "--help").stdout
    for family in FAMILIES:
        assert family in listing
        help_text = run(installed, exe, "train", family, "--help").stdout
        assert "--output_dir" in help_text and "--max_length" in help_text and "--use_peft" in help_text, family
    bad = run(installed, exe, "train", "no-such-family", check=False)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error:")


def test_metrics_templates_and_recipes_come_from_the_package(installed):
    code = r'''
import json, evaluate, numpy as np
from affectlab.metrics import load_metric, metric_module
from affectlab.paths import metric_dir, resource_path
out = {}
for name in ("multilabel_f1", "regression_report", "evidence_squad"):
    out[name] = str(metric_dir(name))
m = load_metric("multilabel_f1")
refs = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
preds = [[1, 0, 0], [0, 1, 0], [1, 1, 1]]
out["via_affectlab"] = m.compute(predictions=preds, references=refs)["macro_f1"]
out["via_evaluate"] = evaluate.load(str(metric_dir("multilabel_f1"))).compute(predictions=preds, references=refs)["macro_f1"]
out["direct"] = metric_module("multilabel_f1").multilabel_report(np.array(preds, float), np.array(refs), threshold=0.5)["macro_f1"]
out["template"] = str(resource_path("model_cards", "classifier.md"))
out["sections"] = str(resource_path("model_cards", "_sections.md"))
out["recipe"] = str(resource_path("recipes", "goemotions_minilm_demo.yaml"))
out["accelerate"] = str(resource_path("accelerate_configs", "cpu.yaml"))
print(json.dumps(out))
'''
    out = json.loads(run(installed, installed["py"], "-c", code).stdout.strip().splitlines()[-1])
    purelib = str(installed["purelib"])
    for key in ("multilabel_f1", "regression_report", "evidence_squad", "template", "sections", "recipe", "accelerate"):
        assert out[key].startswith(purelib + "/affectlab/_resources/"), (key, out[key])
    assert out["via_affectlab"] == pytest.approx(out["direct"]) == pytest.approx(out["via_evaluate"])
    assert 0 < out["direct"] < 1
