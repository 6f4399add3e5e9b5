"""keen:ua_parser with the ua-parser package (uap-core rules; the Rust matcher when installed).

Output: ``{browser: {family, major, minor, patch}, os: {family, major, minor, patch,
patch_minor}, device: {family, type}}``. Unknown families are ``"Other"`` (uap-core's word),
unknown versions null. ua-parser gives no device type, so ``device.type`` is derived here
(our choice): ``"bot"``, ``"tablet"``, ``"mobile"``, ``"desktop"``, or null when the string
says too little.
"""

from __future__ import annotations

from typing import Any

import ua_parser

# Real user-agent strings stay well under this; the cap bounds matcher time on hostile input.
MAX_UA_CHARS = 1024

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
    return {
        "browser": {
            "family": browser.family,
            "major": browser.major,
            "minor": browser.minor,
            "patch": browser.patch,
        },
        "os": {
            "family": system.family,
            "major": system.major,
            "minor": system.minor,
            "patch": system.patch,
            "patch_minor": system.patch_minor,
        },
        "device": {"family": device.family, "type": _device_type(text, system.family, device)},
    }


def _device_type(text: str, os_family: str, device: Any) -> str | None:
    family = device.family or ""
    if family == "Spider":
        return "bot"
    if (
        family.startswith(("iPad", "Kindle"))
        or "Tablet" in family
        or "Tablet" in text
        or (os_family == "Android" and "Mobile" not in text)
    ):
        return "tablet"
    if os_family in _MOBILE_OS or "Mobi" in text:
        return "mobile"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return None
