"""A push that fails after training keeps everything: the run folder and its result records are written
first, the Hub's failures cost one stderr line per attempt, the last line says how to push later, and
`affectlab push` then names the pushed revision in the run's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from affectlab.testing.hub_emulator import HubEmulator

REPO = Path(__file__).resolve().parents[2]
TOKEN = "hf_reliabilityToken0123456789abc"


def test_failed_push_keeps_run_and_records_then_push_adds_revision(tmp_path, tiny_bert_dir):
    with HubEmulator(tokens={TOKEN: "alice"}) as hub:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_TOKEN")}
        env.update(hub.client_env(token=TOKEN), HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1",
                   AFFECTLAB_RESULTS=str(tmp_path / "results"))
        hub.fail_next(r"^POST /api/models/alice/later/commit/", times=4, status=503)  # every attempt of the first push
        out = tmp_path / "run"
        proc = subprocess.run([sys.executable, "-m", "affectlab.cli", "train", "classifier", "--config",
                               str(REPO / "recipes" / "tiny_test.yaml"), "--model_name_or_path", str(tiny_bert_dir),
                               "--output_dir", str(out), "--push_to_hub", "true", "--hub_model_id", "alice/later"],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 1, proc.stderr[-3000:]
        err = [line for line in proc.stderr.splitlines() if "alice/later" in line or line.startswith("error:")]
        retries = [line for line in err if "retrying in" in line]
        assert len(retries) == 3 and all(line.count("\n") == 0 for line in retries)
        assert err[-1].startswith("error:") and f"scripts/push.py {out.resolve()} --repo alice/later" in err[-1]
        # everything is there: model, card, eval summary, and the result record under the local id
        for name in ("model.safetensors", "README.md", "eval_results.json", "result_records.json"):
            assert (out / name).is_file(), name
        records = json.loads((out / "result_records.json").read_text())["records"]
        assert len(records) == 1 and f"/local/{out.name}/" in records[0]
        assert json.loads(Path(records[0]).read_text())["model"]["revision"] is None

        push = subprocess.run([sys.executable, "-m", "affectlab.cli", "push", str(out), "--repo", "alice/later"],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert push.returncode == 0, push.stderr[-3000:]
        revision = json.loads(push.stdout.strip().splitlines()[-1])["revision"]
        moved = json.loads((out / "result_records.json").read_text())["records"]
        assert len(moved) == 1 and "/alice/later/" in moved[0] and not Path(records[0]).exists()
        record = json.loads(Path(moved[0]).read_text())
        assert record["model"]["repo_id"] == "alice/later" and record["model"]["revision"] == revision
