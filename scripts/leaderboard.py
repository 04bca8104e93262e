"""Per-task leaderboard tables from a results folder or a results dataset repo (`hf://datasets/<org>/<name>`).

    python scripts/leaderboard.py --results results/ --out leaderboard_out [--n-boot 1000] [--hub-url URL]

For every (task, dataset, split) the latest result of each (model, revision) is ranked by the task's
primary metric. The 95% confidence interval is a percentile bootstrap over the per-example predictions
stored with each result (the metric is recomputed from them and must match the stored value). The leader's
margin over each other row is tested with a paired bootstrap when both were evaluated on the same rows
(same dataset fingerprint): `p_vs_leader` is the share of resamples where the leader is not better, and the
margin is significant when it is below 0.05; rows evaluated on different rows get no test.
Writes `leaderboard.csv` (all tasks), `leaderboard.md` and a static `leaderboard.html`.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LOWER_IS_BETTER = {"hamming_loss", "mae", "rmse", "ece"}
COLUMNS = ["task", "dataset", "split", "rank", "model", "revision", "metric", "value", "ci_low", "ci_high",
           "n", "margin_to_leader", "p_vs_leader", "significant", "base_model", "date", "path"]


def metric_fn(name: str):
    """Metric over (y_true, y_pred) arrays: class ids (n,) or 0/1 indicator matrices (n, labels)."""
    from sklearn.metrics import f1_score, hamming_loss

    if name in ("accuracy", "subset_accuracy"):
        return lambda t, p: float(np.mean(np.all(t == p, axis=1)) if t.ndim == 2 else np.mean(t == p))
    if name in ("macro_f1", "micro_f1", "weighted_f1"):
        avg = name.split("_")[0]
        return lambda t, p: float(f1_score(t, p, average=avg, zero_division=0))
    if name == "hamming_loss":
        return lambda t, p: float(hamming_loss(t, p))
    if name == "mae":
        return lambda t, p: float(np.mean(np.abs(t - p)))
    if name == "rmse":
        return lambda t, p: float(np.sqrt(np.mean((t - p) ** 2)))
    raise KeyError(f"no bootstrap metric for {name!r}")


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_scores(y_true: np.ndarray, y_pred: np.ndarray, metric: str, idx: np.ndarray) -> np.ndarray:
    fn = metric_fn(metric)
    if metric in ("accuracy", "subset_accuracy"):  # vectorised: mean of per-example hits
        hits = np.all(y_true == y_pred, axis=1) if y_true.ndim == 2 else (y_true == y_pred)
        return hits.astype(float)[idx].mean(axis=1)
    return np.array([fn(y_true[i], y_pred[i]) for i in idx])


def build_tables(records: list[dict], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05):
    """One pandas DataFrame per (task, dataset, split), ranked; returns {(task, dataset, split): df}."""
    import pandas as pd

    latest: dict[tuple, dict] = {}
    for r in records:
        key = (r["task"]["name"], r["dataset"]["name"], r["dataset"]["split"], r["model"]["repo_id"],
               r["model"].get("revision"))
        if key not in latest or r["date"] > latest[key]["date"]:
            latest[key] = r
    groups: dict[tuple, list[dict]] = {}
    for key, r in latest.items():
        groups.setdefault(key[:3], []).append(r)
    tables = {}
    for (task, dataset, split), rs in sorted(groups.items()):
        metric = rs[0]["task"]["primary_metric"]
        lower = metric in LOWER_IS_BETTER
        rows, boots = [], []
        for r in rs:
            y_true = np.asarray(r["predictions"]["y_true"])
            y_pred = np.asarray(r["predictions"]["y_pred"])
            value = metric_fn(metric)(y_true, y_pred)
            stored = r["metrics"].get(metric)
            if stored is not None and abs(stored - value) > 1e-6:
                raise ValueError(f"{r.get('_path')}: stored {metric}={stored} but predictions give {value}")
            idx = bootstrap_indices(len(y_true), n_boot, seed)  # same seed + same n => paired resamples
            scores = bootstrap_scores(y_true, y_pred, metric, idx)
            boots.append(scores)
            rows.append({"task": task, "dataset": dataset, "split": split, "model": r["model"]["repo_id"],
                         "revision": (r["model"].get("revision") or "")[:12], "metric": metric, "value": value,
                         "ci_low": float(np.quantile(scores, alpha / 2)), "ci_high": float(np.quantile(scores, 1 - alpha / 2)),
                         "n": len(y_true), "base_model": r["model"].get("base_model"), "date": r["date"],
                         "path": r.get("_path"), "_fp": r["dataset"].get("fingerprint")})
        order = sorted(range(len(rows)), key=lambda i: (rows[i]["value"] if lower else -rows[i]["value"], rows[i]["model"]))
        lead = order[0]
        for rank, i in enumerate(order, 1):
            row = rows[i]
            row["rank"] = rank
            row["margin_to_leader"] = abs(rows[lead]["value"] - row["value"])
            if i == lead:
                row["p_vs_leader"], row["significant"] = None, None
            elif row["_fp"] and row["_fp"] == rows[lead]["_fp"] and row["n"] == rows[lead]["n"]:
                diff = boots[lead] - boots[i]
                if lower:
                    diff = -diff
                p = float(np.mean(diff <= 0))
                row["p_vs_leader"], row["significant"] = p, bool(p < alpha)
            else:
                row["p_vs_leader"], row["significant"] = None, None
        df = pd.DataFrame([rows[i] for i in order]).drop(columns=["_fp"])
        tables[(task, dataset, split)] = df[COLUMNS]
    return tables


def _fmt(v, digits=4):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def to_markdown(tables) -> str:
    out = ["# affectlab leaderboard", ""]
    for (task, dataset, split), df in tables.items():
        metric = df["metric"].iloc[0]
        out += [f"## {task} — {dataset} ({split}), {metric}", "",
                "| rank | model | revision | value | 95% CI | n | margin | p vs leader | significant |",
                "|---:|---|---|---:|---|---:|---:|---:|---|"]
        for r in df.itertuples():
            out.append(f"| {r.rank} | {r.model} | `{r.revision}` | {_fmt(r.value)} | [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}] | "
                       f"{r.n} | {_fmt(r.margin_to_leader)} | {_fmt(r.p_vs_leader, 3)} | {_fmt(r.significant)} |")
        out.append("")
    return "\n".join(out)


def to_html(tables, hub_url: str = "https://huggingface.co") -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>affectlab leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:4px 8px}th{background:#eee}</style></head><body>",
             "<h1>affectlab leaderboard</h1>"]
    for (task, dataset, split), df in tables.items():
        parts.append(f"<h2>{html.escape(task)} — {html.escape(dataset)} ({html.escape(split)}), "
                     f"{html.escape(df['metric'].iloc[0])}</h2><table><tr><th>rank</th><th>model</th><th>revision</th>"
                     "<th>value</th><th>95% CI</th><th>n</th><th>margin</th><th>p vs leader</th><th>significant</th></tr>")
        for r in df.itertuples():
            link = f"{hub_url.rstrip('/')}/{r.model}" + (f"/tree/{r.revision}" if r.revision else "")
            parts.append(f"<tr class='row' data-model='{html.escape(r.model)}'><td>{r.rank}</td>"
                         f"<td><a href='{html.escape(link)}'>{html.escape(r.model)}</a></td><td><code>{html.escape(r.revision)}</code></td>"
                         f"<td>{_fmt(r.value)}</td><td>[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]</td><td>{r.n}</td>"
                         f"<td>{_fmt(r.margin_to_leader)}</td><td>{_fmt(r.p_vs_leader, 3)}</td><td>{_fmt(r.significant)}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_outputs(tables, out_dir: str | Path, hub_url: str = "https://huggingface.co") -> dict[str, Path]:
    import pandas as pd

    from affectlab.io import atomic_write_text

    out_dir = Path(out_dir)
    all_rows = pd.concat(list(tables.values()), ignore_index=True) if tables else pd.DataFrame(columns=COLUMNS)
    paths = {"csv": out_dir / "leaderboard.csv", "md": out_dir / "leaderboard.md", "html": out_dir / "leaderboard.html"}
    atomic_write_text(paths["csv"], all_rows.to_csv(index=False))
    atomic_write_text(paths["md"], to_markdown(tables))
    atomic_write_text(paths["html"], to_html(tables, hub_url))
    return paths


def main(argv: list[str] | None = None) -> int:
    from affectlab.results import default_results_location, load_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None, help="results folder or hf://datasets/<org>/<name> "
                                                        "(default: $AFFECTLAB_RESULTS or results/)")
    parser.add_argument("--out", default="leaderboard_out")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hub-url", default=None, help="base URL of model links (default: $HF_ENDPOINT or huggingface.co)")
    args = parser.parse_args(argv)
    import os

    records = load_results(args.results or default_results_location())
    tables = build_tables(records, n_boot=args.n_boot, seed=args.seed)
    paths = write_outputs(tables, args.out, args.hub_url or os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    print(to_markdown(tables))
    print(f"{len(records)} results, {len(tables)} tables -> {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
