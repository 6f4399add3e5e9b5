"""Checks for the tools a local Kafka needs, each reported by name with its install line."""

from __future__ import annotations

import re
import shutil
import subprocess

JAVA_INSTALL = "apt-get install -y openjdk-17-jre-headless"
MAVEN_INSTALL = "apt-get install -y maven"


class MissingPrerequisite(RuntimeError):
    """A tool Inbound needs is missing; the message says how to install it."""


def java_executable() -> str:
    java = shutil.which("java")
    if not java:
        raise MissingPrerequisite(
            f"Java 17+ is required to run Kafka and was not found. Install it: {JAVA_INSTALL}"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if match and int(match.group(1)) < 17:
        raise MissingPrerequisite(
            f"Kafka 4.x needs Java 17 or newer; found Java {match.group(1)}. Install it: {JAVA_INSTALL}"
        )
    return java


def maven_executable() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise MissingPrerequisite(
            f"Maven is required once to fetch Apache Kafka's jars and was not found. Install it: {MAVEN_INSTALL}"
        )
    return mvn
