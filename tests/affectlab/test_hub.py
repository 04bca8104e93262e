"""Hub publishing end to end against the local Hub emulator, with the unmodified `huggingface_hub` client:
push a custom-code model (LFS weights, code files, card, `.eval_results`) -> reload it by commit sha with
`trust_remote_code=True` in a fresh process -> identical logits; a custom-code folder that would not load is
refused before anything is pushed; results records pushed by two processes at
once both land and the leaderboard shows both; 401 / dropped connections / 5xx give clear failures with the
local outputs intact; the token never reaches any written file, log or message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from affectlab.testing.hub_emulator import HubEmulator

REPO = Path(__file__).resolve().parents[2]
TOKEN = "hf_emulatorSecretToken0123456789"
USER = "alice"


@pytest.fixture()
def hub():
    with HubEmulator(tokens={TOKEN: USER}, orgs={USER: ["affect-org"]}, lfs_threshold=4096) as server:
        yield server


def client_env(hub, tmp_path, token=TOKEN, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(hub.client_env(token=token), HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")
    env.update(extra)
    if token is None:
        env.pop("HF_TOKEN", None)
    return env


def run(args, env, cwd, timeout=180):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    return proc


def tiny_gemma_run(out: Path) -> tuple[Path, list[str], np.ndarray]:
    """A saved tiny bidirectional-Gemma classifier run folder (weights, tokenizer, card, eval_results.json)."""
    sys.path.insert(0, str(REPO / "tests" / "custom_models"))
    from test_gemma_encoder import make, tiny_tokenizer

    from affectlab.cards import eval_results_for, render_model_card
    from affectlab.io import atomic_write_json

    model = make("gemma3", "sdpa", num_labels=3, pooling="mean")
    tok = tiny_tokenizer()
    model.save_pretrained(out)  # writes the code files and the complete auto_map: nothing to add at push time
    tok.save_pretrained(out)
    results = {"validation": {"macro_f1": 0.41234, "micro_f1": 0.5, "weighted_f1": 0.45, "subset_accuracy": 0.3,
                              "hamming_loss": 0.2}}
    card = render_model_card("model_cards/classifier.md", model_name="tiny-gemma", base_model=None,
                             datasets=["goemotions"], pipeline_tag="text-classification",
                             eval_results=eval_results_for(results, "text-classification", "Emotions", "goemotions",
                                                           "goemotions"),
                             results=results, problem_desc="multi-label", repo_id=f"{USER}/tiny-gemma",
                             dataset={"name": "goemotions", "languages": ["en"], "synthetic": True},
                             training={"method": "full", "seed": 0}, framework_versions={}, task_display="Emotions",
                             mental_health=False)
    card.save(str(out / "README.md"))
    atomic_write_json(out / "eval_results.json", {"results": results, "dataset": "goemotions", "seed": 0})
    texts = ["i feel tired and sad every day", "nothing matters", "happy calm today"]
    with torch.no_grad():
        logits = model(**tok(texts, padding=True, return_tensors="pt")).logits.numpy()
    return out, texts, logits


def grep_token(*roots: Path, extra_text: str = "") -> list[str]:
    hits = [str(f) for root in roots if root.exists() for f in root.rglob("*")
            if f.is_file() and TOKEN.encode() in f.read_bytes()]
    if TOKEN in extra_text:
        hits.append("<process output>")
    return hits


def test_push_custom_code_model_and_reload_by_revision_in_fresh_process(hub, tmp_path):
    run_dir, texts, expected = tiny_gemma_run(tmp_path / "outputs" / "tiny-gemma")
    env = client_env(hub, tmp_path)
    proc = run([sys.executable, str(REPO / "scripts" / "push.py"), str(run_dir), "--repo", f"{USER}/tiny-gemma"],
               env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pushed = json.loads(proc.stdout.strip().splitlines()[-1])
    sha = pushed["revision"]
    repo = hub.repos[("model", f"{USER}/tiny-gemma")]
    assert repo.branches["main"] == sha and len(sha) == 40
    assert json.loads((run_dir / "hub_push.json").read_text())["revision"] == sha
    tree = repo.commits[sha].tree
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md", "eval_results.json",
                 "configuration_gemma_encoder.py", "modeling_gemma_encoder.py", ".eval_results/goemotions.yaml"):
        assert name in tree, name
    assert "hub_push.json" not in tree
    assert tree["model.safetensors"].lfs and not tree["config.json"].lfs  # weights went through the LFS batch API
    assert ("PUT", f"/__lfs/{tree['model.safetensors'].sha256}", 200) in hub.log
    from custom_models.gemma_encoder import AUTO_MAP

    assert json.loads(hub.blobs[tree["config.json"].sha256])["auto_map"] == AUTO_MAP

    # a later push moves main; the pinned sha must still give the first weights
    (run_dir / "notes.txt").write_text("second commit")
    # (pushes are an allow-list: a file beyond the model, card and eval summary goes only when named)
    proc2 = run([sys.executable, str(REPO / "scripts" / "push.py"), str(run_dir), "--repo", f"{USER}/tiny-gemma",
                 "--extra", "notes.txt"],
                env, tmp_path)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert json.loads(proc2.stdout.strip().splitlines()[-1])["revision"] != sha

    script = textwrap.dedent(f"""
        import json, sys, numpy as np, torch
        from huggingface_hub import HfApi, ModelCard
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
        repo, sha = {f"{USER}/tiny-gemma"!r}, {sha!r}
        tok = AutoTokenizer.from_pretrained(repo, revision=sha, trust_remote_code=True)
        model = AutoModelForSequenceClassification.from_pretrained(repo, revision=sha, trust_remote_code=True).eval()
        base = AutoModel.from_pretrained(repo, revision=sha, trust_remote_code=True)
        assert "custom_models" not in sys.modules
        with torch.no_grad():
            logits = model(**tok({texts!r}, padding=True, return_tensors="pt")).logits.numpy()
        np.save({str(tmp_path / "logits.npy")!r}, logits)
        card = ModelCard.load(repo)
        files = [f.path for f in HfApi().list_repo_tree(repo, revision=sha, recursive=True)]
        print(json.dumps({{"model": type(model).__module__, "base": type(base).__name__,
                          "eval": [(r.dataset_split, r.metric_config, r.metric_value) for r in card.data.eval_results],
                          "files": files}}))
    """)
    reload_env = client_env(hub, tmp_path, token=None)  # public repo: no token needed to pull
    proc3 = run([sys.executable, "-c", script], reload_env, tmp_path)
    assert proc3.returncode == 0, proc3.stderr[-3000:]
    info = json.loads(proc3.stdout.strip().splitlines()[-1])
    assert info["model"].startswith("transformers_modules.") and info["base"] == "GemmaEncoderModel"
    assert ["validation", "macro_f1", 0.4123] in info["eval"]
    assert "notes.txt" not in info["files"] and ".eval_results/goemotions.yaml" in info["files"]
    np.testing.assert_array_equal(np.load(tmp_path / "logits.npy"), expected)
    assert any(path.endswith(f"/resolve/{sha}/model.safetensors") for _, path, _ in hub.log)
    assert not grep_token(tmp_path, extra_text=proc.stdout + proc.stderr + proc2.stderr + proc3.stdout + proc3.stderr)


def test_bad_or_missing_token_fails_clearly_and_keeps_outputs(hub, tmp_path):
    run_dir, _, _ = tiny_gemma_run(tmp_path / "outputs" / "run")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    bad = "hf_wrongTokenWrongToken123456"
    push = [sys.executable, str(REPO / "scripts" / "push.py"), str(run_dir), "--repo", f"{USER}/m", "--backoff", "0"]
    proc = run(push, client_env(hub, tmp_path, token=bad), tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "refused the token" in err[0] and f"scripts/push.py {run_dir}" in err[0]
    assert bad not in proc.stderr + proc.stdout
    proc = run(push, client_env(hub, tmp_path, token=None, HF_HOME=str(tmp_path / "empty_home")), tmp_path)
    assert proc.returncode == 2 and "no Hugging Face token" in proc.stderr
    # writing into someone else's namespace: 403
    proc = run(push[:-4] + ["--repo", "bob/m", "--backoff", "0"], client_env(hub, tmp_path), tmp_path)
    assert proc.returncode == 2 and "refused the token" in proc.stderr and TOKEN not in proc.stderr
    assert ("model", f"{USER}/m") not in hub.repos and ("model", "bob/m") not in hub.repos
    after = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert set(before) <= set(after) and all(after[k] == v for k, v in before.items())
    assert "hub_push.json" not in after


def test_incomplete_custom_code_folder_is_refused_before_anything_is_pushed(hub, tmp_path):
    """push_run adds no code and edits no config: a folder that would not load with trust_remote_code (a code
    file missing, an auto_map entry naming a class its file lacks, a missing sibling module) is refused
    with one line naming the problem, nothing reaches the Hub and the folder stays as it was."""
    run_dir, _, _ = tiny_gemma_run(tmp_path / "outputs" / "broken")
    cfg = json.loads((run_dir / "config.json").read_text())
    del cfg["auto_map"]["AutoModel"]
    (run_dir / "config.json").write_text(json.dumps(cfg))
    (run_dir / "modeling_gemma_encoder.py").unlink()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    push = [sys.executable, str(REPO / "scripts" / "push.py"), str(run_dir), "--repo", f"{USER}/broken"]
    proc = run(push, client_env(hub, tmp_path), tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: refusing to push {run_dir}"), proc.stderr
    assert "auto_map needs modeling_gemma_encoder.py, which the folder lacks" in err[0] and "save_pretrained" in err[0]
    assert not [entry for entry in hub.log if "/api/" in entry[1]]  # not even the repo was created
    assert ("model", f"{USER}/broken") not in hub.repos
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before

    from affectlab.hub import HubError, check_custom_code

    good = tiny_gemma_run(tmp_path / "outputs" / "good")[0]
    assert check_custom_code(good) == ["configuration_gemma_encoder.py", "modeling_gemma_encoder.py"]
    (good / "configuration_gemma_encoder.py").unlink()  # the sibling module the modeling file imports
    with pytest.raises(HubError, match=r"modeling_gemma_encoder.py imports .configuration_gemma_encoder, but the "
                                       r"folder has no configuration_gemma_encoder.py"):
        check_custom_code(good)
    cfg = json.loads((good / "config.json").read_text())
    cfg["auto_map"]["AutoConfig"] = "modeling_gemma_encoder.GemmaEncoderConfigX"
    cfg["architectures"] = ["GemmaEncoderForTokenClassification"]
    (good / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HubError) as info:
        check_custom_code(good)
    message = str(info.value)
    assert "\n" not in message and "modeling_gemma_encoder.py defines no GemmaEncoderConfigX" in message
    assert "architectures names GemmaEncoderForTokenClassification, which no auto_map entry provides" in message
    del cfg["auto_map"]
    (good / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HubError, match="model_type 'gemma_encoder', which transformers does not know, and no auto_map"):
        check_custom_code(good)


def test_connection_drop_is_retried_then_fails_clearly(hub, tmp_path):
    run_dir, _, _ = tiny_gemma_run(tmp_path / "outputs" / "run")
    push = [sys.executable, str(REPO / "scripts" / "push.py"), str(run_dir), "--repo", f"{USER}/flaky",
            "--retries", "2", "--backoff", "0.05"]
    hub.fail_next(r"^POST /api/models/alice/flaky/commit/", times=1)  # connection dropped mid-commit, once
    proc = run(push, client_env(hub, tmp_path), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("POST", "/api/models/alice/flaky/commit/main", 0) in hub.log
    assert hub.repos[("model", f"{USER}/flaky")].branches["main"] == json.loads(proc.stdout.splitlines()[-1])["revision"]

    hub.fail_next(r"^POST /api/models/alice/flaky2/commit/", times=10, status=503)
    proc = run(push[:4] + [f"{USER}/flaky2"] + push[5:], client_env(hub, tmp_path), tmp_path)
    assert proc.returncode == 1
    assert "after 3 attempts" in proc.stderr and f"python scripts/push.py {run_dir} --repo {USER}/flaky2" in proc.stderr
    assert sum(1 for m, p, s in hub.log if p.startswith("/api/models/alice/flaky2/commit") and s == 503) == 3
    assert (run_dir / "model.safetensors").is_file() and not grep_token(tmp_path, extra_text=proc.stderr)


CONCURRENT = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {repo!r})
    from affectlab.results import result_record, save_result
    name, go = sys.argv[1], sys.argv[2]
    y_true = [0, 1, 2, 1, 0, 2, 1, 0] * 5
    y_pred = [t if (i % int(sys.argv[3])) else (t + 1) % 3 for i, t in enumerate(y_true)]
    acc = sum(a == b for a, b in zip(y_true, y_pred)) / len(y_true)
    rec = result_record(model_repo="alice/" + name, revision="0" * 40, task="sentiment", dataset="tweet_eval",
                        split="test", metrics={{"accuracy": acc}}, y_true=y_true, y_pred=y_pred,
                        dataset_rows=[{{"text": str(i), "label": t}} for i, t in enumerate(y_true)], seed=1,
                        config={{"lr": 1e-4, "hub_token": os.environ["HF_TOKEN"]}})
    open(go + "." + name, "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)
    print(save_result(rec, "hf://datasets/alice/affect-results", backoff=0.05))
""")


def test_two_processes_push_results_concurrently_and_leaderboard_shows_both(hub, tmp_path):
    script = tmp_path / "push_result.py"
    script.write_text(CONCURRENT.format(repo=str(REPO)))
    go = tmp_path / "go"
    env = client_env(hub, tmp_path)
    procs = [subprocess.Popen([sys.executable, str(script), name, str(go), every], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
             for name, every in (("model-a", "4"), ("model-b", "2"))]
    deadline = time.time() + 120
    while not all((tmp_path / f"go.{n}").exists() for n in ("model-a", "model-b")) and time.time() < deadline:
        time.sleep(0.05)
    go.touch()  # both processes are ready: release them at the same moment
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    repo = hub.repos[("dataset", "alice/affect-results")]
    files = sorted(p for p in repo.commits[repo.branches["main"]].tree if p.endswith(".json"))
    assert [f.split("/")[1] for f in files] == ["model-a", "model-b"]
    assert all(f.split("/")[2].startswith("results_") for f in files)
    for f in files:
        record = json.loads(hub.blobs[repo.commits[repo.branches["main"]].tree[f].sha256])
        assert record["config_hash"].startswith("sha256:") and record["dataset"]["fingerprint"].endswith(":40")
        assert record["model"]["revision"] == "0" * 40 and record["seed"] == 1 and record["versions"]["torch"]

    out_dir = tmp_path / "board"
    proc = run([sys.executable, str(REPO / "scripts" / "leaderboard.py"), "--results",
                "hf://datasets/alice/affect-results", "--out", str(out_dir), "--n-boot", "200"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (out_dir / "leaderboard.csv").read_text()
    assert "alice/model-a" in table and "alice/model-b" in table
    md = (out_dir / "leaderboard.md").read_text()
    assert md.index("alice/model-a") < md.index("alice/model-b")  # a: 75% accuracy, b: 50%
    assert not grep_token(tmp_path, extra_text="".join(o + e for o, e in outs) + proc.stdout + proc.stderr)


def test_training_script_push_to_hub_goes_through_push_run_and_reloads(hub, tmp_path, tiny_bert_dir):
    """`train_classifier.py --push_to_hub` pushes the finished run once (not Trainer's checkpoint pushes),
    records the sha and a leaderboard result with it; the pushed model reloads with identical outputs."""
    env = client_env(hub, tmp_path, AFFECTLAB_RESULTS=str(tmp_path / "results"))
    out = tmp_path / "run"
    proc = run([sys.executable, str(REPO / "scripts" / "train_classifier.py"), "--config", str(REPO / "recipes" / "tiny_test.yaml"),
                "--model_name_or_path", str(tiny_bert_dir), "--output_dir", str(out), "--push_to_hub", "true",
                "--hub_model_id", f"{USER}/tiny-emotions"], env, tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "hub_push.json").read_text())
    assert f"pushed {USER}/tiny-emotions@{record['revision']}" in proc.stdout
    results = list((tmp_path / "results" / USER / "tiny-emotions").glob("results_*.json"))
    assert len(results) == 1 and json.loads(results[0].read_text())["model"]["revision"] == record["revision"]
    assert grep_token(out, tmp_path / "results", extra_text=proc.stdout + proc.stderr) == []
    check = textwrap.dedent(f"""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        tok = AutoTokenizer.from_pretrained("{USER}/tiny-emotions", revision="{record['revision']}")
        model = AutoModelForSequenceClassification.from_pretrained("{USER}/tiny-emotions", revision="{record['revision']}").eval()
        local = AutoModelForSequenceClassification.from_pretrained("{out}").eval()
        batch = tok(["I am so happy for you", "this is awful"], padding=True, return_tensors="pt")
        with torch.no_grad():
            assert torch.equal(model(**batch).logits, local(**batch).logits)
        assert model.config.label_thresholds == local.config.label_thresholds
        print("RELOAD-OK")
    """)
    proc = run([sys.executable, "-c", check], client_env(hub, tmp_path, token=None), tmp_path)
    assert "RELOAD-OK" in proc.stdout, proc.stderr[-3000:]
