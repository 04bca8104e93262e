"""The int8 graphs `affectlab export --quantize int8` writes, on a tiny random BERT (seconds): the default blockwise
scheme (ONNX Runtime `MatMulNBits`, 8 bits, blocks of 32 features, int8 activations per token) quantizes every
matmul over a weight, keeps the attention fp32, stays close to fp32 and gives each text the same scores whatever
batch it is in; the per-tensor `dynamic` scheme is still there; matmuls can be kept fp32 by name.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

LABELS = ["joy", "anger", "sadness", "fear", "neutral"]
TEXTS = ["thank you so much, this made my day!", "ok", "I can't believe they did that to us. Absolutely furious.",
         "I miss her every single day.", "Could you explain why this happens?", "lol same", "ugh, Mondays.",
         "I have not slept properly in weeks and nothing I used to enjoy feels worth doing anymore, not even music.",
         "Wow, that was unexpected!!", "fine", "I'm so proud of you, you worked so hard for this.", "no"]


@pytest.fixture(scope="module")
def tiny_multilabel(tiny_bert_dir, tmp_path_factory):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    src = tmp_path_factory.mktemp("int8") / "tiny-ml"
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=len(LABELS), problem_type="multi_label_classification",
        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    model.config.label_thresholds = {n: 0.5 for n in LABELS}
    model.save_pretrained(src)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(src)
    return src


@pytest.fixture(scope="module")
def exported(tiny_multilabel):
    from affectlab.export import export

    out = tiny_multilabel.parent / "onnx"
    return out, export(str(tiny_multilabel), out, quantize="int8", int8_scheme="blockwise", log=lambda *_: None)


def _nodes(path, op_type):
    import onnx

    return [n for n in onnx.load(str(path)).graph.node if n.op_type == op_type]


def test_blockwise_int8_quantizes_every_weight_matmul_and_keeps_attention_fp32(exported):
    import onnx

    from affectlab.export import first_token_matmuls, weight_matmuls

    out, meta = exported
    quant = meta["quantization"]
    assert quant["scheme"] == "blockwise" and quant["block_size"] == 32 and quant["accuracy_level"] == 4
    fp32_graph = onnx.load(str(out / "onnx/model.onnx")).graph
    names = weight_matmuls(fp32_graph)
    assert len(names) == 2 * 3  # 2 layers x (attention output, FFN in, FFN out)
    # the last layer after its attention runs on [CLS] only (`first_token_tail`) and stays fp32 there
    assert meta["first_token_tail"] == 6 and first_token_matmuls(fp32_graph) == names[3:]
    assert quant["fp32_matmuls"] == sorted(names[3:])
    blocks = _nodes(out / "onnx/model_quantized.onnx", "MatMulNBits")
    assert len(blocks) == 3 == quant["quantized_matmuls"]
    for node in blocks:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (8, 32, 4), attrs
    int8_graph = onnx.load(str(out / "onnx/model_quantized.onnx")).graph
    assert weight_matmuls(int8_graph) == names[3:]
    assert not {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"} & {n.op_type for n in int8_graph.node}
    assert len(_nodes(out / "onnx/model_quantized.onnx", "Attention")) == 2  # fused attention, fp32


def test_blockwise_int8_is_close_to_fp32_and_does_not_depend_on_the_batch(tiny_multilabel, exported):
    from affectlab.inference import TextClassifier

    out, _ = exported
    fp32 = TextClassifier.from_pretrained(str(out), backend="onnx", onnx_file="onnx/model.onnx", num_threads=1)
    int8 = TextClassifier.from_pretrained(str(out), backend="onnx", num_threads=1)
    assert int8.backend.file_name == "onnx/model_quantized.onnx"
    p32, p8 = fp32.predict_proba(TEXTS), int8.predict_proba(TEXTS)
    # the fp32 graph, first-token tail included, is PyTorch's computation
    np.testing.assert_allclose(p32, TextClassifier.from_pretrained(str(tiny_multilabel)).predict_proba(TEXTS), atol=1e-6)
    err = np.abs(p8 - p32).max()
    assert 0 < err < 2e-3, err  # quantized, and close
    # each token has its own activation scales: the same scores alone, in batches, in another order
    np.testing.assert_array_equal(int8.predict_proba(TEXTS, batch_size=1), p8)
    np.testing.assert_array_equal(int8.predict_proba(TEXTS[::-1], batch_size=5)[::-1], p8)


def test_dynamic_scheme_and_fp32_matmuls_by_name(tiny_multilabel, exported, tmp_path):
    from affectlab.errors import ArgumentError
    from affectlab.export import export, quantize_int8, weight_matmuls
    from affectlab.inference import OnnxBackend, TextClassifier
    from affectlab.onnx_model import inference_session

    out, _ = exported
    import onnx

    names = weight_matmuls(onnx.load(str(out / "onnx/model.onnx")).graph)
    kept = quantize_int8(out / "onnx/model.onnx", tmp_path / "kept.onnx", scheme="blockwise", keep_fp32=(names[0],))
    assert kept["quantized_matmuls"] == 2 and kept["fp32_matmuls"] == sorted([names[0], *names[3:]])
    assert weight_matmuls(onnx.load(str(tmp_path / "kept.onnx")).graph) == [names[0], *names[3:]]
    with pytest.raises(ArgumentError, match="--keep_fp32: not matmuls over a weight"):
        quantize_int8(out / "onnx/model.onnx", tmp_path / "x.onnx", keep_fp32=("no_such_node",))
    with pytest.raises(ArgumentError, match="--int8_scheme"):
        export(str(tiny_multilabel), tmp_path / "bad", quantize="int8", int8_scheme="int4", log=lambda *_: None)
    assert not (tmp_path / "bad").exists()

    meta = export(str(tiny_multilabel), tmp_path / "dynamic", quantize="int8", log=lambda *_: None)  # the default
    quant = meta["quantization"]
    assert quant["scheme"] == "dynamic" and quant["first_token_split_matmuls"] == 2  # first layer's FFN in and out
    assert _nodes(tmp_path / "dynamic/onnx/model_quantized.onnx", "DynamicQuantizeLinear")
    clf = TextClassifier.from_pretrained(str(out), backend="onnx", onnx_file="onnx/model.onnx", num_threads=1)
    p32 = clf.predict_proba(TEXTS)
    clf.backend = OnnxBackend(inference_session(str(tmp_path / "dynamic/onnx/model_quantized.onnx"), 1))
    assert np.abs(clf.predict_proba(TEXTS) - p32).max() < 2e-2
