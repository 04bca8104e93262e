"""Every `custom_models/<name>/` folder ships its model code one way and travels alone.

* no symlinks; a file shared between folders is a real copy with a whole-file `# Copied from` marker
  (`affectlab.testing.check_copies` keeps it equal to its source);
* the Auto classes a package registers are exactly its `AUTO_MAP`, and `save_pretrained` writes that
  complete `auto_map` and every code file it needs (sibling modules included), which `push_run`'s check
  accepts;
* in the repository a span-QA model on the Gemma encoder holds the one `custom_models.gemma_encoder`
  class identity (`isinstance` works across them);
* each folder, copied ALONE to a temporary folder next to a saved model's weights, loads in a fresh
  process with `trust_remote_code=True` (every Auto class of its `auto_map`) and gives identical outputs;
  the folder also imports on its own as a package.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

REPO = Path(__file__).resolve().parents[2]
CUSTOM = REPO / "custom_models"
# model packages (a config class + model code); custom_models/multilabel_pipeline is a pipeline file, tested
# in tests/affectlab/test_run.py
PACKAGES = sorted(p.name for p in CUSTOM.iterdir() if (p / "__init__.py").is_file() and any(p.glob("configuration_*.py")))
MARKER = "# Copied from custom_models."


def test_packages_found():
    assert PACKAGES == ["gemma_encoder", "regression_head", "span_qa"]


def test_no_symlinks_and_shared_files_are_marked_copies():
    links = [str(p.relative_to(REPO)) for p in CUSTOM.rglob("*") if p.is_symlink()]
    assert links == []
    by_name: dict[str, list[Path]] = {}
    for pkg in PACKAGES:
        for f in (CUSTOM / pkg).glob("*.py"):
            if f.name != "__init__.py":
                by_name.setdefault(f.name, []).append(f)
    shared = {name: files for name, files in by_name.items() if len(files) > 1}
    assert set(shared) == {"configuration_gemma_encoder.py", "modeling_gemma_encoder.py"}
    for name, files in shared.items():
        first_lines = {f.parent.name: f.read_text(encoding="utf-8").splitlines()[0] for f in files}
        sources = [pkg for pkg, line in first_lines.items() if not line.startswith(MARKER)]
        assert sources == ["gemma_encoder"], first_lines  # one source; every other file is a marked copy
        for pkg, line in first_lines.items():
            if pkg != "gemma_encoder":
                assert line == f"# Copied from custom_models.gemma_encoder.{name[:-3]}", (pkg, line)


def _registered_auto_classes(config_class) -> set[str]:
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    names = {"AutoConfig"} if CONFIG_MAPPING._extra_content.get(config_class.model_type) is config_class else set()
    for name in dir(transformers):
        if name.startswith("AutoModel"):
            mapping = getattr(getattr(transformers, name), "_model_mapping", None)
            if mapping is not None and config_class in getattr(mapping, "_extra_content", {}):
                names.add(name)
    return names


@pytest.mark.parametrize("pkg", PACKAGES)
def test_auto_map_is_every_registered_auto_class(pkg):
    module = importlib.import_module(f"custom_models.{pkg}")
    config_class = next(getattr(module, n) for n in module.__all__ if n.endswith("Config"))
    assert _registered_auto_classes(config_class) == set(module.AUTO_MAP)
    for auto, ref in module.AUTO_MAP.items():
        file, cls = ref.split(".")
        assert (CUSTOM / pkg / f"{file}.py").is_file() and hasattr(importlib.import_module(f"custom_models.{pkg}.{file}"), cls)


def test_span_qa_on_gemma_holds_one_class_identity():
    from custom_models.gemma_encoder import GemmaEncoderConfig, GemmaEncoderModel
    from custom_models.span_qa import SpanQAConfig, SpanQAModel
    from custom_models.span_qa import modeling_span_qa
    from tests.custom_models.test_gemma_encoder import tiny_text_config

    encoder = GemmaEncoderModel(GemmaEncoderConfig(text_config=tiny_text_config("gemma")))
    model = SpanQAModel(SpanQAConfig(encoder_config=modeling_span_qa._config_dict(encoder.config)))
    assert isinstance(model.encoder, GemmaEncoderModel) and isinstance(model.encoder.config, GemmaEncoderConfig)
    assert modeling_span_qa.GemmaEncoderModel is GemmaEncoderModel
    assert type(model.encoder) is type(encoder)
    # the copies beside modeling_span_qa.py are shipped, never imported in the repository
    assert "custom_models.span_qa.modeling_gemma_encoder" not in sys.modules
    assert "custom_models.span_qa.configuration_gemma_encoder" not in sys.modules


IDS = [[5, 9, 14, 22, 31, 40, 7, 3], [11, 12, 13, 50, 0, 0, 0, 0]]
MASK = [[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]]


def outputs(out) -> np.ndarray:
    """The array a model output is compared by (this function also runs in the fresh process)."""
    if getattr(out, "start_logits", None) is not None:
        return np.stack([out.start_logits.numpy(), out.end_logits.numpy()])
    if getattr(out, "logits", None) is not None:
        return out.logits.numpy()
    return out.pooler_output.numpy()  # a base encoder (gemma_encoder's AutoModel)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory, tiny_bert_dir):
    """One save_pretrained folder per package, with the outputs on IDS / MASK of every Auto class of its
    auto_map: the model itself for the class saved, an in-process reload for the others (the base encoder)."""
    from transformers import GemmaForCausalLM

    from custom_models.regression_head import RegressionHeadModel
    from custom_models.span_qa import SpanQAModel
    from tests.custom_models.test_gemma_encoder import make, tiny_text_config

    root = tmp_path_factory.mktemp("saved")
    torch.manual_seed(0)
    GemmaForCausalLM(tiny_text_config("gemma")).save_pretrained(root / "gemma_ckpt")
    torch.manual_seed(0)
    models = {
        "gemma_encoder": make("gemma3", "sdpa", num_labels=3, pooling="attention"),
        "regression_head": RegressionHeadModel.from_encoder(str(tiny_bert_dir), ["V", "A", "D"], head_dropout=0.0),
        "span_qa": SpanQAModel.from_encoder(str(root / "gemma_ckpt"), head_dropout=0.0),
    }
    ids, mask = torch.tensor(IDS), torch.tensor(MASK)
    out = {}
    for pkg, model in models.items():
        model.eval()
        model.save_pretrained(root / pkg)
        expected = {}
        for auto in json.loads((root / pkg / "config.json").read_text())["auto_map"]:
            if auto == "AutoConfig":
                continue
            same = getattr(transformers, auto)._model_mapping[type(model.config)] is type(model)
            loaded = model if same else getattr(transformers, auto).from_pretrained(root / pkg).eval()
            with torch.no_grad():
                expected[auto] = outputs(loaded(input_ids=ids, attention_mask=mask))
        out[pkg] = (root / pkg, expected)
    return out


@pytest.mark.parametrize("pkg", PACKAGES)
def test_save_pretrained_writes_complete_auto_map_and_every_code_file(pkg, saved_models):
    from affectlab.hub import check_custom_code

    folder, _ = saved_models[pkg]
    module = importlib.import_module(f"custom_models.{pkg}")
    assert json.loads((folder / "config.json").read_text())["auto_map"] == module.AUTO_MAP
    code = sorted(p.name for p in folder.glob("*.py"))
    assert code == sorted(p.name for p in (CUSTOM / pkg).glob("*.py") if p.name != "__init__.py")
    assert not any(p.is_symlink() for p in folder.iterdir())
    assert check_custom_code(folder) == code  # what push_run verifies


def test_each_folder_alone_reloads_in_fresh_process(saved_models, tmp_path):
    alone = {}
    for pkg in PACKAGES:
        folder = tmp_path / "alone" / pkg
        shutil.copytree(CUSTOM / pkg, folder, ignore=shutil.ignore_patterns("__pycache__"))  # the code: this folder only
        saved, expected = saved_models[pkg]
        for f in saved.iterdir():
            if f.suffix != ".py":  # the weights and config.json: everything but code
                shutil.copy(f, folder / f.name)
        np.savez(tmp_path / f"{pkg}_expected.npz", **expected)
        alone[pkg] = str(folder)
    script = textwrap.dedent(f"""
        import importlib, json, sys
        import numpy as np, torch
        import transformers
        from transformers import AutoConfig
        assert "custom_models" not in sys.modules
        ids, mask = torch.tensor({IDS!r}), torch.tensor({MASK!r})
        {textwrap.indent(inspect.getsource(outputs), "        ").strip()}
        report = {{}}
        for pkg, path in {alone!r}.items():
            auto_map = json.load(open(path + "/config.json"))["auto_map"]
            assert type(AutoConfig.from_pretrained(path, trust_remote_code=True)).__name__ == auto_map["AutoConfig"].split(".")[1]
            outs = {{}}
            for auto in sorted(set(auto_map) - {{"AutoConfig"}}):
                model = getattr(transformers, auto).from_pretrained(path, trust_remote_code=True).eval()
                module = type(model).__module__
                assert module.startswith("transformers_modules.") and type(model).__name__ == auto_map[auto].split(".")[1], module
                if pkg == "span_qa":  # one Gemma encoder class: the copy shipped in this folder
                    package = module.rpartition(".")[0]
                    gemma = sys.modules[package + ".modeling_gemma_encoder"]
                    assert isinstance(model.encoder, gemma.GemmaEncoderModel)
                    assert isinstance(model.encoder.config, sys.modules[package + ".configuration_gemma_encoder"].GemmaEncoderConfig)
                    assert type(model.encoder).__module__ == package + ".modeling_gemma_encoder"
                with torch.no_grad():
                    outs[auto] = outputs(model(input_ids=ids, attention_mask=mask))
            np.savez({str(tmp_path)!r} + "/" + pkg + "_reloaded.npz", **outs)
            report[pkg] = sorted(set(auto_map) - {{"AutoConfig"}})
        assert "custom_models" not in sys.modules
        # each folder also imports on its own, as a package (no sibling folder, no affectlab)
        sys.path.insert(0, {str(tmp_path / "alone")!r})
        for pkg in {PACKAGES!r}:
            importlib.import_module(pkg)
        print(json.dumps(report))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               HF_MODULES_CACHE=str(tmp_path / "modules"))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"gemma_encoder": ["AutoModel", "AutoModelForSequenceClassification"],
                      "regression_head": ["AutoModel", "AutoModelForSequenceClassification"],
                      "span_qa": ["AutoModel", "AutoModelForQuestionAnswering"]}
    for pkg in PACKAGES:
        reloaded, expected = np.load(tmp_path / f"{pkg}_reloaded.npz"), np.load(tmp_path / f"{pkg}_expected.npz")
        assert sorted(reloaded.files) == sorted(expected.files) == report[pkg]
        for auto in report[pkg]:
            np.testing.assert_array_equal(reloaded[auto], expected[auto], err_msg=f"{pkg} {auto}")
