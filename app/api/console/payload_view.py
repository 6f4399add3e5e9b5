"""Attacker-controlled bytes and text as safe HTML: every piece goes through markupsafe's
``escape``, invisible and direction-changing characters are shown as ``\\uXXXX`` escapes
(so a U+202E cannot reorder what follows it), and the offending property of a payload is
wrapped in ``<mark>``.

The property path is found by walking the parsed payload and building each node's path with
the worker's own rule (``a.b[3].c``, see app/ingest/steps/properties.py), then comparing the
strings: nothing parses the path, so a name holding ``.`` or ``[`` cannot mislead it.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from app.contract.fingerprint import normalize_path

HEX_SHOWN = 16 * 1024
# Characters drawn as an escape: controls, format characters (bidi overrides, zero-width
# joiners, BOM), line/paragraph separators, lone surrogates, private use.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
_PATH_CAP = 300  # app/ingest/steps/properties.py caps reported paths at 300 characters


def _hidden(ch: str) -> bool:
    return ch > "~" and unicodedata.category(ch) in _HIDDEN or ch < " " or ch == "\x7f"


def _escape_char(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(text: str | None, *, keep_newlines: bool = False) -> Markup:
    """``text`` escaped for HTML, each hidden character as a marked ``\\uXXXX``."""
    if not text:
        return Markup("")
    out: list[str] = []
    plain: list[str] = []
    for ch in text:
        if keep_newlines and ch in "\n\t":
            plain.append(ch)
        elif _hidden(ch):
            if plain:
                out.append(str(escape("".join(plain))))
                plain = []
            out.append(f'<span class="ctl">{escape(_escape_char(ch))}</span>')
        else:
            plain.append(ch)
    if plain:
        out.append(str(escape("".join(plain))))
    return Markup("".join(out))


def _json_string(text: str) -> Markup:
    """A JSON string literal: quotes and backslashes escaped, hidden characters shown."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return Markup('<span class="s">"') + visible(quoted) + Markup('"</span>')


class _Number(str):
    """A number kept as it was written (1.50 stays 1.50)."""


@dataclass
class _Printer:
    target: str | None
    # Second pass: compare fingerprint-normalized paths ("items[].$price"), for a payload
    # whose exact path is not there (a replayed, edited or differently indexed copy).
    loose: bool = False
    marks: int = 0

    def _matches(self, path: str) -> bool:
        if self.target is None:
            return False
        if self.loose:
            return normalize_path(path) == self.target
        if path == self.target:
            return True
        # A reported path over the cap ends in "…" after its first 300 characters.
        return (
            self.target.endswith("…")
            and len(path) > _PATH_CAP
            and path[:_PATH_CAP] + "…" == self.target
        )

    def _mark(self, inner: Markup) -> Markup:
        self.marks += 1
        anchor = ' id="highlight"' if self.marks == 1 else ""
        return Markup(f"<mark{anchor}>") + inner + Markup("</mark>")

    def value(self, node: Any, path: str, indent: int) -> Markup:
        pad = "  " * indent
        if isinstance(node, _Pairs):
            if not node:
                return Markup("{}")
            lines = []
            for i, (name, child) in enumerate(node):
                child_path = f"{path}.{name}" if path else name
                key = _json_string(name)
                body = self.value(child, child_path, indent + 1)
                if self._matches(child_path):
                    if isinstance(child, _Pairs | list) and child:
                        key = self._mark(key)
                    else:
                        key, body = self._mark(key + Markup(": ") + body), Markup("")
                sep = Markup(": ") if body else Markup("")
                comma = Markup(",") if i < len(node) - 1 else Markup("")
                lines.append(Markup(pad + "  ") + key + sep + body + comma)
            return Markup("{\n") + Markup("\n").join(lines) + Markup(f"\n{pad}}}")
        if isinstance(node, list):
            if not node:
                return Markup("[]")
            lines = []
            for i, child in enumerate(node):
                child_path = f"{path}[{i}]"
                body = self.value(child, child_path, indent + 1)
                if self._matches(child_path):
                    body = self._mark(body)
                comma = Markup(",") if i < len(node) - 1 else Markup("")
                lines.append(Markup(pad + "  ") + body + comma)
            return Markup("[\n") + Markup("\n").join(lines) + Markup(f"\n{pad}]")
        if isinstance(node, str) and not isinstance(node, _Number):
            return _json_string(node)
        if node is None:
            return Markup('<span class="k">null</span>')
        if node is True or node is False:
            return Markup(f'<span class="k">{"true" if node else "false"}</span>')
        return Markup('<span class="n">') + escape(str(node)) + Markup("</span>")


class _Pairs(list):
    """A JSON object as its (name, value) pairs in order, duplicates kept."""


@dataclass(frozen=True)
class PrettyPayload:
    html: Markup
    highlighted: bool


def pretty_json(text: str, path: str | None) -> PrettyPayload | None:
    """The payload pretty-printed with ``path`` marked; None when it is not JSON (or nests
    too deeply to print)."""
    try:
        parsed = json.loads(
            text,
            object_pairs_hook=_Pairs,
            parse_float=_Number,
            parse_int=_Number,
            parse_constant=_Number,
        )
        printer = _Printer(path if path else None)
        html = printer.value(parsed, "", 0)
        if path and printer.marks == 0:
            printer = _Printer(normalize_path(path), loose=True)
            html = printer.value(parsed, "", 0)
    except (ValueError, RecursionError):
        return None
    return PrettyPayload(html=html, highlighted=printer.marks > 0)


def text_with_mark(text: str, char_offset: Any) -> Markup:
    """Raw text (newlines kept), the character at ``char_offset`` marked when it is one."""
    if type(char_offset) is not int or not 0 <= char_offset < len(text):
        return visible(text, keep_newlines=True)
    before, at, after = text[:char_offset], text[char_offset], text[char_offset + 1 :]
    marked = Markup('<mark id="highlight">') + visible(at) + Markup("</mark>")
    return visible(before, keep_newlines=True) + marked + visible(after, keep_newlines=True)


def hex_lines(raw: bytes, limit: int = HEX_SHOWN) -> list[tuple[str, str, str]]:
    """(offset, hex bytes, printable ASCII) per 16 bytes, for the first ``limit`` bytes."""
    rows = []
    for start in range(0, min(len(raw), limit), 16):
        chunk = raw[start : start + 16]
        hexed = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        rows.append((f"{start:08x}", hexed, text))
    return rows


def bytes_text(raw: bytes | None) -> str | None:
    """The bytes as UTF-8 text, or None when they are not UTF-8."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
