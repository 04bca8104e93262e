"""Evidence spans as extractive QA: features with stride windows and offsets, and n-best post-processing.

The approach of transformers' `examples/pytorch/question-answering/run_qa.py`, written for evidence in
long Reddit posts (question = the criterion's description, context = the post):

* `to_squad` turns `redsm5` `evidence` examples into SQuAD columns (`id`, `question`, `context`,
  `answers` with every aligned evidence span; no evidence -> no-answer example).
* `prepare_train_features` / `prepare_eval_features` tokenize (question, context) with truncation of the
  context only, `doc_stride` tokens of overlap between consecutive windows
  (`return_overflowing_tokens`) and offset mappings. A training window is labelled with the first
  answer lying wholly inside it, else with the CLS position (index of `cls_token_id`, else 0) = "no
  answer in this window". Evaluation windows keep `example_id` and offsets (None outside the context).
* `postprocess_predictions` merges the windows of an example: n-best start/end pairs per window
  (`n_best_size`, `max_answer_length`), duplicates across overlapping windows merged, the null score is
  the minimum CLS score over windows; the example is "no answer" when
  `null_score - best_span_score > null_score_diff_threshold`. Several evidence spans per example are
  allowed: the top `max_spans` non-overlapping spans whose `null_score - score` is at most
  `span_score_diff_threshold` (default: the null threshold).

Work per example is bounded by (#windows x n_best_size^2); nothing is quadratic in the post length.
"""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

import numpy as np


# ---- data ------------------------------------------------------------------------------------------------
def to_squad(example: dict) -> dict:
    """A `redsm5` evidence example -> SQuAD columns (use with `Dataset.map`, unbatched)."""
    text = example["text"]
    spans = sorted(example["evidence"], key=lambda s: (s["start"], s["end"]))
    for span in spans:
        if not 0 <= span["start"] < span["end"] <= len(text):
            raise ValueError(f"example {example['id']!r}: evidence span [{span['start']}, {span['end']}) outside the post "
                             f"of length {len(text)}")
    return {"id": example["id"], "question": example["criterion"], "context": text,
            "answers": {"text": [text[s["start"]:s["end"]] for s in spans], "answer_start": [int(s["start"]) for s in spans]}}


def references(examples) -> list[dict]:
    """Metric references (`id`, `answers`, `context`) of SQuAD-style examples."""
    return [{"id": ex["id"], "answers": {"text": list(ex["answers"]["text"]), "answer_start": list(ex["answers"]["answer_start"])},
             "context": ex["context"]} for ex in examples]


# ---- features --------------------------------------------------------------------------------------------
def _tokenize(examples: dict, tokenizer, max_length: int, doc_stride: int, question_column: str, context_column: str):
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{type(tokenizer).__name__} is not a fast tokenizer: offset mappings need one")
    pad_on_right = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in examples[question_column]]
    contexts = examples[context_column]
    longest_q = max(len(tokenizer(q, add_special_tokens=False)["input_ids"]) for q in questions) if questions else 0
    room = max_length - longest_q - tokenizer.num_special_tokens_to_add(pair=True)
    if room <= doc_stride:
        raise ValueError(f"max_length {max_length} leaves {room} context tokens per window next to a {longest_q}-token "
                         f"question: doc_stride ({doc_stride}) must be smaller")
    enc = tokenizer(questions if pad_on_right else contexts, contexts if pad_on_right else questions,
                    truncation="only_second" if pad_on_right else "only_first", max_length=max_length,
                    stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    return enc, (1 if pad_on_right else 0)


def _cls_index(input_ids: Sequence[int], tokenizer) -> int:
    cls = tokenizer.cls_token_id
    return input_ids.index(cls) if cls is not None and cls in input_ids else 0


def prepare_train_features(examples: dict, tokenizer, max_length: int = 384, doc_stride: int = 128,
                           question_column: str = "question", context_column: str = "context",
                           answer_column: str = "answers") -> dict:
    """Batched `Dataset.map` function: windows labelled with `start_positions` / `end_positions`."""
    enc, context_index = _tokenize(examples, tokenizer, max_length, doc_stride, question_column, context_column)
    sample_map = enc.pop("overflow_to_sample_mapping")
    offsets_all = enc.pop("offset_mapping")
    starts, ends = [], []
    for i, offsets in enumerate(offsets_all):
        input_ids = enc["input_ids"][i]
        cls_index = _cls_index(input_ids, tokenizer)
        seq_ids = enc.sequence_ids(i)
        ctx = [k for k, sid in enumerate(seq_ids) if sid == context_index]
        first, last = ctx[0], ctx[-1]
        window_start, window_end = offsets[first][0], offsets[last][1]
        answers = examples[answer_column][sample_map[i]]
        start_pos = end_pos = cls_index
        for text, char_start in sorted(zip(answers["text"], answers["answer_start"]), key=lambda a: a[1]):
            char_end = char_start + len(text)
            if not text or char_start < window_start or char_end > window_end:
                continue
            tok_start = first
            while tok_start <= last and offsets[tok_start][1] <= char_start:
                tok_start += 1
            tok_end = last
            while tok_end >= first and offsets[tok_end][0] >= char_end:
                tok_end -= 1
            if first <= tok_start <= tok_end <= last:
                start_pos, end_pos = tok_start, tok_end
                break
        starts.append(start_pos)
        ends.append(end_pos)
    enc["start_positions"], enc["end_positions"] = starts, ends
    return dict(enc)


def prepare_eval_features(examples: dict, tokenizer, max_length: int = 384, doc_stride: int = 128,
                          question_column: str = "question", context_column: str = "context", id_column: str = "id") -> dict:
    """Batched `Dataset.map` function: windows with `example_id`, `cls_index` and context-only offsets."""
    enc, context_index = _tokenize(examples, tokenizer, max_length, doc_stride, question_column, context_column)
    sample_map = enc.pop("overflow_to_sample_mapping")
    enc["example_id"], enc["cls_index"] = [], []
    for i in range(len(enc["input_ids"])):
        seq_ids = enc.sequence_ids(i)
        enc["example_id"].append(examples[id_column][sample_map[i]])
        enc["cls_index"].append(_cls_index(enc["input_ids"][i], tokenizer))
        enc["offset_mapping"][i] = [tuple(o) if seq_ids[k] == context_index else None
                                    for k, o in enumerate(enc["offset_mapping"][i])]
    return dict(enc)


def expected_windows(num_context_tokens: int, room: int, doc_stride: int) -> int:
    """Windows a context of `num_context_tokens` yields with `room` context tokens per window."""
    if num_context_tokens <= room:
        return 1
    return 1 + -(-(num_context_tokens - room) // (room - doc_stride))


# ---- post-processing -------------------------------------------------------------------------------------
def _column(features, name):
    if isinstance(features, dict):
        return features[name]
    if hasattr(features, "column_names"):
        return features[name]
    return [f[name] for f in features]


def postprocess_predictions(examples, features, start_logits: np.ndarray, end_logits: np.ndarray, *,
                            n_best_size: int = 20, max_answer_length: int = 30, null_score_diff_threshold: float = 0.0,
                            max_spans: int = 1, span_score_diff_threshold: float | None = None,
                            context_column: str = "context", id_column: str = "id") -> list[dict]:
    """One prediction per example, in example order: `id`, `prediction_text` (best span or ""), `spans`
    ([[start, end], ...] character offsets, best first), `null_score`, `best_score` and `nbest`.

    `start_logits` / `end_logits`: (num_features, seq_len) in feature order (padding beyond a window's
    length is ignored, so Trainer's -100-padded concatenation works).
    """
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    example_ids = list(_column(features, "example_id"))
    if start_logits.shape[0] != len(example_ids) or end_logits.shape[0] != len(example_ids):
        raise ValueError(f"{start_logits.shape[0]} start / {end_logits.shape[0]} end logit rows for {len(example_ids)} features")
    offsets_all = _column(features, "offset_mapping")
    cls_all = _column(features, "cls_index") if _has_column(features, "cls_index") else [0] * len(example_ids)
    span_thr = null_score_diff_threshold if span_score_diff_threshold is None else span_score_diff_threshold
    by_example: dict[str, list[int]] = collections.defaultdict(list)
    for fi, eid in enumerate(example_ids):
        by_example[eid].append(fi)
    out = []
    ids, contexts = _column(examples, id_column), _column(examples, context_column)
    for eid, context in zip(ids, contexts):
        null_score, best_by_span = None, {}
        for fi in by_example.get(eid, []):
            offsets = offsets_all[fi]
            s_log, e_log = start_logits[fi, : len(offsets)], end_logits[fi, : len(offsets)]
            cls = int(cls_all[fi])
            feature_null = float(s_log[cls] + e_log[cls])
            null_score = feature_null if null_score is None else min(null_score, feature_null)
            top_s = np.argsort(s_log)[::-1][:n_best_size]
            top_e = np.argsort(e_log)[::-1][:n_best_size]
            for si in top_s:
                if offsets[si] is None:
                    continue
                for ei in top_e:
                    if offsets[ei] is None or ei < si or ei - si + 1 > max_answer_length:
                        continue
                    span = (int(offsets[si][0]), int(offsets[ei][1]))
                    score = float(s_log[si] + e_log[ei])
                    if span not in best_by_span or best_by_span[span] < score:
                        best_by_span[span] = score
        if null_score is None:
            raise ValueError(f"example {eid!r} has no features")
        nbest = sorted(({"start": s, "end": e, "score": sc, "text": context[s:e]} for (s, e), sc in best_by_span.items()),
                       key=lambda c: -c["score"])[:n_best_size]
        spans = []
        if nbest and null_score - nbest[0]["score"] <= null_score_diff_threshold:
            for cand in nbest:
                if len(spans) >= max_spans:
                    break
                if spans and null_score - cand["score"] > span_thr:
                    break
                if all(cand["end"] <= s or e <= cand["start"] for s, e in spans):
                    spans.append((cand["start"], cand["end"]))
        out.append({"id": eid, "prediction_text": context[spans[0][0]:spans[0][1]] if spans else "",
                    "spans": [list(s) for s in spans], "null_score": null_score,
                    "best_score": nbest[0]["score"] if nbest else None, "nbest": nbest})
    return out


def _has_column(features, name) -> bool:
    if isinstance(features, dict):
        return name in features
    if hasattr(features, "column_names"):
        return name in features.column_names
    return bool(features) and name in features[0]


def metric_inputs(predictions: Iterable[dict]) -> list[dict]:
    """Post-processed predictions -> `evidence_squad` prediction rows (id, prediction_text, spans)."""
    return [{"id": p["id"], "prediction_text": p["prediction_text"], "spans": p["spans"]} for p in predictions]


def tokens_per_window(tokenizer, question: str, max_length: int) -> int:
    """Context tokens a window holds next to `question`."""
    q = len(tokenizer(question.lstrip(), add_special_tokens=False)["input_ids"])
    return max_length - q - tokenizer.num_special_tokens_to_add(pair=True)


__all__ = ["to_squad", "references", "prepare_train_features", "prepare_eval_features", "postprocess_predictions",
           "metric_inputs", "expected_windows", "tokens_per_window"]
