"""Fetches Apache Kafka's jars (broker, console tools, logging binding) with Maven, once."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import deque
from importlib import resources
from pathlib import Path
from typing import IO

from app.kafka.prerequisites import maven_executable

_DOWNLOADED = re.compile(r"Downloaded from [^:]+: \S+ \(([\d.,]+) (B|kB|KB|MB|GB)\b")
_DOWNLOADING = re.compile(r"Downloading from [^:]+: ")
_UNITS = {"B": 1, "kB": 1000, "KB": 1024, "MB": 1000**2, "GB": 1000**3}
# Off a terminal (a log, `inbound up` in CI) the progress line is written again at most this often.
PROGRESS_EVERY_SECONDS = 5.0

KAFKA_VERSION = "4.3.1"
_MARKER = ".complete"


def libs_dir(cache_dir: Path) -> Path:
    return cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"


def classpath(cache_dir: Path) -> str:
    return str(libs_dir(cache_dir) / "*")


def ensure_jars(cache_dir: Path, *, quiet: bool = False) -> Path:
    """Return the directory of Kafka's jars, fetching them with Maven if not cached yet."""
    libs = libs_dir(cache_dir)
    if (libs / _MARKER).exists():
        return libs
    mvn = maven_executable()
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pom = staging.parent / "kafka-deps.pom"
    pom.write_bytes(resources.files("app.kafka").joinpath("kafka-deps.pom").read_bytes())
    if not quiet:
        print(
            f"Fetching Apache Kafka {KAFKA_VERSION} jars with Maven (once) into {libs} ...",
            file=sys.stderr,
            flush=True,
        )
    # Batch mode without -q: Maven says "Downloaded from <repo>: <url> (<size> at <rate>)" per
    # file, which the progress line counts.
    cmd = [
        mvn,
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    progress = _Progress(None if quiet else sys.stderr)
    tail: deque[str] = deque(maxlen=20)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if not progress.feed(line):
            tail.append(line.rstrip("\n"))
    returncode = proc.wait()
    progress.done(ok=returncode == 0)
    if returncode != 0:
        raise RuntimeError(
            f"Maven could not fetch Apache Kafka {KAFKA_VERSION}:\n" + "\n".join(tail)
        )
    (staging / _MARKER).write_text(KAFKA_VERSION)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs


class _Progress:
    """One progress line while Maven downloads: rewritten in place on a terminal, else repeated
    at most every PROGRESS_EVERY_SECONDS."""

    def __init__(self, out: IO[str] | None) -> None:
        self.out = out
        self.files = 0
        self.size = 0.0
        self.started = time.monotonic()
        self.last_line = 0.0
        self.tty = bool(out is not None and getattr(out, "isatty", lambda: False)())

    def feed(self, line: str) -> bool:
        """Count ``line`` if it is a download; True when it was one (not worth keeping)."""
        match = _DOWNLOADED.search(line)
        if match:
            self.files += 1
            self.size += float(match.group(1).replace(",", "")) * _UNITS[match.group(2)]
            self._show()
            return True
        return bool(_DOWNLOADING.search(line))

    def text(self) -> str:
        seconds = time.monotonic() - self.started
        return (
            f"Fetching Kafka jars: {self.files} files, {self.size / 1e6:.1f} MB downloaded "
            f"({seconds:.0f} s)"
        )

    def _show(self) -> None:
        if self.out is None:
            return
        if self.tty:
            self.out.write("\r" + self.text() + "\033[K")
            self.out.flush()
        elif self.files == 1 or time.monotonic() - self.last_line >= PROGRESS_EVERY_SECONDS:
            self.last_line = time.monotonic()
            print(self.text() + " ...", file=self.out, flush=True)

    def done(self, ok: bool) -> None:
        if self.out is None or not self.files:
            return
        end = "done" if ok else "failed"
        if self.tty:
            self.out.write("\r" + self.text() + f": {end}\033[K\n")
            self.out.flush()
        else:
            print(self.text() + f": {end}", file=self.out, flush=True)
