"""The README is the contract with users: its settings table matches the code."""

from __future__ import annotations

from app.settings.doc import README, render_readme


def test_readme_settings_table_is_current() -> None:
    text = README.read_text()
    assert render_readme(text) == text, "run: python -m app.settings.doc --write"


def test_readme_names_the_two_commands() -> None:
    text = README.read_text()
    assert "make up" in text and "make test" in text
