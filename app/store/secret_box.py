"""Secrets kept encrypted at rest (webhook signing secrets), with Fernet.

The key comes from ``INBOUND_SECRET_KEY``, or, when that is unset, from
``<data_dir>/secret.key``, generated once (mode 0600) on first use. Any string of at least 16
characters may be the setting: the Fernet key is derived from it with SHA-256, so a value from
``openssl rand -base64 32`` or ``Fernet.generate_key()`` serves alike.

Sealed values carry the prefix ``fernet:``. A value without it is a row written before
encryption (plaintext); it is still read as it is, so no data migration is needed, and it is
sealed the next time it is written (rotation).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from app.settings import Settings
from app.store.private import FILE_MODE, ensure_private_dir

PREFIX = "fernet:"
KEY_FILE = "secret.key"
MIN_KEY_LENGTH = 16


class SecretKeyError(RuntimeError):
    """The configured key cannot open a stored secret, or is unusable."""


class SecretBox:
    def __init__(self, key_material: str) -> None:
        if len(key_material) < MIN_KEY_LENGTH:
            raise SecretKeyError(
                f"INBOUND_SECRET_KEY must have at least {MIN_KEY_LENGTH} characters"
            )
        digest = hashlib.sha256(key_material.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before secrets were encrypted
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                "a stored secret does not open with this key: INBOUND_SECRET_KEY (or "
                "<data_dir>/secret.key) is not the key it was sealed with"
            ) from exc

    def open_optional(self, stored: str | None) -> str | None:
        return None if stored is None else self.open(stored)


_lock = threading.Lock()
_boxes: dict[tuple[str, str], SecretBox] = {}


def _read_key_file(path: Path) -> str:
    # Another process may have created the file an instant ago and be writing it.
    for _ in range(100):
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.02)
    raise SecretKeyError(f"{path} is empty; delete it or set INBOUND_SECRET_KEY")


def _key_file_material(data_dir: Path) -> str:
    path = Path(data_dir) / KEY_FILE
    if path.exists():
        return _read_key_file(path)
    ensure_private_dir(path.parent)
    key = Fernet.generate_key().decode("ascii")
    try:
        # O_EXCL: two processes starting at once agree on the first key written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return _read_key_file(path)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def box_for(settings: Settings) -> SecretBox:
    """The box of these settings' key (one per key, made once)."""
    configured = settings.secret_key
    cache_key = ("setting", configured) if configured else ("file", str(settings.data_dir))
    with _lock:
        box = _boxes.get(cache_key)
        if box is None:
            material = configured or _key_file_material(settings.data_dir)
            box = _boxes[cache_key] = SecretBox(material)
        return box
