"""Per-task leaderboard tables from a results folder or a results dataset repo (`hf://datasets/<org>/<name>`).

    affectlab leaderboard --results results/ --out leaderboard_out [--n-boot 1000] [--hub-url URL]
    (or `python scripts/leaderboard.py ...`; `leaderboard/app.py` serves the same tables)

Records of every task family are accepted (`affectlab.results`): class ids or 0/1 rows (classification,
multi-label), values (regression: pearson, r2, mae, ...) or per-example `scores` (span QA, LLM answers: the
metric is their mean); see `affectlab.stats.record_metric`. For every (task, dataset, split) the latest result
of each (model, revision) on each set of evaluated rows is taken, and its primary metric recomputed from the
stored predictions (it must match the stored value). Rows are ranked together only when they were evaluated
on the same rows (same dataset fingerprint): each such set is a `group` (1 = the set most models were
evaluated on), ranked on its own; the others are listed apart below it. The 95% confidence interval is a
percentile bootstrap over the examples (`affectlab.stats.bootstrap`); the group leader's margin over each
other row of its group is tested with a paired bootstrap on the same resamples: `p_vs_leader` is the share of
resamples where the leader is not better, `significant` when it is below 0.05. Whether higher is better comes
from `affectlab.registry`. Models named `local/<name>` (never pushed) are shown without a Hub link.
Writes `leaderboard.csv` (all tasks), `leaderboard.md` and a static `leaderboard.html`.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from pathlib import Path

import numpy as np

COLUMNS = ["task", "dataset", "split", "group", "rank", "model", "revision", "metric", "value", "ci_low", "ci_high",
           "n", "margin_to_leader", "p_vs_leader", "significant", "family", "method", "base_model", "rows", "date",
           "path"]
LOCAL_PREFIX = "local/"


def is_local_model(model: str) -> bool:
    """`local/<name>`: a model that was not pushed (no Hub page to link to)."""
    return str(model).startswith(LOCAL_PREFIX)


def model_url(model: str, revision: str | None, hub_url: str = "https://huggingface.co") -> str | None:
    """The model's Hub page at `revision`, or None for a `local/` model."""
    if is_local_model(model):
        return None
    return f"{hub_url.rstrip('/')}/{model}" + (f"/tree/{revision}" if revision else "")


def rows_label(fingerprint: str | None, n: int) -> str:
    """Short name of a set of evaluated rows: `sha256:<first 10 hex>… (<n> rows)`."""
    if not fingerprint:
        return f"unknown rows ({n})"
    algo, _, rest = fingerprint.partition(":")
    return f"{algo}:{rest.split(':')[0][:10]}… ({n} rows)"


def _latest(records: list[dict]) -> dict[tuple, dict]:
    latest: dict[tuple, dict] = {}
    for r in records:
        key = (r["task"]["name"], r["dataset"]["name"], r["dataset"]["split"], r["model"]["repo_id"],
               r["model"].get("revision"), r["dataset"].get("fingerprint"))
        if key not in latest or r["date"] > latest[key]["date"]:
            latest[key] = r
    return latest


def _rank_group(rows: list[dict], metrics: list, higher: bool, n_boot: int, seed: int, alpha: float) -> list[dict]:
    """Rank the rows of one set of evaluated rows; the leader's margin and paired-bootstrap p against each."""
    from affectlab.stats import paired_bootstrap

    order = sorted(range(len(rows)), key=lambda i: (-rows[i]["value"] if higher else rows[i]["value"], rows[i]["model"]))
    lead = order[0]
    out = []
    for rank, i in enumerate(order, 1):
        row = dict(rows[i], rank=rank, margin_to_leader=abs(rows[lead]["value"] - rows[i]["value"]))
        row["p_vs_leader"], row["significant"] = None, None
        if i != lead and rows[i]["_fp"] and metrics[i].n == metrics[lead].n:
            p = paired_bootstrap(metrics[lead], metrics[i], n_boot, seed, alpha, higher)["p_value"]
            row["p_vs_leader"], row["significant"] = p, bool(p < alpha)
        out.append(row)
    return out


def build_tables(records: list[dict], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05):
    """One pandas DataFrame per (task, dataset, split): group 1 ranked first, other sets of rows after it."""
    import pandas as pd

    from affectlab.registry import higher_is_better
    from affectlab.stats import bootstrap, record_metric

    groups: dict[tuple, list[dict]] = {}
    for key, r in _latest(records).items():
        groups.setdefault(key[:3], []).append(r)
    tables = {}
    for (task, dataset, split), rs in sorted(groups.items()):
        metric = rs[0]["task"]["primary_metric"]
        higher = higher_is_better(metric)
        by_rows: dict[object, list[tuple[dict, object]]] = {}
        for r in rs:
            if r["task"]["primary_metric"] != metric:
                raise ValueError(f"{r.get('_path')}: primary metric {r['task']['primary_metric']!r} differs from "
                                 f"{metric!r} of the other {task} results on {dataset} ({split})")
            m = record_metric(r, metric)
            stored = r["metrics"].get(metric)
            if stored is not None and not abs(stored - m.value) <= 1e-6 * max(1.0, abs(m.value)):
                raise ValueError(f"{r.get('_path')}: stored {metric}={stored} but predictions give {m.value}")
            ci = bootstrap(m, n_boot, seed, alpha)
            fp = r["dataset"].get("fingerprint")
            row = {"task": task, "dataset": dataset, "split": split, "model": r["model"]["repo_id"],
                   "revision": (r["model"].get("revision") or "")[:12], "metric": metric, "value": m.value,
                   "ci_low": ci.ci_low, "ci_high": ci.ci_high, "n": m.n, "family": r["task"].get("family"),
                   "method": r["model"].get("method"), "base_model": r["model"].get("base_model"),
                   "rows": rows_label(fp, m.n), "date": r["date"], "path": r.get("_path"), "_fp": fp}
            # rows without a fingerprint cannot be shown to be the same rows as any other: each stands alone
            by_rows.setdefault(fp or ("unknown", r.get("_path"), row["model"]), []).append((row, m))
        best = (lambda vals: max(vals)) if higher else (lambda vals: -min(vals))
        ordered = sorted(by_rows.values(), key=lambda g: (-len(g), -best([row["value"] for row, _ in g])))
        out = []
        for number, members in enumerate(ordered, 1):
            ranked = _rank_group([row for row, _ in members], [m for _, m in members], higher, n_boot, seed, alpha)
            out += [dict(row, group=number) for row in ranked]
        tables[(task, dataset, split)] = pd.DataFrame(out).drop(columns=["_fp"])[COLUMNS]
    return tables


def _fmt(v, digits=4):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _group_heading(df, group: int) -> str:
    rows = df[df["group"] == group]["rows"].iloc[0]
    if group == 1:
        return f"Ranked on {rows}"
    return f"Evaluated on other rows ({rows}): ranked apart, not comparable with group 1"


def to_markdown(tables) -> str:
    out = ["# affectlab leaderboard", ""]
    for (task, dataset, split), df in tables.items():
        metric = df["metric"].iloc[0]
        out += [f"## {task} — {dataset} ({split}), {metric}", ""]
        for group in sorted(df["group"].unique()):
            if df["group"].nunique() > 1:
                out += [f"{_group_heading(df, group)}", ""]
            out += ["| rank | model | revision | value | 95% CI | n | margin | p vs leader | significant |",
                    "|---:|---|---|---:|---|---:|---:|---:|---|"]
            for r in df[df["group"] == group].itertuples():
                out.append(f"| {r.rank} | {r.model} | `{r.revision}` | {_fmt(r.value)} | [{_fmt(r.ci_low)}, "
                           f"{_fmt(r.ci_high)}] | {r.n} | {_fmt(r.margin_to_leader)} | {_fmt(r.p_vs_leader, 3)} | "
                           f"{_fmt(r.significant)} |")
            out.append("")
    return "\n".join(out)


def _model_cell(model: str, revision: str, hub_url: str) -> str:
    url = model_url(model, revision, hub_url)
    if url is None:
        return f"<span class='local' title='not pushed to the Hub'>{html.escape(model)}</span>"
    return f"<a href='{html.escape(url)}'>{html.escape(model)}</a>"


def to_html(tables, hub_url: str = "https://huggingface.co") -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>affectlab leaderboard</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:4px 8px}th{background:#eee}</style></head><body>",
             "<h1>affectlab leaderboard</h1>"]
    for (task, dataset, split), df in tables.items():
        parts.append(f"<h2>{html.escape(task)} — {html.escape(dataset)} ({html.escape(split)}), "
                     f"{html.escape(df['metric'].iloc[0])}</h2>")
        for group in sorted(df["group"].unique()):
            if df["group"].nunique() > 1:
                parts.append(f"<h3>{html.escape(_group_heading(df, group))}</h3>")
            parts.append("<table><tr><th>rank</th><th>model</th><th>revision</th><th>value</th><th>95% CI</th>"
                         "<th>n</th><th>margin</th><th>p vs leader</th><th>significant</th></tr>")
            for r in df[df["group"] == group].itertuples():
                parts.append(f"<tr class='row' data-model='{html.escape(r.model)}' data-group='{r.group}'>"
                             f"<td>{r.rank}</td><td>{_model_cell(r.model, r.revision, hub_url)}</td>"
                             f"<td><code>{html.escape(r.revision)}</code></td><td>{_fmt(r.value)}</td>"
                             f"<td>[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]</td><td>{r.n}</td>"
                             f"<td>{_fmt(r.margin_to_leader)}</td><td>{_fmt(r.p_vs_leader, 3)}</td>"
                             f"<td>{_fmt(r.significant)}</td></tr>")
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

    parser = argparse.ArgumentParser(prog="affectlab leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None, help="results folder or hf://datasets/<org>/<name> "
                                                        "(default: $AFFECTLAB_RESULTS or results/)")
    parser.add_argument("--out", default="leaderboard_out")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hub-url", default=None, help="base URL of model links (default: $HF_ENDPOINT or huggingface.co)")
    args = parser.parse_args(argv)
    records = load_results(args.results or default_results_location())
    tables = build_tables(records, n_boot=args.n_boot, seed=args.seed)
    paths = write_outputs(tables, args.out, args.hub_url or os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    print(to_markdown(tables))
    print(f"{len(records)} results, {len(tables)} tables -> {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0
