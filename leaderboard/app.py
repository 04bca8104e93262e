"""affectlab leaderboard: a Gradio app (deployable as a Hugging Face Space) over the result records of a
results folder or a results dataset repo.

    python leaderboard/app.py --results hf://datasets/<org>/<results> [--submit-repo <org>/<results>]
    python leaderboard/app.py --results outputs/smoke/results outputs/bench_sentiment/results
    make leaderboard        # serves those two on http://127.0.0.1:7860

* One tab per task family (emotions, sentiment, criterion matching, evidence spans, persona regression, LLM
  SFT) and, inside it, one tab per dataset and split: rank by the primary metric with its 95% bootstrap CI,
  the gap to the leader and whether it is significant (paired bootstrap on the same rows), the protocol
  (split, evaluated rows and their fingerprint, threshold policy, seeds), model metadata (base model,
  parameters where known, method, hardware, date, revision; `local/<name>` models have no link) and speed
  where it was measured. Results evaluated on other rows are listed apart, never ranked with the others.
  A model search and a method filter per tab.
* Plots: quality against p50 latency, throughput or parameters with CI error bars and the Pareto front of
  each dataset; the per-label breakdown (F1 with CIs, or r per dimension) of a picked model.
* About: every family's protocol, how the CIs and significance are computed, what the local splits are and
  which official splits are held out (`dataset_builders/*` metadata through `affectlab.tasks.base.dataset_info`).
* Submit: a result record (`affectlab.results.result_record`) is validated (`affectlab.leaderboard.validate_record`:
  schema, provenance, per-example predictions or scores, the row fingerprint of the dataset's split) and
  opens a pull request on the results dataset (`create_commit(create_pr=True)`); a record that fails gets a
  message saying what is wrong.

Space: set `AFFECTLAB_RESULTS=hf://datasets/<org>/<results>` and the secret `HF_TOKEN` (a token that may open
pull requests on it); the app binds to 127.0.0.1 unless `--host` / `GRADIO_SERVER_NAME` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MPLBACKEND", "Agg")
_HERE = Path(__file__).resolve().parent
if (_HERE / "affectlab").is_dir():  # a Space: the package copied beside app.py
    sys.path.insert(0, str(_HERE))

HUB = "https://huggingface.co"
X_AXES = {"p50 latency (ms, batch 1)": ("latency_p50_ms", False), "throughput (samples/s)": ("throughput", True),
          "parameters": ("params", False)}
CSS = """
#lb-header h1 {margin-bottom: 0.15em}
#lb-header p {color: var(--body-text-color-subdued); margin-top: 0}
.protocol p {font-size: 0.92em; line-height: 1.5}
.legend p {font-size: 0.85em; color: var(--body-text-color-subdued)}
.lb-table {max-width: 100%}
.lb-table table, .lb-table td, .lb-table th, .lb-table span, .lb-table p {
  font-family: var(--font) !important; font-variant-numeric: tabular-nums}
.lb-table table {font-size: 0.92em}
.lb-table th {font-weight: 600}
#about-text table td:nth-child(-n+4), #about-text table th:nth-child(-n+4) {white-space: nowrap}
#about-text table td:nth-child(5) {min-width: 30em}
#about-text table td:nth-child(6) {min-width: 16em}
"""


# ---------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Board:
    """Everything the app shows, computed once at start."""

    records: list[dict]
    tables: dict                                  # (task, dataset, split) -> DataFrame (affectlab.leaderboard)
    by_tab: dict[str, list[tuple]]
    sources: list[str]
    hub_url: str = HUB
    n_boot: int = 1000
    submit_repo: str | None = None
    by_path: dict[str, dict] = field(default_factory=dict)
    known: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)   # (path, reason) of records that could not be scored


def load_board(results: list[str] | str | None, n_boot: int = 1000, hub_url: str = HUB,
               submit_repo: str | None = None) -> Board:
    from affectlab.leaderboard import build_tables, known_fingerprints, tables_by_tab
    from affectlab.results import default_results_location, load_results

    sources = [results] if isinstance(results, str) else list(results or [default_results_location()])
    records = []
    for i, source in enumerate(sources):
        for r in load_results(source):
            if len(sources) > 1:
                r["_path"] = f"[{i}] {r['_path']}"
            records.append(r)
    skipped: list = []
    tables = build_tables(records, n_boot=n_boot, strict=False, skipped=skipped)
    by_path = {r["_path"]: r for r in records}
    base_params = registry_params()
    for key, df in tables.items():
        df = benchmark_ranks(df)
        df["base_params"] = [base_params.get(str(b)) if _nan(p) and b else None for b, p in zip(df["base_model"], df["params"])]
        df["stored"] = [(by_path.get(path) or {}).get("metrics") or {} for path in df["path"]]
        tables[key] = df
    digits = {}
    for (task, _, _), df in tables.items():
        for metric, tab in zip(df["metric"], df["tab"]):
            digits[(task, metric)] = metric_digits(
                metric, [v for (t, _, _), d in tables.items() if t == task for v in d["value"]], tab)
    for (task, _, _), df in tables.items():
        df["digits"] = [digits[(task, m)] for m in df["metric"]]
    return Board(records, tables, tables_by_tab(tables), sources, hub_url, n_boot, submit_repo,
                 by_path, known_fingerprints(records), skipped)


def registry_params() -> dict[str, int]:
    """Parameter counts of base models from the benchmark's model registry (`recipes/models.yaml`, by Hub id
    and by name), for records that do not store their model's own count; empty where the file is absent."""
    import yaml

    path = _HERE.parent / "recipes" / "models.yaml"
    try:
        models = (yaml.safe_load(path.read_text()) or {}).get("models") or {}
    except (OSError, yaml.YAMLError):
        return {}
    out = {}
    for name, spec in models.items():
        if isinstance(spec, dict) and isinstance(spec.get("params"), (int, float)):
            out[name] = int(spec["params"])
            for hub_id in (spec.get("hub_id"), spec.get("released_as")):  # released_as: a converted model's origin
                if hub_id:
                    out[hub_id] = int(spec["params"])
    return out


def benchmark_ranks(df):
    """The sentiment benchmark's headline (`affectlab.benchmark.rank_table`, by quality): in each set of rows
    whose every row has a measured p50 latency, models whose 95% CIs overlap share a rank (`tied`) and are
    ordered by latency (faster first). `value_rank` keeps the rank by the metric alone (the gap to the best
    and its paired test are against the best value). Other sets keep their rank by value."""
    import pandas as pd

    from affectlab.benchmark import quality_ranks
    from affectlab.registry import higher_is_better

    df = df.copy()
    df["value_rank"], df["tied"] = df["rank"], False
    parts = []
    for _, g in df.groupby("group", sort=True):
        g = g.copy()
        if len(g) > 1 and g["latency_p50_ms"].notna().all():
            higher = higher_is_better(g["metric"].iloc[0])
            rows = [{"q": v, "ci": {"q": {"ci_low": lo, "ci_high": hi}}}
                    for v, lo, hi in zip(g["value"], g["ci_low"], g["ci_high"])]
            g["rank"] = quality_ranks(rows, "q", higher)
            g["tied"] = g["rank"].map(g["rank"].value_counts()) > 1
            g = g.assign(_v=-g["value"] if higher else g["value"]).sort_values(
                ["rank", "latency_p50_ms", "_v"], kind="stable").drop(columns="_v")
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else df


def default_submit_repo(sources: list[str]) -> str | None:
    from affectlab.results import HF_RESULTS_PREFIX

    if os.environ.get("AFFECTLAB_SUBMIT_REPO"):
        return os.environ["AFFECTLAB_SUBMIT_REPO"]
    hub = [s[len(HF_RESULTS_PREFIX):].strip("/") for s in sources if str(s).startswith(HF_RESULTS_PREFIX)]
    return hub[0] if hub else None


# ---------------------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------------------
def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def metric_label(metric: str) -> str:
    from affectlab.registry import higher_is_better, metric_info

    try:
        return f"{metric_info(metric).display} {'↑' if higher_is_better(metric) else '↓'}"
    except KeyError:
        return metric


def metric_digits(metric: str, values, tab: str | None = None) -> int:
    """Decimals of a table's metric: 2 for percentages (the registry's scale, the evidence-spans tab's SQuAD
    F1 / EM, or values above 1.5), else 4. `values`: every value of that task's metric on the board, so
    that its tables (validation, test) read alike."""
    from affectlab.registry import metric_info

    try:
        scale = metric_info(metric).scale
    except KeyError:
        scale = 1.0
    finite = [abs(float(v)) for v in values if not _nan(v)]
    return 2 if scale == 100.0 or tab in PERCENT_TABS or (finite and max(finite) > 1.5) else 4


def fmt_metric(v, digits: int = 4) -> str:
    return "–" if _nan(v) else f"{v:.{digits}f}".replace("-", "−")


def fmt_params(n) -> str:
    """124.7M, 4.39M (two decimals under 10M: 999,138 and 1,006,336 read 1.00M and 1.01M, not 999K and
    1.0M), 2.60B, 104K."""
    if _nan(n):
        return ""
    n = float(n)
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e7:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e6:.2f}M" if n >= 995_000 else f"{n / 1e3:.0f}K"


def fmt_speed(v, digits: int) -> str:
    """At most `digits` decimals, fewer for large values (353.8 ms, 1,881 samples/s, 5.99 ms)."""
    if _nan(v):
        return ""
    v = float(v)
    shown = digits if abs(v) < 10 else min(digits, 1) if abs(v) < 100 else 0
    return f"{v:,.{shown}f}"


def model_markdown(model: str, revision: str, hub_url: str = HUB) -> str:
    """A markdown link to the model's Hub page at its revision, or the plain name of a `local/` model."""
    from affectlab.leaderboard import model_url

    url = model_url(model, revision, hub_url)
    return f"[{model}]({url})" if url else model


def base_markdown(base: str | None, hub_url: str = HUB) -> str:
    """The base model's name (without its org, to keep the column narrow) linked to its Hub page."""
    from affectlab.leaderboard import hub_model_id

    if not base:
        return ""
    short = str(base).rstrip("/").rsplit("/", 1)[-1]
    return f"[{short}]({hub_url.rstrip('/')}/{base})" if hub_model_id(base) else short


def significance(row) -> str:
    """`—` for the leader, `✱ p=…` when its margin is significant, `n.s. (p=…)`, or why there is no test."""
    if row.get("value_rank", row["rank"]) == 1:
        return "—"
    p = row["p_vs_leader"]
    if _nan(p):
        return "no paired test"
    shown = "p<0.001" if p < 0.001 else f"p={p:.3f}"
    return f"✱ {shown}" if row["significant"] else f"n.s. ({shown})"


METHODS = {"full": "full", "lora": "LoRA", "qlora": "QLoRA", "dora": "DoRA"}
PERCENT_TABS = {"evidence-spans"}   # SQuAD F1 / EM in percent
# Metrics the records store beside the primary one, shown (without a CI) where a table's rows have them:
# tab -> [(metric, column)]. Criterion matching has none: its validation record stores means over CV folds.
ALSO_REPORTED = {
    "emotions": [("micro_f1", "Micro F1")],
    "sentiment": [("accuracy", "Accuracy"), ("macro_f1", "Macro F1")],
    "evidence-spans": [("exact", "Exact match"), ("sentence_f1", "Evidence-sentence F1")],
    "persona-regression": [("macro_spearman", "Spearman ρ"), ("macro_mae", "MAE"), ("macro_r2", "R²")],
    "llm-sft": [("macro_mae", "MAE (usable answers)"), ("macro_r2", "R² (usable answers)")],
}
SPEED_SHOWN = [("latency_p50_ms", "p50 ms", 2), ("throughput", "samples/s", 0), ("ttft_p50_ms", "TTFT ms", 2)]


def other_heading(n: int) -> str:
    return (f"**Evaluated on other rows** ({n}): not comparable with the ranking above; each set of rows is "
            "ranked on its own.")


def display_frame(df, hub_url: str = HUB, other: bool = False, columns: list[str] | None = None):
    """The shown columns of a table's rows (one group, or the other groups when `other`); `columns`: those of
    an empty result (a filter that keeps no row)."""
    import pandas as pd

    metric = df["metric"].iloc[0] if len(df) else ""
    label = metric_label(metric) if metric else "value"
    digits = int(df["digits"].iloc[0]) if len(df) and "digits" in df else metric_digits(metric, df["value"]) if metric else 4
    tab = df["tab"].iloc[0] if len(df) else ""
    also = [(m, name) for m, name in ALSO_REPORTED.get(tab, []) if m != metric and "stored" in df
            and any(isinstance(s.get(m), (int, float)) for s in df["stored"])]
    base_params = "base_params" in df and df["base_params"].notna().any()
    rows = []
    for r in df.to_dict("records"):
        row = {}
        if other:
            row["Rows"] = r["rows"]
        row["Rank"] = f"={int(r['rank'])}" if r.get("tied") else str(int(r["rank"]))
        row["Model"] = model_markdown(r["model"], r["revision"], hub_url)
        row[label] = fmt_metric(r["value"], digits) + (" †" if isinstance(r.get("note"), str) else "")
        row["95% CI"] = f"[{fmt_metric(r['ci_low'], digits)}, {fmt_metric(r['ci_high'], digits)}]"
        if not other:
            leader = r.get("value_rank", r["rank"]) == 1
            row["Δ to #1"] = "—" if leader else f"−{fmt_metric(r['margin_to_leader'], digits)}"
            row["vs #1"] = significance(r)
        for m, name in also:
            v = r["stored"].get(m)
            row[name] = fmt_metric(v, metric_digits(m, [v], tab)) if isinstance(v, (int, float)) else ""
        row["Base model"] = base_markdown(r["base_model"], hub_url)
        if df["params"].notna().any() or base_params:
            row["Params"] = (fmt_params(r["params"]) if not _nan(r["params"]) else
                             f"≈{fmt_params(r['base_params'])}" if not _nan(r.get("base_params")) else "")
        row["Method"] = METHODS.get(r["method"] or "", r["method"] or "")
        if any(not _nan(v) and v > 1 for v in df["seeds"]):  # else the protocol line says "1 per model"
            row["Seeds"] = "" if _nan(r["seeds"]) else str(r["seeds"])
            row["Mean ± sd over seeds"] = "" if _nan(r.get("seed_mean")) else (  # sample sd over the seeds
                f"{fmt_metric(r['seed_mean'], digits)} ± {fmt_metric(r['seed_sd'], digits)}")
        for key, name, speed_digits in SPEED_SHOWN:
            if key in df and df[key].notna().any():
                row[name] = fmt_speed(r[key], speed_digits)
        row["Hardware"] = r["hardware"]
        row["Date"] = str(r["date"])[:10]
        if (df["revision"] != "").any():
            row["Revision"] = f"`{r['revision'][:7]}`" if r["revision"] else ""
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=columns or ["Rank", "Model", label, "95% CI"])
    return pd.DataFrame(rows)


def datatypes(frame) -> list[str]:
    return ["markdown" if c in ("Model", "Base model", "Revision") else "str" for c in frame.columns]


def _visible(text) -> str:
    """A cell's text as shown (markdown links and code marks removed)."""
    import re

    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", str(text)).replace("`", "")


def widths(frame) -> list[str]:
    """Column widths as shares of the table's width, from what the cells show (about 7.6 px a character, at least
    the header's longest word): the columns always fit the page (a table wider than the page wraps its cells
    instead of hiding its last columns)."""
    px = []
    for c in frame.columns:
        longest = max([len(_visible(v)) for v in frame[c]] + [0])
        name = str(c)
        header = len(name) if len(name) <= 9 else max(len(w) for w in name.split())  # bold: wider letters
        px.append(min(max(7.6 * max(longest, 4), 8.6 * header) + 26, 260))
    total = sum(px) or 1.0
    return [f"{100 * w / total:.2f}%" for w in px]


def filter_rows(df, search: str = "", methods: list[str] | None = None):
    """Rows whose model (or base model) contains `search` and whose method is among `methods` (None: all)."""
    out = df
    if search:
        text = out["model"].fillna("") + " " + out["base_model"].fillna("")
        out = out[text.str.contains(search.strip(), case=False, regex=False)]
    if methods is not None:
        out = out[out["method"].fillna("unknown").isin(methods)]
    return out


def split_groups(df):
    """(rows of group 1, rows of the other groups)."""
    return df[df["group"] == 1], df[df["group"] != 1]


TASK_LABELS = {"sentiment": "benchmark", "text-classification": "classifier runs"}


def table_label(key, multi_task: bool) -> str:
    """`dataset · split`, and the task (in words) when another table of the tab has the same dataset and split."""
    task, dataset, split = key
    return f"{dataset} · {split}" + (f" · {TASK_LABELS.get(task, task)}" if multi_task else "")


def shares_dataset_split(keys) -> bool:
    """Whether two tables keyed (task, dataset, split) have the same dataset and split (their tabs need the task)."""
    return len({(k[1], k[2]) for k in keys}) < len(keys)


def dataset_note(name: str, config: str | None = None) -> dict:
    """What `affectlab.tasks.base.dataset_info` says about a dataset (empty when it is not a registered one)."""
    try:
        from dataset_builders import REGISTRY

        if name not in REGISTRY:
            return {}
        from affectlab.tasks.base import dataset_info

        return dataset_info(name, config).to_dict()
    except Exception:  # noqa: BLE001 - the About tab must render without the builders' dependencies
        return {}


def protocol_markdown(df, board: Board) -> str:
    """The protocol line above a table: split, evaluated rows + fingerprint, thresholds, seeds, CI method."""
    main, _ = split_groups(df)
    r = main.iloc[0]
    fp = r["fingerprint"]
    rows = f"{int(r['n']):,}" + (f" (`{fp.split(':')[0]}:{fp.split(':')[1][:12]}…`)" if isinstance(fp, str) else
                                " (no fingerprint)")
    policies = sorted(set(main["threshold_policy"]))
    seeds = sorted({int(s) for s in main["seeds"] if not _nan(s)})
    seeds_text = ("1 per model" if seeds == [1] else f"{'–'.join(map(str, (seeds[0], seeds[-1])))} per model"
                  if seeds else "not recorded")
    config = r["dataset_config"]
    parts = [f"**Split** `{r['split']}`" + (f" (config `{config}`)" if config else ""),
             f"**evaluated rows** {rows}", f"**predictions** {'; '.join(policies)}", f"**seeds** {seeds_text}",
             f"**95% CI** percentile bootstrap over the rows, {board.n_boot:,} resamples"]
    text = " · ".join(parts)
    note = dataset_note(r["dataset"], config)
    split_note = (note.get("split_notes") or {}).get(r["split"])
    size = split_size(split_note)
    if size and int(r["n"]) < size:
        text = text.replace(f"**evaluated rows** {rows}", f"**evaluated rows** {rows}, a subset of the split's {size:,}")
    if split_note:
        text += f"  \n_Local `{r['split']}` split:_ {split_note}."
    if note.get("absent_splits"):
        text += f"  \n_Official splits not available here:_ {'; '.join(note['absent_splits'])}."
    return text


def split_size(note: str | None) -> int | None:
    """The size a split note gives (`the official dev split (5,426 comments)`, `872 full sentences ...`): its
    first number of at least 10 followed by a word, or None."""
    import re

    m = re.search(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d{2,})\s+[a-z]", note or "")
    return int(m.group(1).replace(",", "")) if m else None


def notes_markdown(df) -> str:
    """† notes of a table's rows (a stored metric that differs from the one recomputed from the predictions)."""
    rows = df[df["note"].notna()] if "note" in df else df.iloc[:0]
    return "  \n".join(f"† `{r['model']}` ({r['split']}): {r['note']}." for r in rows.to_dict("records"))


LEGEND = ("Ranked by the primary metric; **✱** the leader's margin over that row is significant (paired bootstrap "
          "over the same rows, one-sided p < 0.05); n.s. not significant. **=1** (benchmark tables, where speed "
          "was measured): the models' 95% CIs overlap, so they share the rank and are listed faster first; "
          "Δ to #1 and vs #1 are against the best value. Columns between *vs #1* and *Base model* are other "
          "metrics the records store, without a CI. **≈** Params: the base model's parameter count "
          "(`recipes/models.yaml`), the record does not store its own. Rows evaluated on other rows than the "
          "ranked ones are listed below, ranked among themselves only. Model names link to the evaluated "
          "revision on the Hub; `local/…` models were never pushed.")


# ---------------------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------------------
def _short(model: str) -> str:
    return model.split("/", 1)[1] if "/" in model else model


def quality_plot(df, x_axis: str = "p50 latency (ms, batch 1)"):
    """(matplotlib figure, note): the table's ranked rows, quality with 95% CI error bars against `x_axis`
    and their Pareto front; a CI forest plot when nothing was measured on that axis."""
    import matplotlib.pyplot as plt

    from affectlab.leaderboard import pareto_indices
    from affectlab.registry import higher_is_better

    main, other = split_groups(df)
    metric = main["metric"].iloc[0]
    task, dataset, split = main.iloc[0][["task", "dataset", "split"]]
    higher = higher_is_better(metric)
    key, higher_x = X_AXES[x_axis]
    q, lo, hi = main["value"].to_numpy(float), main["ci_low"].to_numpy(float), main["ci_high"].to_numpy(float)
    xs = [None if _nan(v) else float(v) for v in main[key]]
    models = list(main["model"])
    fig, ax = plt.subplots(figsize=(9.5, 5.2), dpi=110)
    notes = []
    if any(x is not None for x in xs):
        have = [i for i, x in enumerate(xs) if x is not None]
        front = pareto_indices(list(q), xs, higher_quality=higher, lower_cost=not higher_x)
        for i in have:
            on = i in front
            ax.errorbar(xs[i], q[i], yerr=[[q[i] - lo[i]], [hi[i] - q[i]]], fmt="o", ms=7, capsize=4,
                        color="#d62728" if on else "#1f77b4", ecolor="#999999", zorder=3)
            ax.annotate(_short(models[i]), (xs[i], q[i]), xytext=(6, 5), textcoords="offset points", fontsize=9)
        fx = [xs[i] for i in front]
        fy = [q[i] for i in front]
        ax.step(fx, fy, where="post", color="#d62728", lw=1.5, alpha=0.8,
                label="Pareto front", zorder=2)
        from matplotlib.ticker import FuncFormatter

        plain = FuncFormatter(lambda v, _: fmt_params(v) if key == "params" else f"{v:,.0f}" if v >= 10 else f"{v:g}")
        shown = [xs[i] for i in have]
        log = min(shown) > 0 and max(shown) / min(shown) >= 10  # a log axis only over a decade or more
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: plain(v, _) if str(f"{v:.1e}")[0] in "25" else ""))
        else:
            pad = (max(shown) - min(shown)) * 0.12 or max(shown) * 0.1 or 1.0
            ax.set_xlim(max(0.0, min(shown) - pad), max(shown) + pad * 1.6)  # room for the names on the right
        ax.xaxis.set_major_formatter(plain)
        ax.set_xlabel(x_axis + (" (log scale)" if log else "") + ("  → better" if higher_x else "  ← better"))
        ax.legend(loc="best", fontsize=9)
        notes.append(f"**Pareto front** ({x_axis} vs {metric}): " + ", ".join(f"`{models[i]}`" for i in front) + ".")
        missing = [models[i] for i, x in enumerate(xs) if x is None]
        if missing:
            notes.append(f"Not measured on this axis: {', '.join(f'`{m}`' for m in missing)}.")
        title = f"{dataset} ({split}): {metric_label(metric)} vs {x_axis}"
    else:
        order = sorted(range(len(q)), key=lambda i: q[i], reverse=higher)  # best first, drawn at the top
        ys = list(range(len(order)))[::-1]
        fig.set_size_inches(9.5, max(2.4, 0.55 * len(order) + 1.3))
        ax.errorbar([q[i] for i in order], ys, xerr=[[q[i] - lo[i] for i in order], [hi[i] - q[i] for i in order]],
                    fmt="o", ms=7, capsize=4, color="#1f77b4", ecolor="#999999")
        ax.set_yticks(ys, [_short(models[i]) for i in order])
        ax.set_ylim(-0.6, len(order) - 0.4)
        ax.set_xlabel(f"{metric_label(metric)} (95% bootstrap CI)")
        ax.grid(axis="x", alpha=0.3)
        notes.append(f"No {x_axis} was measured for these results: the plot shows the 95% CIs of the ranked rows.")
        title = f"{dataset} ({split}): {metric_label(metric)}, 95% CIs"
    if len(other):
        notes.append(f"{len(other)} result(s) on other rows are not plotted (not comparable).")
    ax.set_title(title, fontsize=11)
    if any(x is not None for x in xs):
        ax.set_ylabel(f"{metric_label(metric)} (95% CI)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig, "  \n".join(notes)


def label_plot(record: dict | None, n_boot: int = 1000):
    """(figure or None, note): per-label scores with 95% CIs of one record."""
    import matplotlib.pyplot as plt

    from affectlab.leaderboard import per_label_scores

    if record is None:
        return None, "Pick a model."
    scores = per_label_scores(record, n_boot=n_boot)
    if scores is None:
        return None, (f"`{record['model']['repo_id']}` has no per-label predictions to break down (per-example "
                      "scores only).")
    kind = "F1" if scores["metric"].iloc[0] == "f1" else "Pearson r"
    scores = scores.iloc[::-1]
    fig, ax = plt.subplots(figsize=(9.5, max(2.6, 0.32 * len(scores) + 1.2)), dpi=110)
    ys = range(len(scores))
    v = scores["value"].to_numpy(float)
    ax.barh(list(ys), v, color="#7b9fd4", height=0.65)
    ax.errorbar(v, list(ys), xerr=[v - scores["ci_low"].to_numpy(float), scores["ci_high"].to_numpy(float) - v],
                fmt="none", ecolor="#333333", capsize=3, lw=1)
    ax.set_yticks(list(ys), [f"{lab} (n={s})" if kind == "F1" else lab
                             for lab, s in zip(scores["label"], scores["support"])], fontsize=9)
    hi = scores["ci_high"].to_numpy(float)
    for y, value, top in zip(ys, v, hi):  # the value beside its CI, so a zero bar still reads
        ax.annotate(f"{value:.2f}", (max(value, top), y), xytext=(5, 0), textcoords="offset points", va="center",
                    fontsize=8, color="#333333")
    ax.set_xlabel(f"{kind} per label (95% bootstrap CI)")
    ax.set_xlim(min(0.0, float(scores["ci_low"].min())), 1.06)
    d = record["dataset"]
    ax.set_title(f"{record['model']['repo_id']} on {d['name']} ({d['split']}): per-label {kind}", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig, f"{len(scores)} labels; n = positive rows of each label." if kind == "F1" else f"{len(scores)} dimensions."


# ---------------------------------------------------------------------------------------------------------
# about and submissions
# ---------------------------------------------------------------------------------------------------------
def about_markdown(board: Board) -> str:
    from affectlab.leaderboard import FAMILIES

    out = ["## What is ranked",
           "Every row is one result record (`affectlab.results`, schema `affectlab.result/1`): one model revision "
           "evaluated on one split, with its provenance (model repo and commit, base model, method, seed, config "
           "hash, library versions, hardware, date) and the **per-example predictions or scores**, never the text. "
           "The leaderboard recomputes the primary metric from those predictions and ranks, per task, dataset and "
           "split, the latest result of each model revision by that recomputed value (a record whose stored value "
           "differs, e.g. a mean over cross-validation folds, is marked † with both values).",
           "## Statistics",
           f"* **95% CI**: percentile bootstrap over the evaluated rows (`scipy.stats.bootstrap`, {board.n_boot:,} "
           "resamples, seed 0), recomputing the metric on every resample (macro F1 from the resampled confusion "
           "counts, Pearson r from the resampled pairs, means of per-example scores).",
           "* **Significance of the gap to the leader**: a paired bootstrap on the same resamples of the same rows; "
           "p is the share of resamples where the leader is not better (one-sided); **✱** when p < 0.05. "
           "Overlapping CIs do not mean “no difference”: the paired test is the stronger one.",
           "* **Same rows only**: results are ranked together only when they were evaluated on the same rows, in "
           "the same order — the `sha256` fingerprint of the evaluated rows (`affectlab.results.fingerprint_rows`). "
           "A 32-row smoke evaluation is therefore never ranked with a 5,426-row one: it is listed apart.",
           "* **Benchmark headline**: the sentiment benchmark ranks by quality; models whose 95% CIs overlap are "
           "tied (shown **=1**) and ordered by speed; the gap to the best value and its paired test are shown "
           "beside them. Its weighted quality/speed composite is an option of the benchmark's own report "
           "(`affectlab benchmark`, `rank_by: composite`), never the headline.",
           "## Task families"]
    for fam in FAMILIES:
        out += [f"### {fam.title}", fam.protocol]
    out += ["## Datasets and splits",
            "What the local splits are, and which official splits are held out or not available here "
            "(`dataset_builders/*`: `SPLIT_NOTES`, `ABSENT_SPLITS`)."]
    table = ["| Dataset | Config | Hub id | License | Local splits | Official splits not available here |",
             "|---|---|---|---|---|---|"]
    try:
        from dataset_builders import REGISTRY

        names = sorted(set(REGISTRY) | {r["dataset"]["name"] for r in board.records})
    except Exception:  # noqa: BLE001
        names = sorted({r["dataset"]["name"] for r in board.records})
    for name in names:
        note = dataset_note(name)
        splits = "<br>".join(f"`{k}`: {v}" for k, v in (note.get("split_notes") or {}).items()) or "as published"
        absent = "<br>".join(note.get("absent_splits") or []) or "–"
        table.append(f"| {name} | {note.get('config') or '–'} | {note.get('hub_id') or '–'} | "
                     f"{note.get('license') or '–'} | {splits} | {absent} |")
    out.append("\n".join(table))
    if board.skipped:
        out += ["## Records not shown", "These records could not be scored from their per-example values:",
                "\n".join(f"* `{path}`: {_escape(reason)}" for path, reason in board.skipped)]
    out += ["## Citing a row",
            "Cite the model id **and revision**, the dataset, config and split with the **row fingerprint**, "
            "the metric with its 95% CI, and the date. Results on the local validation split of a dataset whose "
            "official test split is held out are validation numbers, not test numbers."]
    return "\n\n".join(out)


def submit_intro(board: Board) -> str:
    target = (f"a pull request on the results dataset **`{board.submit_repo}`**, adding it as "
              "`<org>/<model>/results_<UTC timestamp>.json`; it appears on the board once a maintainer merges it"
              if board.submit_repo else "nothing: this instance has no results dataset to open pull requests on "
              "(start it with `--results hf://datasets/<org>/<name>` or `--submit-repo`), so records are only validated")
    return ("Submit one **result record** (`affectlab.results.result_record` / `save_result`: schema "
            "`affectlab.result/1`). It is checked for: the schema; provenance (a Hub model at a 40-hex commit sha, "
            "seed, config hash, library versions, hardware, date); per-example predictions (`y_true`/`y_pred`) or "
            "per-example scores for every evaluated row, from which the stored primary metric must be "
            "recomputed; and the row fingerprint, which must be that of the dataset's split on this board when "
            f"the board has results on it. A valid record opens {target}.")


def read_submission(file, text: str | None) -> bytes | None:
    if file:
        path = file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")
        return Path(path).read_bytes()
    if text and text.strip():
        return text.encode()
    return None


def _escape(text: str) -> str:
    """Plain text inside markdown: `<org>/<name>` must not read as an HTML tag."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def submit(board: Board, file, text: str | None, token: str | None = None, endpoint: str | None = None) -> str:
    """The Submit button: a markdown message (refused: what is wrong; accepted: the pull request)."""
    from affectlab.hub import redact
    from affectlab.leaderboard import parse_submission, submit_record, validate_record

    data = read_submission(file, text)
    if data is None:
        return "✗ **Nothing to submit**: upload a result record (.json) or paste it."
    record, errors = parse_submission(data)
    if not errors:
        errors = validate_record(record, board.known, board.records)
    if errors:
        return "✗ **The record was refused**:\n\n" + "\n".join(f"* {_escape(e)}" for e in errors)
    name = f"`{record['model']['repo_id']}` on {record['dataset']['name']} ({record['dataset']['split']})"
    if not board.submit_repo:
        return f"✓ **The record is valid** ({name}), but this instance has no results dataset to open a pull request on."
    token = token or os.environ.get("HF_TOKEN")
    try:
        pr = submit_record(record, board.submit_repo, token=token, endpoint=endpoint)
    except Exception as exc:  # noqa: BLE001 - shown to the user, token redacted
        return f"✗ **Could not open the pull request** on `{board.submit_repo}`: {_escape(redact(str(exc), token))}"
    return (f"✓ **Pull request #{pr['pr_num']} opened** on `{board.submit_repo}` for {name}: "
            f"[{pr['pr_url']}]({pr['pr_url']}) adds `{pr['path']}` (revision `{pr['pr_revision']}`). It appears "
            "on the board once a maintainer merges it.")


def submissions_frame(board: Board, token: str | None = None, endpoint: str | None = None):
    import pandas as pd

    from affectlab.leaderboard import list_submissions

    columns = ["#", "Title", "Author", "Status", "Opened (UTC)"]
    if not board.submit_repo:
        return pd.DataFrame(columns=columns)
    try:
        rows = list_submissions(board.submit_repo, token=token or os.environ.get("HF_TOKEN"), endpoint=endpoint)
    except Exception:  # noqa: BLE001 - the queue is informative only
        return pd.DataFrame(columns=columns)
    return pd.DataFrame([[r["num"], r["title"], r["author"], r["status"], r["created"]] for r in rows], columns=columns)


# ---------------------------------------------------------------------------------------------------------
# the app
# ---------------------------------------------------------------------------------------------------------
def header_markdown(board: Board) -> str:
    models = {r["model"]["repo_id"] for r in board.records}
    datasets = {r["dataset"]["name"] for r in board.records}
    last = max((str(r["date"])[:10] for r in board.records), default="–")
    return ("# affectlab leaderboard\n"
            f"Affective and mental-health NLP: **{len(board.records)}** results of **{len(models)}** models on "
            f"**{len(datasets)}** datasets · latest result {last} · every score with its 95% bootstrap CI, "
            "recomputed from the stored per-example predictions.")


def build_app(board: Board):
    import gradio as gr

    from affectlab.leaderboard import FAMILIES, FAMILY_BY_KEY, OTHER

    table_keys = [k for fam in [*FAMILIES, OTHER] for k in board.by_tab.get(fam.key, [])]
    choice_labels = {}
    for k in table_keys:
        fam = FAMILY_BY_KEY.get(board.tables[k]["tab"].iloc[0], OTHER)
        choice_labels[f"{fam.title} — {k[1]} · {k[2]} ({k[0]})"] = k

    with gr.Blocks(title="affectlab leaderboard", fill_width=True) as app:
        gr.Markdown(header_markdown(board), elem_id="lb-header")
        with gr.Tabs(overflow_behavior="wrap", elem_id="lb-tabs"):
            for fam in [*FAMILIES, OTHER]:
                keys = board.by_tab.get(fam.key, [])
                if fam is OTHER and not keys:
                    continue
                with gr.Tab(fam.title, id=fam.key, elem_id=f"tab-{fam.key}"):
                    gr.Markdown(f"**{fam.summary}**")
                    if not keys:
                        gr.Markdown("_No results yet: submit one in the **Submit** tab._", elem_id=f"empty-{fam.key}")
                        continue
                    frames = [board.tables[k] for k in keys]
                    methods = sorted({m or "unknown" for df in frames for m in df["method"].fillna("unknown")})
                    with gr.Row():
                        search = gr.Textbox(label="Model contains", placeholder="e.g. roberta", scale=3,
                                            elem_id=f"search-{fam.key}")
                        method = gr.CheckboxGroup([(METHODS.get(m, m), m) for m in methods], value=methods,
                                                  label="Method", scale=2,
                                                  elem_id=f"method-{fam.key}")
                    multi_task = shares_dataset_split(keys)
                    outputs = []
                    with gr.Tabs():
                        for i, (key, df) in enumerate(zip(keys, frames)):
                            with gr.Tab(table_label(key, multi_task), id=f"{fam.key}-{i}"):
                                gr.Markdown(protocol_markdown(df, board), elem_classes=["protocol"])
                                main, other = split_groups(df)
                                shown = display_frame(main, board.hub_url)
                                outputs.append(gr.Dataframe(shown, datatype=datatypes(shown), interactive=False,
                                                            column_widths=widths(shown),
                                                            wrap=True, max_height=720, elem_classes=["lb-table"],
                                                            elem_id=f"table-{fam.key}-{i}", show_label=False,
                                                            pinned_columns=2,
                                                            buttons=["copy", "fullscreen"]))
                                notes = notes_markdown(df)
                                if notes:
                                    gr.Markdown(notes, elem_classes=["legend"])
                                outputs.append(gr.Markdown(other_heading(len(other)), visible=bool(len(other)),
                                                           elem_id=f"other-heading-{fam.key}-{i}"))
                                rest = display_frame(other, board.hub_url, other=True)
                                outputs.append(gr.Dataframe(rest, datatype=datatypes(rest), interactive=False,
                                                            column_widths=widths(rest),
                                                            wrap=True, elem_classes=["lb-table"],
                                                            elem_id=f"other-{fam.key}-{i}", show_label=False,
                                                            visible=bool(len(other))))
                    gr.Markdown(LEGEND, elem_classes=["legend"])

                    def update(text, picked, frames=frames):
                        out = []
                        for df in frames:
                            full_main, full_other = split_groups(df)
                            main, other = split_groups(filter_rows(df, text, picked))
                            out += [display_frame(main, board.hub_url,
                                                  columns=list(display_frame(full_main, board.hub_url).columns)),
                                    gr.Markdown(other_heading(len(other)), visible=bool(len(other))),
                                    gr.Dataframe(display_frame(other, board.hub_url, other=True), visible=bool(len(other)))]
                        return out

                    search.change(update, [search, method], outputs)
                    method.change(update, [search, method], outputs)

            with gr.Tab("Plots", id="plots", elem_id="tab-plots"):
                if not table_keys:
                    gr.Markdown("_No results yet._")
                else:
                    with_speed = [c for c, k in choice_labels.items() if board.tables[k]["latency_p50_ms"].notna().any()]
                    first = with_speed[0] if with_speed else next(iter(choice_labels))
                    with gr.Row():
                        which = gr.Dropdown(list(choice_labels), value=first, label="Leaderboard", scale=3,
                                            elem_id="plot-table")
                        axis = gr.Radio(list(X_AXES), value=next(iter(X_AXES)), label="x axis", scale=2,
                                        elem_id="plot-axis")
                    fig, note = quality_plot(board.tables[choice_labels[first]], next(iter(X_AXES)))
                    plot = gr.Plot(fig, elem_id="quality-plot", show_label=False)
                    plot_note = gr.Markdown(note, elem_id="plot-note")
                    gr.Markdown("### Per-label breakdown")
                    models0 = list(split_groups(board.tables[choice_labels[first]])[0]["model"])
                    model = gr.Dropdown(models0, value=models0[0], label="Model", elem_id="label-model")
                    lfig, lnote = label_plot(_record_of(board, choice_labels[first], models0[0]), board.n_boot)
                    lplot = gr.Plot(lfig, elem_id="label-plot", show_label=False)
                    lplot_note = gr.Markdown(lnote, elem_id="label-note")

                    def redraw(choice, x):
                        return quality_plot(board.tables[choice_labels[choice]], x)

                    def pick_table(choice, x):
                        df = board.tables[choice_labels[choice]]
                        names = list(split_groups(df)[0]["model"])
                        if df[X_AXES[x][0]].isna().all():  # an axis this table has values on, if any
                            x = next((a for a, (col, _) in X_AXES.items() if df[col].notna().any()), x)
                        return gr.Dropdown(choices=names, value=names[0]), x

                    def relabel(choice, name):
                        return label_plot(_record_of(board, choice_labels[choice], name), board.n_boot)

                    which.change(pick_table, [which, axis], [model, axis]).then(redraw, [which, axis], [plot, plot_note])
                    axis.input(redraw, [which, axis], [plot, plot_note])
                    model.change(relabel, [which, model], [lplot, lplot_note])

            with gr.Tab("About", id="about", elem_id="tab-about"):
                gr.Markdown(about_markdown(board), elem_id="about-text")

            with gr.Tab("Submit", id="submit", elem_id="tab-submit"):
                gr.Markdown(submit_intro(board))
                with gr.Row():
                    upload = gr.File(label="Result record (.json)", file_types=[".json"], type="filepath",
                                     elem_id="submit-file")
                    pasted = gr.Textbox(label="… or paste the JSON", lines=8, max_lines=16, elem_id="submit-text")
                button = gr.Button("Validate and open a pull request" if board.submit_repo else "Validate the record",
                                   variant="primary", elem_id="submit-button")
                status = gr.Markdown(elem_id="submit-status")
                gr.Markdown(f"### Submissions (pull requests on `{board.submit_repo}`)", visible=bool(board.submit_repo))
                queue = gr.Dataframe(submissions_frame(board), interactive=False, elem_id="submissions-table",
                                     show_label=False, elem_classes=["lb-table"], wrap=True,
                                     visible=bool(board.submit_repo))
                button.click(lambda f, t: submit(board, f, t), [upload, pasted], status).then(
                    lambda: submissions_frame(board), None, queue)
    return app


def _record_of(board: Board, key, model: str) -> dict | None:
    df = board.tables[key]
    rows = df[(df["model"] == model) & (df["group"] == 1)]
    return board.by_path.get(rows["path"].iloc[0]) if len(rows) else None


def theme():
    import gradio as gr

    # system fonts only: the default theme would make browsers fetch Google Fonts
    return gr.themes.Soft(primary_hue="indigo", font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", action="extend", nargs="+", default=None,
                        help="results folders or hf://datasets/<org>/<name> (several, or repeated; default "
                             "$AFFECTLAB_RESULTS or results/)")
    parser.add_argument("--submit-repo", default=None,
                        help="results dataset submissions open pull requests on (default: $AFFECTLAB_SUBMIT_REPO, "
                             "else the hf:// results repo)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--hub-url", default=os.environ.get("HF_ENDPOINT", HUB))
    args = parser.parse_args(argv)
    from affectlab.results import default_results_location

    sources = args.results or [default_results_location()]
    board = load_board(sources, args.n_boot, args.hub_url, args.submit_repo or default_submit_repo(sources))
    app = build_app(board)
    app.launch(server_name=args.host, server_port=args.port, share=False, show_error=True, theme=theme(), css=CSS)


if __name__ == "__main__":
    main()
