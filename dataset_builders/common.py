"""Shared pieces of the dataset builders: strict file reading, clear errors, Parquet + card export.

Builders are `datasets.GeneratorBasedBuilder` subclasses used directly (datasets >= 4 has no loading
scripts). `export_dataset` writes what `load_dataset(<folder or Hub repo>)` reads back: one Parquet
file per split under `data/` and a README whose YAML header declares `configs:`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import yaml

DATA_ENV = "AFFECTLAB_DATA"
# The checkout's root (dataset_builders/ sits in it); `../shared/data` beside it is the default data folder.
_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path | None:
    """The local data folder: `$AFFECTLAB_DATA`, else `../shared/data` beside the checkout when it exists.

    Returns None when neither exists; builders then fall back to the Hugging Face Hub. An explicitly set
    `AFFECTLAB_DATA` that does not exist is an error (a typo must not silently turn into a Hub download).
    """
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"{DATA_ENV}={env} is not a folder")
        return path
    default = (_CHECKOUT_ROOT.parent / "shared" / "data").resolve()
    return default if default.is_dir() else None


def dataset_dir(name: str) -> Path | None:
    """`<data_root>/<name>` if it exists, else None."""
    root = data_root()
    if root is None:
        return None
    path = root / name
    return path if path.is_dir() else None


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target`, on error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(target)
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


class DataFormatError(ValueError):
    """Bad input data. The message always names the file and, where there is one, the line."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def require_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    return path


def read_utf8_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without newline); non-UTF-8 bytes raise with the line number.

    A UTF-8 byte-order mark at the start of the file is dropped (it would otherwise end up in the first text).
    """
    path = require_file(path)
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(path, f"not valid UTF-8 ({err.reason} at byte {err.start})", number) from None
            if number == 1:
                line = line.lstrip("\ufeff")
            yield number, line.rstrip("\r\n")


class RowChecks:
    """Checks over a whole file while its rows stream by: duplicate ids, and no data rows at all.

        checks = RowChecks(path)
        for line_no, row in ...:
            checks.row(line_no, row_id)     # DataFormatError on an id seen before (naming both lines)
        checks.finish()                     # DataFormatError when the file had no data row
    """

    def __init__(self, path: str | os.PathLike, what: str = "id"):
        self.path, self.what, self.seen = Path(path), what, {}

    def row(self, line_no: int, row_id: str | None = None) -> None:
        if row_id is None:
            self.seen[len(self.seen)] = line_no
            return
        if row_id in self.seen:
            raise DataFormatError(self.path, f"duplicate {self.what} {row_id!r} (first on line {self.seen[row_id]}); "
                                             "every row needs its own", line_no)
        self.seen[row_id] = line_no

    def finish(self) -> None:
        if not self.seen:
            raise DataFormatError(self.path, "no data rows (the file is empty)")


def read_delimited(
    path: str | os.PathLike, delimiter: str, required_columns: Sequence[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Read a delimited file with a header; check the required columns; yield (line, row dict)."""
    path = require_file(path)
    lines = read_utf8_lines(path)
    try:
        _, header_line = next(lines)
    except StopIteration:
        raise DataFormatError(path, "file is empty") from None
    header = [h.strip().lstrip("\ufeff") for h in next(csv.reader([header_line], delimiter=delimiter))]
    missing = [c for c in required_columns if c not in header]
    if missing:
        raise DataFormatError(path, f"missing column(s) {missing}; header has {header}", 1)
    for number, line in lines:
        if not line.strip():
            continue
        fields = next(csv.reader(io.StringIO(line), delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL))
        if len(fields) != len(header):
            raise DataFormatError(path, f"expected {len(header)} fields, found {len(fields)}", number)
        yield number, dict(zip(header, fields))


def read_csv_records(path: str | os.PathLike, required_columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Read a quoted CSV (fields may span lines); yield (line where the record starts, row dict)."""
    path = require_file(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataFormatError(path, f"not valid UTF-8 ({err.reason} at byte {err.start})", line) from None
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = reader.fieldnames or []
    missing = [c for c in required_columns if c not in header]
    if missing:
        raise DataFormatError(path, f"missing column(s) {missing}; header has {header}", 1)
    line = 2
    for row in reader:
        if None in row or any(v is None for v in row.values()):
            raise DataFormatError(path, f"expected {len(header)} fields", line)
        yield line, row
        line = reader.line_num + 1


def export_dataset(dataset_dict, out_dir: str | os.PathLike, card_body: str, config_name: str = "default",
                   pretty_name: str | None = None, license: str | None = None, extra_yaml: dict | None = None) -> Path:
    """Write a DatasetDict as `data/<split>-00000-of-00001.parquet` + README.md with `configs:`.

    The folder is written atomically (temp folder, then rename). It loads back with
    `datasets.load_dataset(out_dir)` and, once uploaded, from the Hub the same way.
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "data").mkdir()
        data_files = []
        for split, ds in dataset_dict.items():
            rel = f"data/{split}-00000-of-00001.parquet"
            ds.to_parquet(str(tmp / rel))
            data_files.append({"split": split, "path": rel})
        meta: dict = {"configs": [{"config_name": config_name, "data_files": data_files, "default": True}]}
        first = next(iter(dataset_dict.values()))
        meta["dataset_info"] = {
            "config_name": config_name,
            "features": first.features._to_yaml_list(),
            "splits": [{"name": s, "num_bytes": int(d.data.nbytes), "num_examples": len(d)} for s, d in dataset_dict.items()],
        }
        if pretty_name:
            meta["pretty_name"] = pretty_name
        if license:
            meta["license"] = license
        meta.update(extra_yaml or {})
        header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
        (tmp / "README.md").write_text(f"---\n{header}---\n\n{card_body.strip()}\n", encoding="utf-8")
    return out_dir
