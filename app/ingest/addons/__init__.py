"""Data-enrichment add-ons (spec §4): the registry the worker builds once, and each add-on."""

from app.ingest.addons.registry import Addon, AddonRegistry

__all__ = ["Addon", "AddonRegistry"]
