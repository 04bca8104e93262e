"""`affectlab predict`: predictions for a file or a dataset with a trained model, streamed in chunks.

    affectlab predict --model outputs/goemotions_minilm_demo-onnx --input texts.csv --output preds.parquet
    affectlab predict --model outputs/redsm5_nli --input pairs.jsonl --text_pair_column criterion --output p.csv
    affectlab predict --model org/goemotions-minilm --dataset goemotions --split test --output test.jsonl --scores

Inputs: CSV / TSV (a header row), JSON Lines (one object per line), Parquet, plain text (one text per line), or
`--dataset NAME --split SPLIT` (an affectlab-registered dataset, else a Hub dataset, streamed). Outputs by suffix:
.csv / .tsv, .jsonl (or .json: JSON Lines), .parquet. Each output row carries `row`, the input's row number
(1-based, header not counted; for JSON Lines and text files, the line number), the `--id_column` and
`--keep_columns` values, and the prediction: `labels` (multi-label, the model's saved per-label thresholds
applied; in CSV joined with `--label_separator`), `label` + `score` (single-label: classifier, NLI) or one
column per output (regression); `--scores` adds `score_<label>` probabilities.

The model runs through `affectlab.inference.TextClassifier` (length-sorted batches under a token budget; an
`affectlab export` folder runs on ONNX Runtime). A bad row (empty text, text that is not valid UTF-8, a line that
is not a JSON object) is never dropped silently: by default (`--on_bad_rows error`) nothing is written and the
error lists every bad row by number; `skip` writes the others, `keep` writes bad rows with empty predictions and
an `error` column; both print the bad rows and list them all in `<output>.bad_rows.csv`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from affectlab.errors import ArgumentError, UserError

READ_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
                ".parquet": "parquet", ".txt": "txt"}
WRITE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
BAD_ROW_POLICIES = ("error", "skip", "keep")
SHOWN_BAD_ROWS = 10
_SURROGATE = re.compile("[\udc80-\udcff]")  # what undecodable bytes become under errors="surrogateescape"


class BadRowsError(UserError):
    """The input has rows that cannot be predicted (listed by row number); nothing was written."""


@dataclass
class Chunk:
    """Consecutive input rows: 1-based row numbers, texts (None where the row is bad), pairs, kept columns."""
    rows: list[int]
    texts: list
    pairs: list | None = None
    extra: dict[str, list] = field(default_factory=dict)
    bad: dict[int, str] = field(default_factory=dict)   # position in the chunk -> reason


def text_problem(value) -> str | None:
    """Why `value` cannot be predicted (None when it can)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "empty text (missing value)"
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as err:
            return f"not valid UTF-8 (byte 0x{value[err.start]:02x} at offset {err.start})"
    if not isinstance(value, str):
        return f"text is a {type(value).__name__}, not a string"
    bad = _SURROGATE.search(value)
    if bad:
        return f"not valid UTF-8 (byte 0x{ord(bad.group()) - 0xdc00:02x} at character {bad.start()})"
    if not value.strip():
        return "empty text"
    return None


def as_text(value):
    return bytes(value).decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


def check_chunk(chunk: Chunk) -> Chunk:
    """Record each row's problem with its text (and its pair); bad rows' texts become None."""
    for i, value in enumerate(chunk.texts):
        reason = chunk.bad.get(i) or text_problem(value)
        if reason is None and chunk.pairs is not None:
            pair_reason = text_problem(chunk.pairs[i])
            reason = f"text pair: {pair_reason}" if pair_reason else None
        if reason:
            chunk.bad[i] = reason
            chunk.texts[i] = None
        else:
            chunk.texts[i] = as_text(value)
            if chunk.pairs is not None:
                chunk.pairs[i] = as_text(chunk.pairs[i])
    return chunk


# ---------------------------------------------------------------------------------------------------------
# readers: Chunks of at most `size` rows
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Columns:
    text: str = "text"
    pair: str | None = None
    keep: tuple[str, ...] = ()

    @property
    def needed(self) -> list[str]:
        return list(dict.fromkeys([self.text, *([self.pair] if self.pair else []), *self.keep]))


def _missing(columns: Columns, available, source) -> None:
    for option, name in (("text_column", columns.text), ("text_pair_column", columns.pair),
                         *(("keep_columns", k) for k in columns.keep)):
        if name and name not in available:
            raise ArgumentError(option, f"{source} has no column {name!r} (columns: {', '.join(map(str, available))})")


def read_delimited(path: Path, columns: Columns, size: int, sep: str) -> Iterator[Chunk]:
    import pandas as pd

    kwargs = dict(sep=sep, dtype=object, keep_default_na=False, na_filter=False, encoding="utf-8-sig",
                  encoding_errors="surrogateescape")
    try:
        header = pd.read_csv(path, nrows=0, **kwargs).columns.tolist()
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty (no header row)") from None
    _missing(columns, header, path)
    start = 1
    try:
        for frame in pd.read_csv(path, usecols=columns.needed, chunksize=size, **kwargs):
            rows = list(range(start, start + len(frame)))
            start += len(frame)
            yield Chunk(rows, frame[columns.text].tolist(), frame[columns.pair].tolist() if columns.pair else None,
                        {k: frame[k].tolist() for k in columns.keep})
    except pd.errors.ParserError as err:
        raise UserError(f"{path} is not a well-formed {'TSV' if sep == chr(9) else 'CSV'} file near data row "
                        f"{start}: {str(err).strip()}") from None


def read_lines(path: Path, columns: Columns, size: int, as_json: bool) -> Iterator[Chunk]:
    chunk = Chunk([], [], [] if columns.pair else None, {k: [] for k in columns.keep})
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            raw = raw.rstrip(b"\r\n")
            text, pair, extra, reason = None, None, {k: None for k in columns.keep}, None
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                reason = f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})"
                line = None
            if line is not None and as_json:
                if not line.strip():
                    reason = "empty line"
                else:
                    try:
                        record = json.loads(line)
                    except ValueError as err:
                        record, reason = None, f"not valid JSON ({err.msg})"
                    if record is not None and not isinstance(record, dict):
                        reason = "not a JSON object"
                    elif record is not None:
                        if columns.text not in record:
                            reason = f"no {columns.text!r} field"
                        text = record.get(columns.text)
                        pair = record.get(columns.pair) if columns.pair else None
                        extra = {k: record.get(k) for k in columns.keep}
            elif line is not None:
                text = line
            chunk.rows.append(number)
            chunk.texts.append(text)
            if chunk.pairs is not None:
                chunk.pairs.append(pair)
            for k in columns.keep:
                chunk.extra[k].append(extra[k])
            if reason:
                chunk.bad[len(chunk.rows) - 1] = reason
            if len(chunk.rows) >= size:
                yield chunk
                chunk = Chunk([], [], [] if columns.pair else None, {k: [] for k in columns.keep})
    if chunk.rows:
        yield chunk


def read_parquet(path: Path, columns: Columns, size: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    _missing(columns, handle.schema_arrow.names, path)
    start = 1
    for batch in handle.iter_batches(batch_size=size, columns=columns.needed):
        data = batch.to_pydict()
        rows = list(range(start, start + batch.num_rows))
        start += batch.num_rows
        yield Chunk(rows, data[columns.text], data[columns.pair] if columns.pair else None,
                    {k: data[k] for k in columns.keep})


def read_dataset(name: str, split: str, config: str | None, columns: Columns, size: int) -> Iterator[Chunk]:
    from dataset_builders import REGISTRY, build_dataset

    if name in REGISTRY:
        splits = build_dataset(name)
        if split not in splits:
            raise ArgumentError("split", f"{name} has no split {split!r} (splits: {', '.join(splits)})")
        data = splits[split]
    else:
        import datasets

        try:
            data = datasets.load_dataset(name, config, split=split, streaming=True)
        except Exception as err:  # noqa: BLE001 - missing, offline, gated: one line for the user
            raise ArgumentError("dataset", f"cannot load {name!r} split {split!r} "
                                           f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    available = data.column_names or (list(data.features) if data.features else [])
    if available:
        _missing(columns, available, f"dataset {name}[{split}]")
    start = 1
    for batch in data.iter(batch_size=size):
        n = len(batch[columns.text])
        rows = list(range(start, start + n))
        start += n
        yield Chunk(rows, list(batch[columns.text]), list(batch[columns.pair]) if columns.pair else None,
                    {k: list(batch[k]) for k in columns.keep})


def count_rows(path: Path, fmt: str) -> int | None:
    """Rows in the input when cheap to know (for the progress bar)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if fmt in ("jsonl", "txt"):
        with open(path, "rb") as handle:
            data = handle.read()
        return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    return None


def open_input(args, columns: Columns, size: int) -> tuple[Iterator[Chunk], int | None, str]:
    if args.dataset:
        if args.input:
            raise ArgumentError("input", "give either --input or --dataset, not both")
        total = None
        return read_dataset(args.dataset, args.split, args.dataset_config, columns, size), total, \
            f"{args.dataset}[{args.split}]"
    if not args.input:
        raise ArgumentError("input", "give the file to predict (or --dataset NAME --split SPLIT)")
    path = Path(args.input)
    if not path.is_file():
        raise FileNotFoundError(f"--input: no file {path}")
    fmt = READ_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ArgumentError("input", f"unknown input type {path.suffix!r}; one of {', '.join(READ_FORMATS)}")
    if fmt in ("csv", "tsv"):
        reader = read_delimited(path, columns, size, "\t" if fmt == "tsv" else ",")
    elif fmt == "parquet":
        reader = read_parquet(path, columns, size)
    else:
        if fmt == "txt" and (columns.pair or columns.keep):
            raise ArgumentError("text_pair_column" if columns.pair else "keep_columns",
                                "a text file has one text per line and no columns")
        reader = read_lines(path, columns, size, as_json=fmt == "jsonl")
    return reader, count_rows(path, fmt), str(path)


# ---------------------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------------------
class Writer:
    def __init__(self, path: Path, fmt: str, separator: str = ";", float_columns=()):
        self.path, self.fmt, self.separator, self.float_columns = path, fmt, separator, set(float_columns)
        self.handle, self.parquet, self.schema, self.header_done = None, None, None, False

    def write(self, records: dict[str, list]) -> None:
        if not records or not next(iter(records.values()), []):
            return
        if self.fmt == "jsonl":
            if self.handle is None:
                self.handle = open(self.path, "w", encoding="utf-8")
            keys = list(records)
            for values in zip(*records.values()):
                self.handle.write(json.dumps(dict(zip(keys, values)), ensure_ascii=False, default=_json_default)
                                  + "\n")
        elif self.fmt in ("csv", "tsv"):
            import pandas as pd

            frame = pd.DataFrame({k: [self.separator.join(v) if isinstance(v, list) else v for v in values]
                                  for k, values in records.items()})
            frame.to_csv(self.path, mode="a" if self.header_done else "w", header=not self.header_done, index=False,
                         sep="\t" if self.fmt == "tsv" else ",")
            self.header_done = True
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self.schema is None:
                self.schema = parquet_schema(records, self.float_columns)
                self.parquet = pq.ParquetWriter(str(self.path), self.schema)
            self.parquet.write_table(pa.Table.from_pydict(
                {k: [None if v is None else _arrow_value(v, self.schema.field(k).type) for v in values]
                 for k, values in records.items()}, schema=self.schema))

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        if self.parquet is not None:
            self.parquet.close()
        if self.fmt in ("csv", "tsv") and not self.header_done:
            self.path.write_text("", encoding="utf-8")
        if self.fmt == "jsonl" and self.handle is None:
            self.path.write_text("", encoding="utf-8")


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def parquet_schema(records: dict[str, list], float_columns=()):
    """row: int64; labels: list<string>; scores and regression outputs: float32; everything else: string."""
    import pyarrow as pa

    def kind(name):
        if name == "row":
            return pa.int64()
        if name == "labels":
            return pa.list_(pa.string())
        return pa.float32() if name in float_columns else pa.string()

    return pa.schema([pa.field(name, kind(name)) for name in records])


def _arrow_value(value, kind):
    import pyarrow as pa

    if kind == pa.string() and not isinstance(value, str):
        return json.dumps(value, default=_json_default) if isinstance(value, (list, dict)) else str(value)
    return value


# ---------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------
def prediction_columns(clf, scores: np.ndarray, with_scores: bool) -> dict[str, list]:
    spec = clf.spec
    out: dict[str, list] = {}
    if spec.regression:
        for j, name in enumerate(spec.labels):
            out[name] = scores[:, j].astype(float).tolist()
        return out
    decided = spec.decide(scores)
    if spec.multi_label:
        out["labels"] = decided
    else:
        out["label"] = decided
        out["score"] = scores.max(-1).astype(float).tolist() if len(scores) else []
    if with_scores:
        for j, name in enumerate(spec.labels):
            out[f"score_{name}"] = scores[:, j].astype(float).tolist()
    return out


def empty_prediction(clf, with_scores: bool) -> dict:
    spec = clf.spec
    if spec.regression:
        return {name: None for name in spec.labels}
    out = {"labels": None} if spec.multi_label else {"label": None, "score": None}
    if with_scores:
        out.update({f"score_{name}": None for name in spec.labels})
    return out


def describe_bad_rows(bad: list[tuple[int, str]], limit: int = SHOWN_BAD_ROWS) -> str:
    shown = "; ".join(f"row {row}: {reason}" for row, reason in bad[:limit])
    more = f"; ... and {len(bad) - limit} more" if len(bad) > limit else ""
    return shown + more


def run_predictions(clf, chunks: Iterator[Chunk], output: Path, *, on_bad_rows: str = "error",
                    id_column: str | None = None, keep_columns=(), with_scores: bool = False,
                    label_separator: str = ";", total: int | None = None, source: str = "input",
                    progress: bool = True, log=None) -> dict:
    """Predict every good row of `chunks` into `output` (written atomically); returns a summary."""
    from tqdm.auto import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    fmt = WRITE_FORMATS.get(output.suffix.lower())
    if fmt is None:
        raise ArgumentError("output", f"unknown output type {output.suffix!r}; one of {', '.join(WRITE_FORMATS)}")
    if on_bad_rows not in BAD_ROW_POLICIES:
        raise ArgumentError("on_bad_rows", f"one of {BAD_ROW_POLICIES}, got {on_bad_rows!r}")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    spec = clf.spec
    float_columns = list(spec.labels) if spec.regression else \
        ["score"] * (not spec.multi_label) + [f"score_{name}" for name in spec.labels] * with_scores
    writer = Writer(partial, fmt, label_separator, float_columns)
    passthrough = list(dict.fromkeys([c for c in (id_column, *keep_columns) if c]))
    bad: list[tuple[int, str]] = []
    rows = predicted = 0
    start = time.perf_counter()
    bar = tqdm(total=total, unit="rows", desc="predict", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for chunk in chunks:
            check_chunk(chunk)
            rows += len(chunk.rows)
            bar.update(len(chunk.rows))
            bad.extend((chunk.rows[i], reason) for i, reason in sorted(chunk.bad.items()))
            if bad and on_bad_rows == "error":
                continue  # read on to list every bad row; nothing gets written
            good = [i for i in range(len(chunk.rows)) if i not in chunk.bad]
            scores = clf.predict_proba([chunk.texts[i] for i in good],
                                       text_pairs=[chunk.pairs[i] for i in good] if chunk.pairs is not None else None)
            predicted += len(good)
            columns = prediction_columns(clf, scores, with_scores)
            positions = good if on_bad_rows != "keep" else list(range(len(chunk.rows)))
            record: dict[str, list] = {"row": [chunk.rows[i] for i in positions]}
            for name in passthrough:
                record[name] = [chunk.extra[name][i] for i in positions]
            if on_bad_rows != "keep":
                record.update(columns)
            else:
                slot = {i: k for k, i in enumerate(good)}
                empty = empty_prediction(clf, with_scores)
                for name in (columns or empty):
                    record[name] = [columns[name][slot[i]] if i in slot else empty[name] for i in positions]
                record["error"] = [chunk.bad.get(i) for i in positions]
            writer.write(record)
        bar.close()
        writer.close()
        if bad and on_bad_rows == "error":
            raise BadRowsError(f"{len(bad)} of {rows} rows of {source} cannot be predicted: {describe_bad_rows(bad)}. "
                               f"Fix them, or pass --on_bad_rows skip (predict the others) or keep (write them "
                               f"with an error column); either lists them all in <output>.bad_rows.csv")
        partial.replace(output)
    except BaseException:
        bar.close()
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - start
    summary = {"rows": rows, "predicted": predicted, "bad_rows": len(bad), "output": str(output),
               "seconds": seconds, "rows_per_s": predicted / seconds if seconds > 0 else None}
    if bad:
        report = output.with_name(f"{output.name}.bad_rows.csv")
        import pandas as pd

        pd.DataFrame(bad, columns=["row", "reason"]).to_csv(report, index=False)
        summary["bad_rows_file"] = str(report)
        verb = "skipped" if on_bad_rows == "skip" else "kept with an error and no prediction"
        log(f"warning: {len(bad)} bad rows {verb}: {describe_bad_rows(bad)} (all in {report})")
    return summary


def build_parser() -> argparse.ArgumentParser:
    from affectlab.inference import DEFAULT_BATCH_SIZE, DEFAULT_MAX_TOKENS, ONNX_BATCH_SIZE, ONNX_MAX_TOKENS

    parser = argparse.ArgumentParser(prog="affectlab predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a trained model folder / Hub id, or an `affectlab export` folder")
    parser.add_argument("--input", default=None, help="CSV / TSV / JSON Lines / Parquet / text file")
    parser.add_argument("--dataset", default=None, help="a registered or Hub dataset instead of --input")
    parser.add_argument("--split", default="test")
    parser.add_argument("--dataset_config", default=None)
    parser.add_argument("--output", required=True, help=".csv / .tsv / .jsonl / .parquet")
    parser.add_argument("--text_column", default="text")
    parser.add_argument("--text_pair_column", default=None, help="second text of each pair (NLI models)")
    parser.add_argument("--id_column", default=None, help="copied to the output")
    parser.add_argument("--keep_columns", default="", help="comma-separated input columns copied to the output")
    parser.add_argument("--scores", action="store_true", help="add score_<label> probabilities")
    parser.add_argument("--on_bad_rows", default="error", choices=BAD_ROW_POLICIES)
    parser.add_argument("--label_separator", default=";", help="joins multi-label sets in CSV / TSV output")
    parser.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"],
                        help="auto: ONNX Runtime for an exported folder, else PyTorch")
    parser.add_argument("--onnx_file", default=None, help="e.g. onnx/model.onnx (default: the export's default)")
    parser.add_argument("--no_int8_guard", action="store_true",
                        help="int8 exports: skip the fp32 second look at the rows near a decision (faster, and a few "
                             "percent of label sets differ from fp32's)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the runtime's)")
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--max_tokens", type=int, default=None,
                        help=f"padded tokens per batch (default {DEFAULT_MAX_TOKENS} PyTorch, {ONNX_MAX_TOKENS} ONNX)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help=f"rows per batch at most (default {DEFAULT_BATCH_SIZE} PyTorch, {ONNX_BATCH_SIZE} ONNX)")
    parser.add_argument("--chunk_rows", type=int, default=8192, help="rows read (and length-sorted) at a time")
    parser.add_argument("--trust_remote_code", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("max_length", "max_tokens", "batch_size", "chunk_rows"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ArgumentError(name, f"must be positive, got {getattr(args, name)}")
    keep = tuple(c.strip() for c in args.keep_columns.split(",") if c.strip())
    columns = Columns(args.text_column, args.text_pair_column,
                      tuple(dict.fromkeys([c for c in (args.id_column, *keep) if c])))
    output = Path(args.output)
    if output.suffix.lower() not in WRITE_FORMATS:
        raise ArgumentError("output", f"unknown output type {output.suffix!r}; one of {', '.join(WRITE_FORMATS)}")
    chunks, total, source = open_input(args, columns, args.chunk_rows)

    from affectlab.inference import TextClassifier

    if args.quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    clf = TextClassifier.from_pretrained(args.model, backend=args.backend, onnx_file=args.onnx_file,
                                         num_threads=args.threads, max_length=args.max_length,
                                         max_tokens=args.max_tokens, batch_size=args.batch_size,
                                         trust_remote_code=args.trust_remote_code, int8_guard=not args.no_int8_guard)
    summary = run_predictions(clf, chunks, output, on_bad_rows=args.on_bad_rows, id_column=args.id_column,
                              keep_columns=keep, with_scores=args.scores, label_separator=args.label_separator,
                              total=total, source=source, progress=not args.quiet)
    rate = f" ({summary['rows_per_s']:.0f} rows/s)" if summary["rows_per_s"] else ""
    print(f"wrote {summary['predicted']} predictions of {summary['rows']} rows to {output}{rate} "
          f"[{clf.backend.name}{':' + clf.backend.file_name if getattr(clf.backend, 'file_name', '') else ''}"
          f"{f'; int8 guard: {100 * clf.guard.recheck_rate:.1f}% of rows scored again in fp32' if clf.guard else ''}]",
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main())
