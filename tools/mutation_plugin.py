"""A pytest plugin for mutation runs only (tools/mutation.py loads it with ``-p``).

mutmut runs the tests several times in one process (stats, clean run, forced failure). Several
of app's functions are memoised with ``functools.lru_cache`` (the collection rule per topic, a
dead letter's headers): a cache filled by one run answers the next, so the code under test is
never reached and mutmut's "every mutant fails" self-check, and any mutant behind a warm cache,
would wrongly pass. Emptying app's caches before each test makes every test compute afresh.
"""

from __future__ import annotations

import sys

import pytest


def _clear_app_caches() -> None:
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "app" or name.startswith("app.")):
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:  # noqa: ARG001 - pytest's hook signature
    _clear_app_caches()
