"""Fetches Apache Kafka's jars (broker, console tools, logging binding) with Maven, once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from app.kafka.prerequisites import maven_executable

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
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise RuntimeError(f"Maven could not fetch Apache Kafka {KAFKA_VERSION}:\n{tail}")
    (staging / _MARKER).write_text(KAFKA_VERSION)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs
