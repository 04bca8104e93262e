"""Keep copied code equal to its source, in the spirit of transformers' `utils/check_copies.py`.

Each `custom_models/<name>/` folder travels to the Hub alone and loads with `trust_remote_code=True`, so
code that one folder shares with another lives there as a real copy (never a symlink), with a marker
that names its source:

* a whole file: its FIRST line is `# Copied from custom_models.gemma_encoder.modeling_gemma_encoder`
  (a module); every line after the marker equals that module's file;
* one object: `# Copied from custom_models.gemma_encoder.modeling_gemma_encoder.GemmaEncoderPooler`
  (a class or function, `Class.method` for a method) on the line right above a `class` / `def` (or above
  its first decorator); that block equals the source object's block, re-indented to the copy's level.

Either marker may end in `with A->B, C->D`: plain string replacements made in the source text before
comparing, all in one pass (so `Bert->Roberta, bert->roberta` never turns `Roberta` into `Roroberta`);
`A->B all-casing` also replaces `A.lower()->B.lower()` and `A.upper()->B.upper()`.
Targets resolve to files under the repository root (`custom_models.x.y` -> `custom_models/x/y.py`).

    python -m affectlab.testing.check_copies          # exit 1 with a diff per copy that drifted
    python -m affectlab.testing.check_copies --fix    # rewrite those copies from their sources

Edit the source, then run `--fix`; `tests/affectlab/test_check_copies.py` runs the check.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATHS = ("custom_models",)

_MARKER = re.compile(r"^(?P<indent>[ \t]*)#\s*Copied from\s+(?P<target>[A-Za-z_][\w.]*)(?P<rest>.*)$")
_WITH = re.compile(r"^\s+with\s+(?P<patterns>.+?)\s*$")
_PATTERN = re.compile(r"^(?P<old>\S+)->(?P<new>\S*)(?:\s+(?P<option>all-casing))?$")


@dataclass
class Drift:
    """A marked copy that does not equal its source (or a marker that cannot be checked)."""

    path: Path
    line: int  # 1-based line of the marker
    target: str
    message: str
    expected: str | None = None  # what the copy should read (None: nothing to fix automatically)
    actual: str | None = None
    _span: tuple[int, int] | None = None  # 0-based [start, end) lines of the copy the fix replaces
    whole_file: bool = False

    def diff(self) -> str:
        if self.expected is None or self.actual is None:
            return ""
        return "".join(difflib.unified_diff(self.actual.splitlines(True), self.expected.splitlines(True),
                                            fromfile=f"{self.path}:{self.line} (copy)",
                                            tofile=f"{self.target} (source)"))

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class _Marker:
    line: int  # 0-based
    indent: str
    target: str
    replacements: list[tuple[str, str]]


def _parse_replacements(rest: str) -> list[tuple[str, str]]:
    rest = rest.rstrip()
    if not rest:
        return []
    match = _WITH.match(rest)
    if not match:
        raise ValueError(f"expected `with A->B, ...` after the source name, got {rest.strip()!r}")
    out = []
    for part in match.group("patterns").split(","):
        pattern = _PATTERN.match(part.strip())
        if not pattern:
            raise ValueError(f"bad replacement {part.strip()!r} (write OLD->NEW, optionally `all-casing`)")
        old, new = pattern.group("old"), pattern.group("new")
        out.append((old, new))
        if pattern.group("option"):
            out += [(old.lower(), new.lower()), (old.upper(), new.upper())]
    return out


def _apply(text: str, replacements: list[tuple[str, str]]) -> str:
    """All replacements in one pass (longest match first), so no replacement's output is replaced again."""
    if not replacements:
        return text
    table: dict[str, str] = {}
    for old, new in replacements:
        table.setdefault(old, new)
    pattern = re.compile("|".join(re.escape(old) for old in sorted(table, key=len, reverse=True)))
    return pattern.sub(lambda m: table[m.group(0)], text)


def _comment_lines(text: str) -> dict[int, str]:
    """0-based line -> text, for lines that are nothing but a comment (so docstrings never count)."""
    out = {}
    lines = text.splitlines()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                row = tok.start[0] - 1
                if row < len(lines) and lines[row].lstrip().startswith("#"):
                    out[row] = lines[row]
    except (tokenize.TokenError, SyntaxError):  # pragma: no cover - reported by the ast parse below
        pass
    return out


def _markers(text: str) -> tuple[list[_Marker], list[tuple[int, str, str]]]:
    markers, errors = [], []
    for row, line in sorted(_comment_lines(text).items()):
        match = _MARKER.match(line)
        if not match:
            continue
        try:
            replacements = _parse_replacements(match.group("rest"))
        except ValueError as err:
            errors.append((row, match.group("target"), str(err)))
            continue
        markers.append(_Marker(row, match.group("indent"), match.group("target"), replacements))
    return markers, errors


def resolve(target: str, root: Path = REPO_ROOT) -> tuple[Path, list[str]] | None:
    """`a.b.c.Obj.meth` -> (`root/a/b/c.py`, ["Obj", "meth"]): the longest prefix that is a module file."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:i])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate, parts[i:]
    return None


_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _span(node) -> tuple[int, int]:
    """0-based [start, end) lines of a class / def, decorators included."""
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return start - 1, node.end_lineno


def _find(tree: ast.Module, qualname: list[str]):
    body, node = tree.body, None
    for name in qualname:
        node = next((n for n in body if isinstance(n, _DEFS) and n.name == name), None)
        if node is None:
            return None
        body = node.body
    return node


def _reindent(lines: list[str], indent: str) -> str:
    first = lines[0]
    base = first[: len(first) - len(first.lstrip())]
    out = []
    for line in lines:
        if not line.strip():
            out.append("\n" if line.endswith("\n") else "")
        else:
            out.append(indent + (line[len(base):] if line.startswith(base) else line.lstrip()))
    return "".join(out)


def _check_file(path: Path, root: Path) -> list[Drift]:
    text = path.read_text(encoding="utf-8")
    markers, errors = _markers(text)
    drifts = [Drift(path, row + 1, target, f"bad `Copied from` marker: {msg}") for row, target, msg in errors]
    if not markers:
        return drifts
    lines = text.splitlines(True)
    tree = None
    for marker in markers:
        found = resolve(marker.target, root)
        if found is None:
            drifts.append(Drift(path, marker.line + 1, marker.target,
                                f"source {marker.target} not found under {root}"))
            continue
        source_path, qualname = found
        source_text = source_path.read_text(encoding="utf-8")
        if not qualname:  # a whole file
            if marker.line != 0 or marker.indent:
                drifts.append(Drift(path, marker.line + 1, marker.target,
                                    "a whole-file `Copied from` marker must be the file's first line"))
                continue
            expected, actual = _apply(source_text, marker.replacements), "".join(lines[1:])
            if expected != actual:
                drifts.append(Drift(path, 1, marker.target, f"differs from {marker.target} (whole file)",
                                    expected, actual, (1, len(lines)), whole_file=True))
            continue
        source_node = _find(ast.parse(source_text), qualname)
        if source_node is None:
            drifts.append(Drift(path, marker.line + 1, marker.target,
                                f"{source_path.name} defines no class or function {'.'.join(qualname)}"))
            continue
        if tree is None:
            try:
                tree = ast.parse(text)
            except SyntaxError as err:
                drifts.append(Drift(path, err.lineno or 1, marker.target, f"cannot parse the copy: {err.msg}"))
                return drifts
        copy_node = next((n for n in ast.walk(tree) if isinstance(n, _DEFS) and _span(n)[0] == marker.line + 1), None)
        if copy_node is None:
            drifts.append(Drift(path, marker.line + 1, marker.target,
                                "`Copied from` must sit right above a class or def (or its first decorator)"))
            continue
        start, end = _span(source_node)
        src_lines = source_text.splitlines(True)[start:end]
        if src_lines and not src_lines[-1].endswith("\n"):
            src_lines[-1] += "\n"
        expected = _reindent([_apply(line, marker.replacements) for line in src_lines], marker.indent)
        c_start, c_end = _span(copy_node)
        actual = "".join(lines[c_start:c_end])
        if actual and not actual.endswith("\n"):
            actual += "\n"
        if expected != actual:
            drifts.append(Drift(path, marker.line + 1, marker.target, f"differs from {marker.target}",
                                expected, actual, (c_start, c_end)))
    return drifts


def _fix_file(path: Path, drifts: list[Drift]) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(True)
    whole = next((d for d in drifts if d.whole_file and d._span is not None), None)
    if whole is not None:  # the whole file comes from its source: object copies inside it follow
        path.write_text(lines[0] + whole.expected, encoding="utf-8")
        return
    for drift in sorted((d for d in drifts if d._span is not None), key=lambda d: d._span[0], reverse=True):
        start, end = drift._span
        lines[start:end] = drift.expected.splitlines(True)
    path.write_text("".join(lines), encoding="utf-8")


def python_files(paths, root: Path) -> list[Path]:
    out = []
    for p in paths:
        p = Path(p)
        p = p if p.is_absolute() else root / p
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out += [f for f in sorted(p.rglob("*.py")) if "__pycache__" not in f.parts]
    return out


def check_copies(paths=DEFAULT_PATHS, *, root: str | Path = REPO_ROOT, fix: bool = False) -> list[Drift]:
    """Every drifted copy (or unusable marker) in the `.py` files under `paths` (relative to `root`).

    With `fix=True` the drifted copies are rewritten from their sources (markers that cannot be resolved
    are left alone and still returned). Returns what was found before fixing.
    """
    root = Path(root).resolve()
    found = []
    for path in python_files(paths, root):
        drifts = _check_file(path, root)
        if fix and any(d._span is not None for d in drifts):
            _fix_file(path, drifts)
        found += drifts
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m affectlab.testing.check_copies",
                                     description="Check that `# Copied from` copies equal their sources.")
    parser.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS),
                        help=f"files or folders to scan, relative to --root (default: {' '.join(DEFAULT_PATHS)})")
    parser.add_argument("--root", default=str(REPO_ROOT), help="where dotted source names resolve (the repository)")
    parser.add_argument("--fix", action="store_true", help="rewrite drifted copies from their sources")
    args = parser.parse_args(argv)
    drifts = check_copies(args.paths, root=args.root, fix=args.fix)
    for drift in drifts:
        fixed = args.fix and drift._span is not None
        print(f"{drift}{' (fixed)' if fixed else ''}", file=sys.stderr)
        if not fixed and drift.diff():
            print(drift.diff(), file=sys.stderr)
    unfixed = [d for d in drifts if not (args.fix and d._span is not None)]
    if unfixed:
        print(f"{len(unfixed)} copy problem(s); edit the source and run with --fix", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
