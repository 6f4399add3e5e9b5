"""Reading values out of a Prometheus text exposition (what a /metrics endpoint answers)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample: (name, sorted labels) -> value."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """One sample's value; None when the exposition does not have it."""
    return samples(text).get((name, tuple(sorted(labels.items()))))


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    """label value -> sample value, for every sample of ``name``."""
    return {
        dict(lbls)[label]: v
        for (n, lbls), v in samples(text).items()
        if n == name and label in dict(lbls)
    }
