"""keen:ua_parser with the ua-parser package (uap-core rules; the Rust matcher when installed).

Output, as Keen documents it: ``{device: {family, type}, browser: {family, major, minor,
patch, patch_minor}, os: {family, major, minor, patch, patch_minor}}``. Versions are numbers,
null when the string has none (a version that is not a plain decimal number, e.g. ``0b3``,
is null too, so a field never mixes numbers and strings). Unknown families are ``"Other"``
(uap-core's word).

ua-parser gives no device type, so ``device.type`` is derived here in Keen's words:
``"mobile phone"``, ``"tablet"``, ``"desktop"``; crawlers get ``"bot"`` (our word, Keen names
none). When the string says too little, ``type`` is left out, as Keen leaves it out.
"""

from __future__ import annotations

from typing import Any

import ua_parser

# Real user-agent strings stay well under this; the cap bounds matcher time on hostile input.
MAX_UA_CHARS = 1024
# Longer digit runs are not versions, and would overflow the 64-bit integers JSON stores.
_MAX_VERSION_DIGITS = 18

MOBILE_PHONE, TABLET, DESKTOP, BOT = "mobile phone", "tablet", "desktop", "bot"

_MOBILE_OS = frozenset(
    {
        "iOS",
        "Android",
        "Windows Phone",
        "BlackBerry OS",
        "KaiOS",
        "Symbian OS",
        "Firefox OS",
        "HarmonyOS",
        "Tizen",
        "webOS",
        "Sailfish",
    }
)
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "Fedora",
        "Debian",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
        "Red Hat",
        "Mint",
        "Arch Linux",
        "macOS",
    }
)


def parse_user_agent(ua_string: Any) -> dict[str, Any]:
    text = ua_string[:MAX_UA_CHARS] if type(ua_string) is str else ""
    result = ua_parser.parse(text).with_defaults()
    browser, system, device = result.user_agent, result.os, result.device
    found_device: dict[str, Any] = {"family": device.family}
    kind = _device_type(text, system.family, device)
    if kind is not None:
        found_device["type"] = kind
    return {
        "device": found_device,
        "browser": {
            "family": browser.family,
            "major": _number(browser.major),
            "minor": _number(browser.minor),
            "patch": _number(browser.patch),
            "patch_minor": _number(browser.patch_minor),
        },
        "os": {
            "family": system.family,
            "major": _number(system.major),
            "minor": _number(system.minor),
            "patch": _number(system.patch),
            "patch_minor": _number(system.patch_minor),
        },
    }


def _number(version: str | None) -> int | None:
    if (
        version is None
        or not version.isascii()
        or not version.isdigit()
        or len(version) > _MAX_VERSION_DIGITS
    ):
        return None
    return int(version)


def _device_type(text: str, os_family: str, device: Any) -> str | None:
    family = device.family or ""
    if family == "Spider":
        return BOT
    if (
        family.startswith(("iPad", "Kindle"))
        or "Tablet" in family
        or "Tablet" in text
        or (os_family == "Android" and "Mobile" not in text)
    ):
        return TABLET
    if os_family in _MOBILE_OS or "Mobi" in text:
        return MOBILE_PHONE
    if os_family in _DESKTOP_OS:
        return DESKTOP
    return None
