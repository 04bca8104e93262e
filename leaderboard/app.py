"""Gradio leaderboard app (deployable as a Hugging Face Space): the per-task tables of `affectlab.leaderboard`
from a results folder or a results dataset repo, with task / dataset filters, a model search, sorting and
links to the model pages (`local/<name>` models, never pushed, are shown without a link).

    python leaderboard/app.py --results results/ [--port 7860] [--hub-url https://huggingface.co]
    make leaderboard        # serves outputs/smoke/results on http://127.0.0.1:7860

On a Space, set `AFFECTLAB_RESULTS=hf://datasets/<org>/<results>` (and `HF_TOKEN` as a secret if the
results repo is private). The app only binds to 127.0.0.1 unless `--host` says otherwise (Spaces: 0.0.0.0).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ALL = "all"
SHOWN = ["task", "dataset", "split", "rank", "model", "metric", "value", "ci", "margin_to_leader", "p_vs_leader",
         "significant", "n", "revision", "group", "rows"]


def model_markdown(model: str, revision: str, hub_url: str) -> str:
    """A markdown link to the model's Hub page, or the plain name of a `local/` model (never pushed)."""
    from affectlab.leaderboard import model_url

    url = model_url(model, revision, hub_url)
    return f"[{model}]({url})" if url else model


def load_frame(results: str | None, n_boot: int = 1000, hub_url: str = "https://huggingface.co"):
    """All leaderboard rows as one DataFrame, with a markdown model link and a formatted CI column."""
    import pandas as pd

    from affectlab.leaderboard import build_tables
    from affectlab.results import default_results_location, load_results

    tables = build_tables(load_results(results or default_results_location()), n_boot=n_boot)
    if not tables:
        return pd.DataFrame(columns=SHOWN)
    df = pd.concat(list(tables.values()), ignore_index=True)
    df["model"] = [model_markdown(m, r, hub_url) for m, r in zip(df["model"], df["revision"])]
    df["ci"] = [f"[{lo:.4f}, {hi:.4f}]" for lo, hi in zip(df["ci_low"], df["ci_high"])]
    df["value"] = df["value"].round(4)
    df["margin_to_leader"] = df["margin_to_leader"].round(4)
    df["p_vs_leader"] = df["p_vs_leader"].map(lambda v: "" if v is None or v != v else f"{v:.3f}")
    df["significant"] = df["significant"].map(lambda v: "" if v is None or v != v else ("yes" if v else "no"))
    return df[SHOWN]


def filter_frame(df, task: str = ALL, dataset: str = ALL, search: str = "", sort_by: str = "rank",
                 descending: bool = False):
    out = df
    if task and task != ALL:
        out = out[out["task"] == task]
    if dataset and dataset != ALL:
        out = out[out["dataset"] == dataset]
    if search:
        out = out[out["model"].str.contains(search, case=False, regex=False)]
    keys = ["task", "dataset", "split", "group", sort_by] if sort_by in ("rank",) else [sort_by]
    return out.sort_values(keys, ascending=not descending if sort_by != "rank" else True, kind="stable")


BENCH_COLUMNS = ["dataset", "rank", "model", "method", "accuracy", "accuracy 95% CI", "macro_f1", "p50 ms", "p99 ms",
                 "samples/s", "composite", "pareto"]


def load_benchmark_frame(folder: str | None):
    """Rows of every `summary_<dataset>.json` that `affectlab benchmark` wrote into `folder`."""
    import json
    from pathlib import Path

    import pandas as pd

    rows = []
    for path in sorted(Path(folder).glob("summary_*.json")) if folder else []:
        summary = json.loads(path.read_text(encoding="utf-8"))
        pareto = set(summary.get("pareto_front") or [])
        for position, r in enumerate(summary["ranking"], start=1):
            ci = r["ci"]["accuracy"]
            rows.append({"dataset": r["dataset"], "rank": r.get("rank", position), "model": r["model"], "method": r.get("method", ""),
                         "accuracy": round(r["accuracy"], 4), "accuracy 95% CI": f"[{ci['ci_low']:.4f}, {ci['ci_high']:.4f}]",
                         "macro_f1": round(r["ci"]["macro_f1"]["value"], 4), "p50 ms": round(r["latency_p50_ms"], 3),
                         "p99 ms": round(r["latency_p99_ms"], 3),
                         "samples/s": round(r["throughput"], 1),
                         "composite": round(r["composite"], 3), "pareto": "yes" if r["model"] in pareto else ""})
    return pd.DataFrame(rows, columns=BENCH_COLUMNS)


def build_app(df, bench_df=None):
    import gradio as gr

    datatypes = ["markdown" if c == "model" else "str" for c in SHOWN]
    with gr.Blocks(title="affectlab leaderboard") as app:
        gr.Markdown("# affectlab leaderboard\nPrimary metric per task, 95% bootstrap CI, and whether the leader's "
                    "margin over each row is significant (paired bootstrap, same evaluated rows). Results are "
                    "ranked together only when evaluated on the same rows: `group` 1 is the main ranking, other "
                    "groups (other `rows`) are ranked apart.")
        with gr.Row():
            task = gr.Dropdown([ALL, *sorted(df["task"].unique())], value=ALL, label="Task", elem_id="task-filter")
            dataset = gr.Dropdown([ALL, *sorted(df["dataset"].unique())], value=ALL, label="Dataset",
                                  elem_id="dataset-filter")
            search = gr.Textbox(label="Model contains", elem_id="model-search")
            sort_by = gr.Dropdown(["rank", "value", "n", "model"], value="rank", label="Sort by", elem_id="sort-by")
            descending = gr.Checkbox(False, label="Descending", elem_id="descending")
        table = gr.Dataframe(filter_frame(df), datatype=datatypes, interactive=False, wrap=True,
                             elem_id="leaderboard-table")
        inputs = [task, dataset, search, sort_by, descending]
        update = lambda *args: filter_frame(df, *args)  # noqa: E731
        for component in inputs:
            component.change(update, inputs, table)
        if bench_df is not None and len(bench_df):
            gr.Markdown("## Sentiment benchmark\nQuality with 95% bootstrap CIs, batch-1 latency, throughput, the "
                        "weighted composite rank and the quality-vs-latency Pareto front (`make bench-sentiment`).")
            gr.Dataframe(bench_df, interactive=False, wrap=True, elem_id="benchmark-table")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--benchmark", default=None, help="folder with summary_<dataset>.json of `affectlab benchmark`")
    parser.add_argument("--hub-url", default=os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    args = parser.parse_args(argv)
    import gradio as gr

    app = build_app(load_frame(args.results, args.n_boot, args.hub_url), load_benchmark_frame(args.benchmark))
    # system fonts only: the default theme would make browsers fetch Google Fonts
    app.launch(server_name=args.host, server_port=args.port, share=False, show_error=True,
               theme=gr.themes.Default(font=["sans-serif"], font_mono=["monospace"]))


if __name__ == "__main__":
    main()
