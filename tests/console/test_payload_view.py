"""Attacker-controlled text as HTML (app/api/console/payload_view.py): escaped, hidden and bidi
characters drawn as escapes, the worker's property path marked, hex lines."""

from __future__ import annotations

import json

import pytest

from app.api.console.charts import bar_chart
from app.api.console.payload_view import hex_lines, pretty_json, text_with_mark, visible

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '"><img src=x onerror="window.__pwned=1">'


def test_visible_escapes_markup() -> None:
    assert str(visible(SCRIPT)) == "&lt;script&gt;window.__pwned=1&lt;/script&gt;"
    assert str(visible(IMG)) == "&#34;&gt;&lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt;"
    assert str(visible("javascript:alert(1)")) == "javascript:alert(1)"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\u202eb", 'a<span class="ctl">\\u202e</span>b'),  # RIGHT-TO-LEFT OVERRIDE
        ("\u2066x\u2069", '<span class="ctl">\\u2066</span>x<span class="ctl">\\u2069</span>'),
        ("zero\u200bwidth", 'zero<span class="ctl">\\u200b</span>width'),
        ("nul\x00", 'nul<span class="ctl">\\u0000</span>'),
        ("line\nbreak", 'line<span class="ctl">\\n</span>break'),
        ("\ud800", '<span class="ctl">\\ud800</span>'),  # a lone surrogate cannot be encoded
        ("plain café ✓", "plain café ✓"),
    ],
)
def test_visible_shows_hidden_characters(text: str, shown: str) -> None:
    assert str(visible(text)) == shown


def test_visible_can_keep_newlines() -> None:
    assert str(visible("a\nb\u202e", keep_newlines=True)) == 'a\nb<span class="ctl">\\u202e</span>'


def test_pretty_json_marks_the_worker_path() -> None:
    text = '{"items": [{"sku": 1}, {"$price": 12.50, "n": null}], "a.b": {"c": true}}'
    pretty = pretty_json(text, "items[1].$price")
    assert pretty is not None and pretty.highlighted
    html = str(pretty.html)
    assert html.count("<mark") == 1
    assert (
        '<mark id="highlight"><span class="s">"$price"</span>: <span class="n">12.50</span></mark>'
        in html
    )
    # A name holding "." is one name: "a.b" marks it, not a nested b.
    dotted = str(pretty_json(text, "a.b").html)
    assert '<mark id="highlight"><span class="s">"a.b"</span></mark>: {' in dotted


def test_pretty_json_falls_back_to_the_normalized_location() -> None:
    # The reported index is not in this copy: the problem's rule (indices as []) finds it.
    pretty = pretty_json('{"items": [{"$p": 1}]}', "items[7].$p")
    assert pretty is not None and pretty.highlighted


def test_pretty_json_escapes_hostile_names_and_values() -> None:
    text = json.dumps({SCRIPT: IMG, "k": "\u202e\u0000"})
    html = str(pretty_json(text, SCRIPT).html)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert '<span class="ctl">\\u202e</span><span class="ctl">\\u0000</span>' in html
    # Quotes inside a string are JSON-escaped, then HTML-escaped.
    assert "\\&#34;&gt;&lt;img" in html


def test_pretty_json_keeps_duplicate_names_and_refuses_non_json() -> None:
    html = str(pretty_json('{"a": 1, "a": 2}', None).html)
    assert html.count('"a"') == 2
    assert pretty_json("{nope", None) is None
    assert pretty_json("[" * 100000, None) is None  # too deep to print: shown as text instead


def test_text_with_mark_marks_the_char_offset() -> None:
    assert str(text_with_mark('{"a": <1}', 6)) == '{&#34;a&#34;: <mark id="highlight">&lt;</mark>1}'
    assert str(text_with_mark("abc", 99)) == "abc"
    assert str(text_with_mark("abc", "1")) == "abc"


def test_hex_lines() -> None:
    rows = hex_lines(bytes(range(20)))
    assert rows[0] == (
        "00000000",
        "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
        "................",
    )
    assert rows[1] == ("00000010", "10 11 12 13", "....")
    assert len(hex_lines(b"x" * 100, limit=32)) == 2


def test_bar_chart_scales_to_the_peak_and_shows_a_single_error() -> None:
    chart = bar_chart([0, 1, 1000], ["a", "b", "c"], width=30, height=20)
    assert [b.height for b in chart.bars] == [0.0, 1.0, 20.0]
    assert chart.peak == 1000 and chart.total == 1001
    assert [b.x for b in chart.bars] == [0, 10, 20]
