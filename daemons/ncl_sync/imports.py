"""The files a Nickel file imports, found by reading its source, and confined to its roots.

Nickel only imports static string literals (`import "a.ncl"`, `import m%"a.ncl"%`), so a
small scanner that knows comments, strings and `%{…}` interpolations (which are code again)
finds every import without evaluating anything. An import resolves against the importing
file's directory and against every import path; each candidate that exists must lie, after
following symlinks, inside one of the roots, so no order of Nickel's search can reach out.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from registry.errors import Forbidden, InvalidInput

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "%": "%"}
_MULTILINE_OPEN = re.compile(r'm(%+)"')


@dataclass(frozen=True)
class ImportGraph:
    """A file with its transitive imports (resolved, sorted) and every file's bytes."""

    root: Path
    imports: tuple[Path, ...]
    digests: dict[Path, bytes]
    """SHA-256 of each file's bytes."""


_CODE = re.compile(r"#[^\n]*|m(%+)\"|\"|\{|\}|(?<![\w'-])import(?![\w'-])")
_IN_STRING = re.compile(r'\\.|"|%\{', re.DOTALL)
_SPACE = re.compile(r"(?:\s|#[^\n]*)*")


class _Scanner:
    """Walks Nickel source token by token (regex jumps), collecting static import paths."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.found: list[str] = []

    def code(self, i: int, nested: bool) -> int:
        """Scan code from `i`; nested (an interpolation): return the index after its `}`."""
        depth = 0
        while (token := _CODE.search(self.src, i)) is not None:
            text, i = token.group(), token.end()
            if text == "{":
                depth += 1
            elif text == "}":
                if nested and depth == 0:
                    return i
                depth = max(0, depth - 1)
            elif text == "import":
                i = self._import(i)
            elif text == '"' or token.group(1):
                i = self.literal(token.start())[1]
        return len(self.src)

    def _import(self, i: int) -> int:
        at = _SPACE.match(self.src, i).end()  # type: ignore[union-attr]  # matches empty
        literal = self.literal(at)
        if literal[1] == at:
            return at  # not a string: Nickel's parser refuses it; nothing to read
        if literal[0] is None:
            raise InvalidInput("an import path must be a plain string literal")
        self.found.append(literal[0])
        return literal[1]

    def literal(self, i: int) -> tuple[str | None, int]:
        """The string at `i` (None if interpolated) and the index after it; (None, i) if none."""
        if self.src.startswith('"', i):
            return self._string(i + 1)
        opening = _MULTILINE_OPEN.match(self.src, i)
        if opening:
            return self._multiline(opening.end(), opening.group(1))
        return None, i

    def _string(self, i: int) -> tuple[str | None, int]:
        out: list[str] = []
        static = True
        while (token := _IN_STRING.search(self.src, i)) is not None:
            out.append(self.src[i : token.start()])
            text, i = token.group(), token.end()
            if text == '"':
                return ("".join(out) if static else None), i
            if text == "%{":
                static, i = False, self.code(i, nested=True)
            else:
                out.append(_ESCAPES.get(text[1], text[1]))
        return None, len(self.src)

    def _multiline(self, i: int, percents: str) -> tuple[str | None, int]:
        close, hole = '"' + percents, percents + "{"
        token = re.compile(re.escape(close) + "|" + re.escape(hole))
        out: list[str] = []
        static = True
        while (found := token.search(self.src, i)) is not None:
            out.append(self.src[i : found.start()])
            i = found.end()
            if found.group() == close:
                return ("".join(out) if static else None), i
            static, i = False, self.code(i, nested=True)
        return None, len(self.src)


def import_literals(src: str) -> list[str]:
    """Every path `src` imports, in order; comments and string contents are not code."""
    scanner = _Scanner(src)
    scanner.code(0, nested=False)
    return scanner.found


def _confined(real: str, roots: tuple[str, ...]) -> bool:
    """`real` (symlinks resolved) lies inside one of `roots` (each resolved)."""
    return any(real == root or real.startswith(root + os.sep) for root in roots)


def _resolve(spec: str, importer: Path, search: tuple[Path, ...], roots: tuple[str, ...]) -> Path:
    """The file `spec` names from `importer`; refuses when any existing candidate is outside."""
    raw = Path(spec)
    if raw.is_absolute():
        candidates = [raw]
    else:
        bases = dict.fromkeys((importer.parent, *search))
        candidates = [c for c in (b / raw for b in bases) if c.exists()]
    reals = [os.path.realpath(c) for c in candidates]
    for real in reals:
        if not _confined(real, roots):
            raise Forbidden(
                f"{importer.name} imports {spec!r}, which resolves outside the workspace "
                f"({real}); keep imports inside it or list the directory in "
                "extra_import_paths (config/ncl-sync.ncl)",
                details={"import": spec, "importer": str(importer), "resolved": real},
            )
    if not reals or not Path(reals[0]).is_file():
        raise InvalidInput(
            f"{importer.name} imports {spec!r}, which does not exist",
            details={"import": spec, "importer": str(importer)},
        )
    return Path(reals[0])


def import_graph(target: Path, search: tuple[Path, ...]) -> ImportGraph:
    """Read `target` and everything it imports, transitively; every file inside `search`."""
    roots = tuple(os.path.realpath(p) for p in search)
    digests: dict[Path, bytes] = {}
    root = Path(os.path.realpath(target))
    if not _confined(str(root), roots):
        raise Forbidden(f"{target} is outside the workspace", details={"path": str(target)})
    todo = [root]  # every path below comes from `_resolve`: real and confined
    while todo:
        path = todo.pop()
        if path in digests:
            continue
        data = path.read_bytes()
        digest = digests[path] = hashlib.sha256(data).digest()
        if path.suffix != ".ncl":
            continue  # JSON, YAML, TOML and text imports import nothing
        for spec in _imports_of(digest, data):
            todo.append(_resolve(spec, path, search, roots))
    imports = tuple(sorted(p for p in digests if p != root))
    return ImportGraph(root, imports, digests)


_SCANNED: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()
_SCANNED_KEPT = 4096
_SCANNED_LOCK = threading.Lock()


def _imports_of(digest: bytes, data: bytes) -> tuple[str, ...]:
    """`import_literals` of `data`, remembered by content digest (same bytes, same imports)."""
    with _SCANNED_LOCK:
        if digest in _SCANNED:
            _SCANNED.move_to_end(digest)
            return _SCANNED[digest]
    specs = tuple(import_literals(data.decode("utf-8", errors="replace")))
    with _SCANNED_LOCK:
        _SCANNED[digest] = specs
        if len(_SCANNED) > _SCANNED_KEPT:
            _SCANNED.popitem(last=False)
    return specs
