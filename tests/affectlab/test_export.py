"""`affectlab export --format onnx [--quantize int8]`: a real MiniLM fine-tuned here on GoEmotions (the demo recipe,
a few hundred rows) exported to ONNX; every backend's predictions on the validation split against PyTorch fp32;
the folder reloading through `TextClassifier(backend="onnx")` (a fresh process), the thresholded multi-label
`pipeline()` and the Auto classes; custom-code models (regression head, Gemma encoder) and pairs (NLI) exported.

The issue's criteria on the 5,426 validation rows: ONNX fp32 gives PyTorch fp32's label set on every row, the
int8 backend on at least 99% of rows, with macro-F1 (saved thresholds) within 0.005. The 99% is demanding on an
ASL-trained model: most validation probabilities sit close to their tuned thresholds (on this quick model more
than 90% of rows have a label within 0.01 of one), so int8's rounding alone changes a few percent of label sets;
the export's int8 guard (calibrated on 2,000 GoEmotions *train* rows) scores the rows near a threshold again in
fp32, which is what the 99% test measures (`affectlab.inference.Int8Guard`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory, minilm_path):
    """A real MiniLM fine-tune of the demo recipe on 800 GoEmotions rows (about a minute on 2 cores)."""
    out = tmp_path_factory.mktemp("minilm_export") / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(REPO / "scripts" / "train_classifier.py"), "--config",
           str(REPO / "recipes" / "goemotions_minilm_demo.yaml"), "--max_train_samples", "800", "--max_eval_samples",
           "400", "--num_train_epochs", "2", "--learning_rate", "2e-4", "--max_length", "48",
           "--per_device_train_batch_size", "16", "--output_dir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(scope="module")
def minilm_onnx(minilm_run):
    from affectlab.export import export

    out = minilm_run.parent / "onnx"
    meta = export(str(minilm_run), out, quantize="int8", log=lambda *_: None)
    return out, meta


@pytest.fixture(scope="module")
def validation():
    from affectlab.data import multi_hot
    from dataset_builders import build_dataset

    val = build_dataset("goemotions")["validation"]
    return list(val["text"]), multi_hot(val["labels"], 28).astype(int)


@pytest.mark.slow  # fine-tunes a real MiniLM first (minutes on 2 cores): make test-slow
def test_onnx_backends_agree_with_pytorch_fp32_on_validation(minilm_run, minilm_onnx, validation):
    from affectlab.inference import TextClassifier
    from affectlab.metrics import metric_module

    out, meta = minilm_onnx
    texts, refs = validation
    assert meta["files"] == {"fp32": "onnx/model.onnx", "int8": "onnx/model_quantized.onnx"}
    assert meta["default"] == "onnx/model_quantized.onnx" and meta["ort_fusions"] == "cpu"
    assert meta["quantization"]["scheme"] == "dynamic"
    assert meta["checks"]["fp32"]["max_abs_logit_diff"] < 1e-4
    torch_clf = TextClassifier.from_pretrained(str(minilm_run))
    fp32 = TextClassifier.from_pretrained(str(out), backend="onnx", onnx_file="onnx/model.onnx")
    int8 = TextClassifier.from_pretrained(str(out), backend="onnx")
    assert int8.backend.file_name == "onnx/model_quantized.onnx"
    assert fp32.thresholds.tolist() == torch_clf.thresholds.tolist() and fp32.labels == torch_clf.labels
    p_torch, p_fp32, p_int8 = (c.predict_proba(texts) for c in (torch_clf, fp32, int8))
    sets = [c.spec.decide(p) for c, p in ((torch_clf, p_torch), (fp32, p_fp32), (int8, p_int8))]
    assert sets[1] == sets[0], "ONNX fp32 must give PyTorch's label set on every validation row"
    np.testing.assert_allclose(p_fp32, p_torch, atol=1e-5)

    same = np.mean([a == b for a, b in zip(sets[2], sets[0])])
    thresholds = torch_clf.thresholds
    d_torch, d_int8 = p_torch >= thresholds, p_int8 >= thresholds
    margin = np.abs(p_torch - thresholds).min(1) >= 0.01
    report = metric_module("multilabel_f1").multilabel_report
    f1 = [report(p, refs, thresholds=thresholds)["macro_f1"] for p in (p_torch, p_fp32, p_int8)]
    print(f"INT8 same sets {same:.4f} per-label {(d_torch == d_int8).mean():.5f} margin rows {margin.mean():.4f} "
          f"same on margin rows {(d_torch[margin] == d_int8[margin]).all(1).mean():.4f} f1 {f1}")
    assert abs(f1[0] - f1[1]) < 1e-9 and abs(f1[0] - f1[2]) <= 0.005, f1
    assert (d_torch == d_int8).mean() >= 0.98, "per-label decisions"
    assert (d_torch[margin] == d_int8[margin]).all(1).mean() >= 0.99 if margin.any() else True


@pytest.mark.slow  # fine-tunes a real MiniLM first (minutes on 2 cores): make test-slow
def test_int8_label_sets_equal_fp32_on_99_percent_of_validation(minilm_run, minilm_onnx, validation):
    from affectlab.inference import GUARD_KEY, TextClassifier

    out, meta = minilm_onnx
    guard = meta[GUARD_KEY]
    assert guard["calibrated_on"] == "goemotions/simplified train, 2000 rows" and guard["guarded_same_decisions"] >= 0.995
    texts = validation[0]
    reference = TextClassifier.from_pretrained(str(minilm_run)).predict(texts)
    int8 = TextClassifier.from_pretrained(str(out), backend="onnx")  # the default: int8 graph + guard
    got = int8.predict(texts)
    plain = TextClassifier.from_pretrained(str(out), backend="onnx", int8_guard=False).predict(texts)
    same = np.mean([a == b for a, b in zip(got, reference)])
    same_plain = np.mean([a == b for a, b in zip(plain, reference)])
    print(f"\nint8 same label sets: plain {same_plain:.4f}, guarded {same:.4f} "
          f"({int8.guard.recheck_rate:.3f} of rows scored again in fp32, margin {int8.guard.margin:.4f})")
    assert same >= 0.99, f"int8 gives PyTorch fp32's label set on {same:.2%} of {len(texts)} validation rows"
    assert same > same_plain and int8.guard.recheck_rate < 0.5


@pytest.mark.slow  # fine-tunes a real MiniLM first (minutes on 2 cores): make test-slow
def test_onnx_folder_reloads_in_a_fresh_process_and_through_pipeline(minilm_onnx, tmp_path, validation):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from affectlab.hub import check_custom_code, files_to_push
    from affectlab.inference import TextClassifier

    out, _ = minilm_onnx
    texts = validation[0][:48]
    clf = TextClassifier.from_pretrained(str(out), backend="auto")
    assert clf.backend.name == "onnx"
    expected = clf.predict(texts)

    script = textwrap.dedent(f"""
        import json, sys
        from affectlab.inference import TextClassifier
        clf = TextClassifier.from_pretrained({str(out)!r}, backend="onnx")
        print(json.dumps(clf.predict({texts!r})))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected

    # transformers alone: the thresholded pipeline and the Auto class run ONNX Runtime (modeling_onnx.py)
    pipe = pipeline(model=str(out), trust_remote_code=True)
    assert type(pipe).__name__ == "MultiLabelTextClassificationPipeline"
    assert type(pipe.model).__name__ == "OnnxModelForSequenceClassification"
    got = pipe(texts)
    # the pipeline runs the default int8 graph alone, one text at a time; that graph computes its activation scales
    # per batch, so compare with the predictor at batch size 1 without the guard (the same computation)
    one_by_one = TextClassifier.from_pretrained(str(out), backend="onnx", batch_size=1, int8_guard=False).predict(texts)
    assert [sorted(d["label"] for d in row) for row in got] == [sorted(x) for x in one_by_one]
    config = json.loads((out / "config.json").read_text())
    assert all(d["score"] >= config["label_thresholds"][d["label"]] for row in got for d in row)
    model = AutoModelForSequenceClassification.from_pretrained(str(out), trust_remote_code=True)
    enc = AutoTokenizer.from_pretrained(str(out))(texts[:4], padding=True, return_tensors="pt")
    plain = TextClassifier.from_pretrained(str(out), backend="onnx", int8_guard=False)
    np.testing.assert_allclose(1 / (1 + np.exp(-model(**enc).logits.numpy())), plain.predict_proba(texts[:4]), atol=1e-5)

    # a folder the Hub accepts: complete custom code, a card that says what it is
    assert check_custom_code(out) == ["modeling_onnx.py"]
    pushed = files_to_push(out, extra=["onnx/*"])
    assert {"onnx/model.onnx", "onnx/model_quantized.onnx", "config.json", "tokenizer.json", "README.md",
            "multilabel_pipeline.py"} <= set(pushed)
    card = (out / "README.md").read_text()
    assert "## ONNX export" in card and "onnx" in card.split("---")[1]


def _regression_model(tiny_bert_dir, folder: Path):
    import torch
    from transformers import AutoTokenizer

    from custom_models.regression_head import RegressionHeadModel

    torch.manual_seed(0)
    model = RegressionHeadModel.from_encoder(str(tiny_bert_dir), ["valence", "arousal", "dominance"],
                                             output_scaling=True, label_min=1.0, label_max=5.0).eval()
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(folder)
    return model


def test_custom_code_regression_model_exports_and_reloads(tiny_bert_dir, tmp_path):
    from affectlab.errors import ArgumentError
    from affectlab.export import export
    from affectlab.inference import TextClassifier

    src = tmp_path / "regression"
    _regression_model(tiny_bert_dir, src)
    with pytest.raises(ArgumentError, match="--trust_remote_code"):
        export(str(src), tmp_path / "onnx", log=lambda *_: None)
    out = tmp_path / "onnx"
    meta = export(str(src), out, trust_remote_code=True, log=lambda *_: None)
    assert meta["checks"]["fp32"]["max_abs_logit_diff"] < 1e-4 and meta["default"] == "onnx/model.onnx"
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoConfig"] == "configuration_regression_head.RegressionHeadConfig"
    assert config["auto_map"]["AutoModelForSequenceClassification"] == "modeling_onnx.OnnxModelForSequenceClassification"
    texts = ["The nurse was kind.", "Waiting eleven hours, nobody said anything at all.", "ok"]
    torch_clf = TextClassifier.from_pretrained(str(src), trust_remote_code=True)
    onnx_clf = TextClassifier.from_pretrained(str(out), backend="onnx")
    np.testing.assert_allclose(onnx_clf.predict_proba(texts), torch_clf.predict_proba(texts), atol=1e-5)
    preds = onnx_clf.predict(texts)
    assert list(preds[0]) == ["valence", "arousal", "dominance"] and all(1 <= v <= 5 for p in preds for v in p.values())

    # the Auto classes in a fresh process, with only the exported folder's code
    script = textwrap.dedent(f"""
        import json, sys, torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
        path = {str(out)!r}
        cfg = AutoConfig.from_pretrained(path, trust_remote_code=True)
        model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
        assert "custom_models" not in sys.modules
        enc = AutoTokenizer.from_pretrained(path, trust_remote_code=True)({texts!r}, padding=True, return_tensors="pt")
        print(json.dumps({{"config": type(cfg).__name__, "model": type(model).__name__,
                          "logits": model(**enc).logits.tolist()}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("{")))
    assert info["config"] == "RegressionHeadConfig" and info["model"] == "OnnxModelForSequenceClassification"
    np.testing.assert_allclose(info["logits"], torch_clf.predict_proba(texts), atol=1e-5)


def test_nli_pairs_and_the_gemma_encoder_export(tiny_bert_dir, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Gemma3TextConfig

    from affectlab.export import export
    from affectlab.inference import TextClassifier
    from custom_models.gemma_encoder import GemmaEncoderConfig, GemmaEncoderForSequenceClassification

    posts = ["I have not slept properly in weeks.", "Great day at the beach!", "Nothing feels worth doing.", "ok"]
    criteria = ["Insomnia nearly every day.", "Depressed mood.", "Markedly diminished interest.", "Fatigue."]
    torch.manual_seed(0)
    nli = tmp_path / "nli"
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=2, id2label={0: "absent", 1: "present"}, label2id={"absent": 0, "present": 1},
        problem_type="single_label_classification")
    model.save_pretrained(nli)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(nli)
    export(str(nli), tmp_path / "nli-onnx", quantize="int8", log=lambda *_: None)
    ref = TextClassifier.from_pretrained(str(nli)).predict_proba(posts, text_pairs=criteria)
    got = TextClassifier.from_pretrained(str(tmp_path / "nli-onnx"), backend="onnx", onnx_file="onnx/model.onnx")
    np.testing.assert_allclose(got.predict_proba(posts, text_pairs=criteria), ref, atol=1e-5)
    assert set(got.predict(posts, text_pairs=criteria)) <= {"absent", "present"}

    text = Gemma3TextConfig(vocab_size=30522, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                            pad_token_id=0, sliding_window=4, layer_types=["sliding_attention", "full_attention"])
    gemma = GemmaEncoderForSequenceClassification._from_config(
        GemmaEncoderConfig(text_config=text, num_labels=2, problem_type="single_label_classification"),
        attn_implementation="sdpa").eval()
    src = tmp_path / "gemma"
    gemma.save_pretrained(src)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(src)
    export(str(src), tmp_path / "gemma-onnx", trust_remote_code=True, log=lambda *_: None)
    long_posts = [p + " and then" * 6 for p in posts]  # longer than the sliding window
    ref = TextClassifier.from_pretrained(str(src), trust_remote_code=True).predict_proba(long_posts)
    got = TextClassifier.from_pretrained(str(tmp_path / "gemma-onnx"), backend="onnx").predict_proba(long_posts)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_what_cannot_be_exported_is_one_line(tmp_path):
    config = {"model_type": "bert", "architectures": ["BertForQuestionAnswering"], "vocab_size": 10}
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "affectlab.cli", "export", "--model", str(tmp_path / "qa"),
                           "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --model: only classifier, NLI and regression")
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
    proc = subprocess.run([sys.executable, "-m", "affectlab.cli", "export", "--model", str(tmp_path / "missing")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and "error: --model:" in proc.stderr and "Traceback" not in proc.stderr


def test_export_from_the_hub_push_and_load_by_repo_id(tiny_bert_dir, tmp_path):
    """Through the local Hub emulator and the unmodified clients: export a model given by its repo id, push the
    ONNX folder (`affectlab push --extra 'onnx/*'`), then load it by repo id with `TextClassifier(backend="onnx")`
    and with `pipeline(trust_remote_code=True)` in a fresh process."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from affectlab.inference import TextClassifier
    from affectlab.testing.hub_emulator import HubEmulator
    from custom_models.multilabel_pipeline import register

    token, user = "hf_emulatorSecretToken0123456789", "alice"
    labels = ["joy", "anger", "sadness"]
    torch.manual_seed(0)
    src = tmp_path / "tiny-ml"
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=3, problem_type="multi_label_classification",
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    model.config.label_thresholds = {"joy": 0.5, "anger": 0.49, "sadness": 0.51}
    register(model.config)
    model.save_pretrained(src)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(src)
    texts = ["thank you so much!", "ugh, Mondays.", "I miss her every single day.", "fine"]

    with HubEmulator(tokens={token: user}, lfs_threshold=4096) as hub:
        env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
        env.update(hub.client_env(token=token), HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")

        def cli(*args):
            proc = subprocess.run([sys.executable, "-m", "affectlab.cli", *map(str, args)], capture_output=True,
                                  text=True, env=env, cwd=tmp_path, timeout=600, stdin=subprocess.DEVNULL)
            assert proc.returncode == 0, proc.stderr[-3000:]
            return proc

        cli("push", src, "--repo", f"{user}/tiny-ml")
        out = tmp_path / "tiny-ml-onnx"
        cli("export", "--model", f"{user}/tiny-ml", "--output_dir", out, "--quantize", "int8")
        cli("push", out, "--repo", f"{user}/tiny-ml-onnx", "--extra", "onnx/*")
        expected = TextClassifier.from_pretrained(str(out), backend="onnx", batch_size=1).predict(texts)
        script = textwrap.dedent(f"""
            import json
            from huggingface_hub import list_repo_files
            from transformers import pipeline
            from affectlab.inference import TextClassifier
            clf = TextClassifier.from_pretrained("{user}/tiny-ml-onnx", backend="onnx", batch_size=1)
            pipe = pipeline(model="{user}/tiny-ml-onnx", trust_remote_code=True)
            print(json.dumps({{"clf": clf.predict({texts!r}), "pipe": [[d["label"] for d in row]
                                                                      for row in pipe({texts!r})],
                              "files": list_repo_files("{user}/tiny-ml-onnx")}}))
        """)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=600, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("{")))
    assert {"onnx/model.onnx", "onnx/model_quantized.onnx", "modeling_onnx.py", "multilabel_pipeline.py",
            "config.json", "tokenizer.json", "README.md"} <= set(got["files"])
    assert got["clf"] == expected
    assert [sorted(x) for x in got["pipe"]] == [sorted(x) for x in expected]
