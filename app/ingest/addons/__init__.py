"""Data-enrichment add-ons: the registry the worker builds once, and each add-on."""

from app.ingest.addons.registry import Addon, AddonRegistry

__all__ = ["Addon", "AddonRegistry"]
