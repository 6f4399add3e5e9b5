"""Mutation testing of the modules that carry Inbound's promises, with mutmut 3.

    python3 tools/mutation.py                 # every module in tools/mutation.toml
    python3 tools/mutation.py app/contract/topics.py app/webhooks/signing.py
    python3 tools/mutation.py --list          # the modules and their unit tests
    python3 tools/mutation.py --survivors     # also print each surviving mutant's diff
    python3 tools/mutation.py --last --survivors app/ingest/router.py  # the last run, no rerun

It prints, per module, how many mutants the fast unit tests killed (killed / total, %).

Environments, made on first use so one command works on a fresh clone:

- ``.venv``, the project's own (``make`` builds it; this script runs the same Makefile target
  when it is missing). The tests import the project's dependencies from it; nothing is
  installed into it here.
- ``.mutvenv``, mutmut's own venv (the version pinned in tools/mutation.toml). It is separate
  because mutmut 3 needs click >= 8.4.2 and faust-streaming pins click < 8.4: installed side by
  side in one venv they break the project. A ``.pth`` line puts ``.venv``'s site-packages
  *after* mutmut's own, so mutmut keeps its click and the tests find everything else.

The run happens in a scratch copy (``.mutation/``, rebuilt each time): mutmut 3 rewrites the
tree it runs in (``mutants/``) and reads its settings from a setup.cfg, and the working tree is
shared with people editing it. Both directories are git-ignored, so ruff and git skip them.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tools" / "mutation.toml"
PROJECT_VENV = ROOT / ".venv"
MUT_VENV = ROOT / ".mutvenv"
SCRATCH = ROOT / ".mutation"
# What the tests need from the tree; docs and README.md too, since tests pin promises from them.
COPIED = ("app", "tests", "tools", "migrations", "docs", "openapi", "pyproject.toml", "README.md")

# mutmut's exit codes per mutant (mutmut/stats.py). A timeout is a kill: the mutant made the
# tests hang, which a test run notices. "no tests" is not: nothing reached the mutated code.
KILLED = {1, 3, 36, 24, -24, 152, 255, 37}
SURVIVED = {0}
NO_TESTS = {5, 33}


@dataclass(frozen=True)
class Score:
    module: str
    killed: int
    survived: int
    no_tests: int
    other: int

    @property
    def total(self) -> int:
        return self.killed + self.survived + self.no_tests + self.other

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.total if self.total else 100.0


def load_modules() -> dict[str, list[str]]:
    data = tomllib.loads(CONFIG.read_text())
    return {module: list(tests) for module, tests in data["modules"].items()}


def requirement() -> str:
    return str(tomllib.loads(CONFIG.read_text())["tool"]["requirement"])


def run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def ensure_project_venv() -> Path:
    python = PROJECT_VENV / "bin" / "python"
    if not python.exists():
        # The project's own recipe, so the tests run against what `make test` would install.
        run(["make", "-C", str(ROOT), ".venv/.installed"])
    return python


def ensure_mutmut(project_python: Path) -> Path:
    mutmut = MUT_VENV / "bin" / "mutmut"
    stamp = MUT_VENV / ".requirement"
    wanted = requirement()
    if not mutmut.exists() or not stamp.exists() or stamp.read_text() != wanted:
        run([sys.executable, "-m", "venv", "--clear", str(MUT_VENV)])
        run([str(MUT_VENV / "bin" / "pip"), "install", "-q", wanted])
        stamp.write_text(wanted)
    # A plain path line (not `import ...`): .venv's own .pth files, like its editable-install
    # finder that maps `app` to the working tree, must not run here, or the tests would import
    # the unmutated code instead of mutmut's copy.
    site = subprocess.run(
        [str(project_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    mut_site = subprocess.run(
        [
            str(MUT_VENV / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(mut_site) / "inbound-project-venv.pth").write_text(site + "\n")
    return mutmut


def prepare_scratch(modules: dict[str, list[str]]) -> list[str]:
    """A fresh copy of the tree with mutmut's setup.cfg; returns the test files used."""
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, SCRATCH / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, SCRATCH / name)
    tests: list[str] = []
    for module, files in modules.items():
        for test in files:
            if not (ROOT / test).exists():
                print(f"note: {test} (for {module}) does not exist; skipped", file=sys.stderr)
            elif test not in tests:
                tests.append(test)
    cfg = configparser.ConfigParser()
    cfg["mutmut"] = {
        "source_paths": "app",
        "only_mutate": "\n" + "\n".join(modules),
        # No cache dir in the copy; app's lru_caches emptied before each test (see
        # tools/mutation_plugin.py); stop at the first failure: one is all a kill needs.
        "pytest_add_cli_args": "\n-p\nno:cacheprovider\n-p\ntools.mutation_plugin\n-x\n-q",
        "pytest_add_cli_args_test_selection": "\n" + "\n".join(tests),
        # mutmut also copies tests/, pyproject.toml and setup.cfg into mutants/ itself.
        "also_copy": "\ntools\nmigrations\ndocs\nopenapi\nREADME.md",
    }
    with (SCRATCH / "setup.cfg").open("w") as handle:
        cfg.write(handle)
    return tests


def scores(modules: list[str]) -> tuple[list[Score], dict[str, list[str]]]:
    result: list[Score] = []
    survivors: dict[str, list[str]] = {}
    for module in modules:
        meta = SCRATCH / "mutants" / (module + ".meta")
        codes: dict[str, int | None] = {}
        if meta.exists():
            codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        tally = Counter()
        for name, code in codes.items():
            if code in KILLED:
                tally["killed"] += 1
            elif code in SURVIVED:
                tally["survived"] += 1
                survivors.setdefault(module, []).append(name)
            elif code in NO_TESTS:
                tally["no_tests"] += 1
                survivors.setdefault(module, []).append(name)
            else:
                tally["other"] += 1
        result.append(
            Score(module, tally["killed"], tally["survived"], tally["no_tests"], tally["other"])
        )
    return result, survivors


def print_table(rows: list[Score]) -> None:
    width = max(len(r.module) for r in rows)
    print(f"\n{'module':<{width}}  killed / total      %  survived  no tests")
    for r in rows:
        print(
            f"{r.module:<{width}}  {r.killed:>6} / {r.total:<5} {r.percent:6.1f}"
            f"  {r.survived:>8}  {r.no_tests:>8}"
        )
    killed = sum(r.killed for r in rows)
    total = sum(r.total for r in rows)
    pct = 100.0 * killed / total if total else 100.0
    print(f"{'all':<{width}}  {killed:>6} / {total:<5} {pct:6.1f}")


# One process prints every survivor's diff: `mutmut show NAME` per mutant re-reads all the
# mutation data each time (seconds apiece, minutes for a few hundred survivors).
_SHOW_DIFFS = """
import sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
for pair in sys.argv[1:]:
    module, name = pair.split("=", 1)
    print(f"\\n### {module}: {name}")
    print(get_diff_for_mutant(name, path=module))
"""


def print_survivors(survivors: dict[str, list[str]], env: dict[str, str]) -> None:
    pairs = [f"{module}={name}" for module, names in survivors.items() for name in names]
    if pairs:
        python = MUT_VENV / "bin" / "python"
        subprocess.run([str(python), "-c", _SHOW_DIFFS, *pairs], cwd=SCRATCH, env=env, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all configured)")
    parser.add_argument("--list", action="store_true", help="print the module -> tests map")
    parser.add_argument("--survivors", action="store_true", help="print surviving mutants' diffs")
    parser.add_argument(
        "--jobs", type=int, default=2, help="parallel mutants (default 2: a 2-core machine)"
    )
    parser.add_argument(
        "--min-score", type=float, default=None, help="exit 1 if the overall score is below this %"
    )
    parser.add_argument(
        "--last",
        action="store_true",
        help="no run: report the last run's results kept in .mutation/ (with --survivors too)",
    )
    args = parser.parse_args(argv)

    configured = load_modules()
    if args.list:
        for module, tests in configured.items():
            print(module)
            for test in tests:
                print("   ", test)
        return 0
    unknown = [m for m in args.modules if m not in configured]
    if unknown:
        parser.error(f"not in {CONFIG.relative_to(ROOT)}: {', '.join(unknown)}")
    chosen = {m: configured[m] for m in (args.modules or configured)}
    # A module may be listed before it lands (or after it is renamed): skip it, say so.
    for module in [m for m in chosen if not (ROOT / m).exists()]:
        print(f"note: {module} does not exist in this tree; skipped", file=sys.stderr)
        del chosen[module]
    if not chosen:
        parser.error("none of the chosen modules exists")

    if args.last:
        meta = [m for m in chosen if (SCRATCH / "mutants" / (m + ".meta")).exists()]
        if not meta:
            parser.error("no results in .mutation/ for the chosen modules")
        rows, survivors = scores(meta)
        print_table(rows)
        if args.survivors:
            print_survivors(survivors, dict(os.environ))
        return 0

    started = time.monotonic()
    project_python = ensure_project_venv()
    mutmut = ensure_mutmut(project_python)
    prepare_scratch(chosen)
    env = dict(os.environ)
    # Tests must not pick up a live broker or database from the caller's shell.
    for name in ("INBOUND_TEST_KAFKA_BOOTSTRAP", "INBOUND_TEST_POSTGRES_URL"):
        env.pop(name, None)
    proc = subprocess.run(
        [str(mutmut), "run", "--max-children", str(args.jobs)], cwd=SCRATCH, env=env
    )
    rows, survivors = scores(list(chosen))
    print_table(rows)
    print(f"\nmutation run: {time.monotonic() - started:.0f} s (mutmut exit {proc.returncode})")
    if args.survivors:
        print_survivors(survivors, env)
    elif survivors:
        print(
            "survivors: --survivors prints their diffs; `cd .mutation && ../.mutvenv/bin/mutmut browse`"
        )
    if proc.returncode != 0:
        return proc.returncode
    if args.min_score is not None:
        killed = sum(r.killed for r in rows)
        total = sum(r.total for r in rows)
        if total and 100.0 * killed / total < args.min_score:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
