"""Model cards rendered from the templates in `model_cards/` with `huggingface_hub.ModelCard`.

The YAML header carries a `model-index` built from `EvalResult`s, so the Hub (and
`ModelCard.load(...).data.eval_results`) sees the evaluation numbers.
"""

from __future__ import annotations

from pathlib import Path

from affectlab.paths import REPO_ROOT

# Metric keys of our reports -> (metric type on the Hub, display name)
HUB_METRICS = {
    "macro_f1": ("f1", "Macro F1"),
    "micro_f1": ("f1", "Micro F1"),
    "weighted_f1": ("f1", "Weighted F1"),
    "accuracy": ("accuracy", "Accuracy"),
    "subset_accuracy": ("accuracy", "Subset accuracy"),
    "hamming_loss": ("hamming_loss", "Hamming loss"),
}


def eval_results_for(results: dict[str, dict[str, float]], task_type: str, task_name: str, dataset_type: str,
                     dataset_name: str, dataset_config: str | None = None):
    """`EvalResult`s from `{split: {metric: value}}` for the metrics listed in HUB_METRICS."""
    from huggingface_hub import EvalResult

    out = []
    for split, metrics in results.items():
        for key, (metric_type, display) in HUB_METRICS.items():
            if key in metrics:
                out.append(EvalResult(
                    task_type=task_type, task_name=task_name, dataset_type=dataset_type, dataset_name=dataset_name,
                    dataset_config=dataset_config, dataset_split=split, metric_type=metric_type,
                    metric_name=f"{display} ({split})", metric_value=round(float(metrics[key]), 4),
                    metric_config=key,
                ))
    return out


def render_model_card(template: str, *, model_name: str, base_model: str | None, datasets: list[str],
                      eval_results, pipeline_tag: str, tags: list[str] | None = None, license: str = "apache-2.0",
                      **template_kwargs):
    from huggingface_hub import ModelCard, ModelCardData

    template_path = Path(template)
    if not template_path.is_absolute():
        template_path = REPO_ROOT / template_path
    card_data = ModelCardData(
        model_name=model_name,
        base_model=base_model if base_model and "/" in base_model and not Path(base_model).exists() else None,
        datasets=datasets,
        eval_results=eval_results,
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        license=license,
        tags=["affectlab", *(tags or [])],
    )
    return ModelCard.from_template(card_data, template_path=str(template_path), model_name=model_name,
                                   base_model=base_model, **template_kwargs)
