"""affectlab.span_qa: stride windows, CLS labels, offsets, n-best merging, multi-span, null threshold,
the ReDSM5 evidence -> SQuAD conversion, and a synthetic 7,000-word post end to end."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from affectlab.span_qa import (expected_windows, metric_inputs, postprocess_predictions, prepare_eval_features,
                               prepare_train_features, references, to_squad, tokens_per_window)

QUESTION = "The writer feels tired, drained or without energy almost every day."


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def filler(n_words: int, seed: int = 0) -> str:
    words = "the weather was rainy and my cat slept on the sofa while i read a book about old trains".split()
    rng = np.random.default_rng(seed)
    out, sentence = [], []
    for _ in range(n_words):
        sentence.append(words[int(rng.integers(len(words)))])
        if len(sentence) == 9:
            out.append(" ".join(sentence).capitalize() + ".")
            sentence = []
    if sentence:
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)


def batch(context, answers, question=QUESTION, eid="e0"):
    return {"id": [eid], "question": [question], "context": [context],
            "answers": [{"text": [context[s:e] for s, e in answers], "answer_start": [s for s, _ in answers]}]}


def logits_for(features, spans_scores, width):
    """Logits that put `score` on the tokens of each character span (in every window holding it), 0 on CLS."""
    n = len(features["input_ids"])
    start = np.full((n, width), -100.0)
    end = np.full((n, width), -100.0)
    for i in range(n):
        offsets = features["offset_mapping"][i]
        start[i, : len(offsets)] = end[i, : len(offsets)] = -10.0
        start[i, features["cls_index"][i]] = end[i, features["cls_index"][i]] = 0.0
        for (cs, ce), score in spans_scores:
            toks = [k for k, o in enumerate(offsets) if o is not None and o[0] < ce and cs < o[1]]
            if toks and offsets[toks[0]][0] <= cs and offsets[toks[-1]][1] >= ce:
                start[i, toks[0]] = end[i, toks[-1]] = score / 2
    return start, end


def test_windows_labels_and_question_never_truncated(tokenizer):
    context = filler(300)
    answer = "I am exhausted all the time."
    context = context[:600] + " " + answer + " " + context[600:]
    a_start = context.index(answer)
    max_length, stride = 96, 32
    feats = prepare_train_features(batch(context, [(a_start, a_start + len(answer))]), tokenizer, max_length, stride)
    n_ctx = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    room = tokens_per_window(tokenizer, QUESTION, max_length)
    assert len(feats["input_ids"]) == expected_windows(n_ctx, room, stride) > 3
    q_ids = tokenizer(QUESTION, add_special_tokens=False)["input_ids"]
    labelled = []
    for i, ids in enumerate(feats["input_ids"]):
        assert len(ids) <= max_length and ids[1:1 + len(q_ids)] == q_ids  # full question in every window
        s, e = feats["start_positions"][i], feats["end_positions"][i]
        if (s, e) != (0, 0):
            labelled.append(i)
            assert tokenizer.decode(ids[s:e + 1]) == answer.lower()
    assert labelled  # the answer is inside at least one window, and only windows holding all of it are labelled
    assert len(labelled) <= 2
    assert "offset_mapping" not in feats and "overflow_to_sample_mapping" not in feats


def test_answer_crossing_a_window_edge_is_labelled_only_where_whole(tokenizer):
    context = filler(120)
    max_length, stride = 64, 16
    ev = prepare_eval_features(batch(context, []), tokenizer, max_length, stride)
    first_window_end = max(o[1] for o in ev["offset_mapping"][0] if o is not None)
    # a span straddling the end of window 0: labelled in window 1 only (if it fits there), CLS in window 0
    a_start = context.rfind(" ", 0, first_window_end - 5) + 1
    a_end = context.find(" ", first_window_end + 3)
    feats = prepare_train_features(batch(context, [(a_start, a_end)]), tokenizer, max_length, stride)
    assert (feats["start_positions"][0], feats["end_positions"][0]) == (0, 0)
    assert feats["start_positions"][1] > 0


def test_eval_features_offsets_only_on_context(tokenizer):
    ev = prepare_eval_features(batch(filler(60), []), tokenizer, 48, 8)
    for i, offsets in enumerate(ev["offset_mapping"]):
        seq = [k for k, o in enumerate(offsets) if o is not None]
        assert ev["cls_index"][i] == 0 and offsets[0] is None
        assert ev["example_id"][i] == "e0"
        assert all(ev["token_type_ids"][i][k] == 1 for k in seq)


def test_stride_too_large_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="doc_stride .* must be smaller"):
        prepare_train_features(batch("Short post.", []), tokenizer, max_length=32, doc_stride=30)


@pytest.mark.parametrize("threshold, expected_text", [(0.0, "I am exhausted all the time."), (25.0, "")])
def test_null_threshold(tokenizer, threshold, expected_text):
    context = filler(80) + " I am exhausted all the time. " + filler(40, seed=1)
    s = context.index("I am exhausted")
    ex = batch(context, [])
    ev = prepare_eval_features(ex, tokenizer, 64, 16)
    start, end = logits_for(ev, [((s, s + 28), 20.0)], 64)  # span score 20 vs null 0
    [pred] = postprocess_predictions({"id": ex["id"], "context": ex["context"]}, ev, start, end,
                                     null_score_diff_threshold=-threshold)
    assert pred["prediction_text"] == expected_text
    assert pred["null_score"] == 0.0 and pred["best_score"] == pytest.approx(20.0)


def test_multi_span_top_k_non_overlapping(tokenizer):
    a, b, c = "I am exhausted all the time.", "I cannot focus on anything.", "I barely eat."
    context = f"{filler(50)} {a} {filler(70, 1)} {b} {filler(30, 2)} {c}"
    sa, sb, sc = context.index(a), context.index(b), context.index(c)
    ev = prepare_eval_features(batch(context, []), tokenizer, 64, 16)
    scores = [((sa, sa + len(a)), 12.0), ((sb, sb + len(b)), 9.0), ((sc, sc + len(c)), 2.0),
              ((sa + 5, sa + len(a)), 11.0)]  # overlaps the best span: must be skipped
    start, end = logits_for(ev, scores, 64)
    # the injected logits also create mixed pairs (start of one span, end of another within max_answer_length)
    ex = {"id": ["e0"], "context": [context]}
    [two] = postprocess_predictions(ex, ev, start, end, max_spans=3, span_score_diff_threshold=-5.0, max_answer_length=12)
    assert two["spans"] == [[sa, sa + len(a)], [sb, sb + len(b)]]  # c (score 2) is below null + 5
    assert two["prediction_text"] == a
    [three] = postprocess_predictions(ex, ev, start, end, max_spans=3, span_score_diff_threshold=0.0, max_answer_length=12)
    assert three["spans"] == [[sa, sa + len(a)], [sb, sb + len(b)], [sc, sc + len(c)]]
    [one] = postprocess_predictions(ex, ev, start, end, max_spans=1, max_answer_length=12)
    assert one["spans"] == [[sa, sa + len(a)]]
    # n-best spans are unique across overlapping windows, best first
    keys = [(n["start"], n["end"]) for n in one["nbest"]]
    assert len(keys) == len(set(keys)) and [n["score"] for n in one["nbest"]] == sorted((n["score"] for n in one["nbest"]), reverse=True)
    assert metric_inputs([two]) == [{"id": "e0", "prediction_text": a, "spans": two["spans"]}]


def test_to_squad_from_evidence_example():
    text = "I sleep badly. I am tired. Nice day."
    ex = {"id": "p:FATIGUE", "text": text, "criterion": QUESTION,
          "evidence": [{"sentence_id": "2", "start": 15, "end": 26, "method": "exact", "score": 1.0},
                       {"sentence_id": "1", "start": 0, "end": 14, "method": "fuzzy", "score": 0.8}]}
    sq = to_squad(ex)
    assert sq["answers"] == {"text": ["I sleep badly.", "I am tired."], "answer_start": [0, 15]}
    assert sq["question"] == QUESTION and sq["context"] == text
    assert references([sq])[0]["answers"]["answer_start"] == [0, 15]
    assert to_squad({**ex, "evidence": []})["answers"] == {"text": [], "answer_start": []}
    with pytest.raises(ValueError, match=r"example 'p:FATIGUE': evidence span \[30, 99\) outside"):
        to_squad({**ex, "evidence": [{"start": 30, "end": 99}]})


def test_long_post_7000_words_late_window(tokenizer, tiny_bert_dir):
    """A synthetic 7,000-word post: windows counted, the answer labelled and found in a late window,
    bounded memory (peak Python allocations while building features and post-processing)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    answer = "I have had no energy at all for months and even a shower drains me."
    body = filler(7000, seed=3)
    cut = body.rfind(". ", 0, len(body) - 300) + 2
    context = body[:cut] + answer + " " + body[cut:]
    assert len(context.split()) == 7000 + len(answer.split())
    a_start = context.index(answer)
    ex = batch(context, [(a_start, a_start + len(answer))], eid="long")
    max_length, stride = 384, 128
    tracemalloc.start()
    train = prepare_train_features(ex, tokenizer, max_length, stride)
    ev = prepare_eval_features(ex, tokenizer, max_length, stride)
    n_ctx = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    n_win = expected_windows(n_ctx, tokens_per_window(tokenizer, QUESTION, max_length), stride)
    assert len(train["input_ids"]) == len(ev["input_ids"]) == n_win and n_win >= 30
    labelled = [i for i, s in enumerate(train["start_positions"]) if s != 0]
    assert labelled and min(labelled) >= n_win - 3  # a late window
    start, end = logits_for(ev, [((a_start, a_start + len(answer)), 16.0)], max_length)
    [pred] = postprocess_predictions({"id": ["long"], "context": [context]}, ev, start, end, max_answer_length=40)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert pred["prediction_text"] == answer and pred["spans"] == [[a_start, a_start + len(answer)]]
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    # a real (tiny) model over every window of the post at its own position limit: one prediction back
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_bert_dir).eval()
    ev128 = prepare_eval_features(ex, tokenizer, 128, 32)
    n128 = expected_windows(n_ctx, tokens_per_window(tokenizer, QUESTION, 128), 32)
    assert len(ev128["input_ids"]) == n128
    starts, ends = [], []
    with torch.no_grad():
        for i in range(0, n128, 64):
            enc = tokenizer.pad({"input_ids": ev128["input_ids"][i:i + 64], "attention_mask": ev128["attention_mask"][i:i + 64],
                                 "token_type_ids": ev128["token_type_ids"][i:i + 64]}, padding="max_length", max_length=128,
                                return_tensors="pt")
            out = model(**enc)
            starts.append(out.start_logits.numpy())
            ends.append(out.end_logits.numpy())
    preds = postprocess_predictions({"id": ["long"], "context": [context]}, ev128, np.concatenate(starts), np.concatenate(ends),
                                    null_score_diff_threshold=1e9)  # always answer: exercise span extraction
    assert len(preds) == 1 and len(preds[0]["spans"]) == 1
    s, e = preds[0]["spans"][0]
    assert 0 <= s < e <= len(context) and preds[0]["prediction_text"] == context[s:e]
