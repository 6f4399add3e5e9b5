"""The first run's Maven download shows a progress line (files, megabytes) instead of
minutes of silence; a failed download still quotes Maven's error."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.kafka import jars

FAKE_MVN = """#!/bin/sh
# Stands in for Maven: the lines `mvn -B` prints while it downloads, then the copy.
for n in 1 2 3; do
  echo "[INFO] Downloading from central: https://repo.example/k/k$n.jar"
  echo "[INFO] Downloaded from central: https://repo.example/k/k$n.jar (1.5 MB at 3.0 MB/s)"
done
echo "[INFO] Downloaded from central: https://repo.example/k/k.pom (512 kB at 1 MB/s)"
if [ -n "$FAKE_MVN_FAIL" ]; then echo "[ERROR] Could not resolve dependencies"; exit 1; fi
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) touch "${arg#-DoutputDirectory=}/kafka.jar";; esac
done
"""


@pytest.fixture
def fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MVN)
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.usefixtures("fake_mvn")
def test_download_progress_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    libs = jars.ensure_jars(tmp_path / "cache")
    assert (libs / "kafka.jar").exists()
    err = capsys.readouterr().err
    # Not a terminal: the first download and the end are written (more only every few seconds).
    assert "Fetching Kafka jars: 1 files, 1.5 MB downloaded" in err, err
    assert "Fetching Kafka jars: 4 files, 5.0 MB downloaded" in err and err.rstrip().endswith(
        ": done"
    ), err
    # Cached now: nothing fetched, nothing said.
    jars.ensure_jars(tmp_path / "cache")
    assert capsys.readouterr().err == ""


@pytest.mark.usefixtures("fake_mvn")
def test_failed_download_quotes_maven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MVN_FAIL", "1")
    with pytest.raises(RuntimeError, match="Could not resolve dependencies") as caught:
        jars.ensure_jars(tmp_path / "cache")
    assert "Downloaded from" not in str(caught.value)
    assert capsys.readouterr().err.rstrip().endswith(": failed")


@pytest.mark.usefixtures("fake_mvn")
def test_quiet_says_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jars.ensure_jars(tmp_path / "cache", quiet=True)
    assert capsys.readouterr().err == ""
