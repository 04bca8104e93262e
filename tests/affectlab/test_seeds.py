"""Several seeds through the run life-cycle (`--seeds`, `affectlab.run.run_seeds`): one folder, card,
eval_results.json and result records per seed (each carrying its seed and the shared run group), the aggregate
(mean, sample sd, n, per-seed values) computed from them, the same seed giving the same numbers, and the
refusals (a conflicting --seed, a push without --push_seed) as one line with exit code 2; a push with
--push_seed sends that seed's model with the over-seeds section on its card (Hub emulator)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

from test_run import TINY, affectlab, tiny_args

REPO = Path(__file__).resolve().parents[2]
SEEDS = (1337, 1338)


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("seeds")
    out, results = root / "group", root / "results"
    proc = affectlab(*tiny_args(tiny_bert_dir, out, "--results_location", results, "--seeds", "1337,1338",
                                "--threshold_policy", "heldout_train"), cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, results, proc


def records_of(folder: Path) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in json.loads((folder / "result_records.json").read_text())["records"]]


def test_each_seed_is_its_own_run_with_its_seed(seeds_run):
    from affectlab.eval_results import validate_eval_results

    out, results, _ = seeds_run
    group_ids = set()
    for seed in SEEDS:
        folder = out / f"seed-{seed}"
        assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
        payload = validate_eval_results(json.loads((folder / "eval_results.json").read_text()))
        assert payload["seed"] == seed and payload["run_group"]["seeds"] == list(SEEDS)
        (record,) = records_of(folder)
        assert record["seed"] == seed and record["run_group"] == payload["run_group"]
        assert record["model"]["repo_id"] == f"local/{out.name}"          # the group's name, not seed-<n>
        assert record["metrics"]["macro_f1"] == pytest.approx(payload["results"]["validation"]["macro_f1"])
        assert record["protocol"]["threshold_policy"] == "heldout_train" and record["protocol"]["optimistic"] is False
        card = (folder / "README.md").read_text()
        assert f"Seed {seed} is one of 2 seeds (1337, 1338)" in card and f"# {out.name} (seed {seed})" in card
        group_ids.add(payload["run_group"]["id"])
    assert len(group_ids) == 1
    assert len(records_of(out)) == 2 and len(list(results.rglob("results_*.json"))) == 2


def test_aggregate_is_mean_and_sample_sd_of_the_seeds(seeds_run):
    out, _, proc = seeds_run
    aggregate = json.loads((out / "seeds_results.json").read_text())
    assert aggregate["seeds"] == list(SEEDS) and aggregate["runs"] == {"1337": "seed-1337", "1338": "seed-1338"}
    assert aggregate["protocol"]["threshold_policy"]["name"] == "heldout_train"
    per_seed = {seed: json.loads((out / f"seed-{seed}" / "eval_results.json").read_text())["results"]["validation"]
                for seed in SEEDS}
    from_records = {r["seed"]: r["metrics"] for r in records_of(out)}
    for key in ("macro_f1", "micro_f1", "hamming_loss", "macro_f1_tuned"):
        values = [per_seed[s][key] for s in SEEDS]
        assert values == [from_records[s][key] for s in SEEDS]
        m = aggregate["results"]["validation"][key]
        assert m["values"] == {str(s): v for s, v in zip(SEEDS, values)} and m["n"] == 2
        assert m["mean"] == pytest.approx(statistics.mean(values), abs=1e-12)
        assert m["sd"] == pytest.approx(statistics.stdev(values), abs=1e-12)   # sample sd (n - 1)
    macro = aggregate["results"]["validation"]["macro_f1"]
    line = f"| validation | Macro F1 | {macro['mean']:.4f} ± {macro['sd']:.4f} |"
    assert line in (out / "seeds_report.md").read_text() and line in proc.stdout


def test_seed_aggregate_numbers():
    from affectlab.run import seed_aggregate, seed_report

    def payload(v):
        return {"family": "classifier", "task": {"primary_metric": "macro_f1", "card_metrics": ["macro_f1"]},
                "dataset": {"name": "d"}, "model": {}, "results": {"validation": {"macro_f1": v, "num_examples": 10}}}

    agg = seed_aggregate({1: payload(0.1), 2: payload(0.2), 3: payload(0.6)})
    m = agg["results"]["validation"]["macro_f1"]
    assert m["mean"] == pytest.approx(0.3) and m["sd"] == pytest.approx(float(np.std([0.1, 0.2, 0.6], ddof=1)))
    assert m["sd"] == pytest.approx(0.264575131, abs=1e-9) and m["n"] == 3
    assert "| validation | Macro F1 | 0.3000 ± 0.2646 | 0.1000 | 0.2000 | 0.6000 |" in seed_report(agg)
    one = seed_aggregate({7: payload(0.5)})["results"]["validation"]["macro_f1"]
    assert one["sd"] is None and one["n"] == 1


def test_the_same_seed_gives_the_same_numbers(seeds_run, tiny_bert_dir, tmp_path):
    out, _, _ = seeds_run
    single = tmp_path / "single"
    proc = affectlab(*tiny_args(tiny_bert_dir, single, "--seeds", "1337", "--threshold_policy", "heldout_train",
                                "--save_results", "false"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (single / "seed-1337").exists()   # one seed: an ordinary run in output_dir
    again = json.loads((single / "eval_results.json").read_text())
    first = json.loads((out / "seed-1337" / "eval_results.json").read_text())
    other = json.loads((out / "seed-1338" / "eval_results.json").read_text())
    assert again["results"] == first["results"] and again["thresholds"] == first["thresholds"]
    assert again["seed"] == 1337 and again["results"] != other["results"]


@pytest.mark.parametrize("extra, words", [
    (["--seeds", "1337,1338", "--seed", "5"], "--seed 5 conflicts with --seeds 1337,1338"),
    (["--seeds", "1337,1338", "--push_to_hub", "true"], "--push_seed"),
    (["--seeds", "1337,1338", "--push_seed", "1338"], "--push_to_hub is not set"),
    (["--seeds", "1337,1337"], "each seed once"),
])
def test_refusals_are_one_line_exit_2_nothing_written(tiny_bert_dir, tmp_path, extra, words):
    out = tmp_path / "out"
    proc = affectlab(*tiny_args(tiny_bert_dir, out, *extra), cwd=tmp_path)
    assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_recipe_seeds_list_is_read(tmp_path):
    from affectlab.run import parse_task_args
    from affectlab.tasks.classification import ClassifierTask

    recipe = tmp_path / "r.yaml"
    recipe.write_text(TINY.read_text() + "seeds: [1337, 1338, 1339]\n")
    args, training, _ = parse_task_args(ClassifierTask, ["--config", str(recipe)])
    assert args.seeds == [1337, 1338, 1339]
    args, _, _ = parse_task_args(ClassifierTask, ["--config", str(recipe), "--seeds", "7, 8"])
    assert args.seeds == [7, 8]


def test_push_with_push_seed_sends_that_seed_with_the_spread(tmp_path, tiny_bert_dir):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_hub import TOKEN, USER, client_env, run

    from affectlab.testing.hub_emulator import HubEmulator

    with HubEmulator(tokens={TOKEN: USER}, orgs={USER: ["affect-org"]}, lfs_threshold=4096) as hub:
        env = client_env(hub, tmp_path, AFFECTLAB_RESULTS=str(tmp_path / "results"), HF_HUB_OFFLINE="0",
                         TOKENIZERS_PARALLELISM="false")
        out = tmp_path / "group"
        proc = run([sys.executable, "-m", "affectlab.cli", *map(str, tiny_args(tiny_bert_dir, out)), "--seeds", "1337,1338",
                    "--push_to_hub", "true", "--push_seed", "1337", "--hub_model_id", f"{USER}/tiny-seeds"],
                   env, tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        pushed = json.loads((out / "seed-1337" / "hub_push.json").read_text())
        assert not (out / "seed-1338" / "hub_push.json").exists()
        fetch = (f"from huggingface_hub import hf_hub_download; print(open(hf_hub_download('{USER}/tiny-seeds', "
                 f"'README.md', revision='{pushed['revision']}')).read())")
        card = run([sys.executable, "-c", fetch], env, tmp_path).stdout
        assert "## Results over 2 seeds" in card and "| seed 1337 | seed 1338 |" in card
        records = {r["seed"]: r for r in records_of(out)}
        assert records[1337]["model"] == {**records[1337]["model"], "repo_id": f"{USER}/tiny-seeds",
                                          "revision": pushed["revision"]}
        assert records[1338]["model"]["repo_id"] == f"local/{out.name}" and records[1338]["model"]["revision"] is None
        assert records[1337]["run_group"]["id"] == records[1338]["run_group"]["id"]
