"""Files only the service's user may read: the data directory (0700), the SQLite database and
the secret key (0600). Other local users must not read events, errors or webhook secrets."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700; a directory we did not create is left as
    it is, except that ``path`` itself, when new, is never wider than 0700."""
    path = Path(path)
    missing = []
    cursor = path
    while not cursor.exists():
        missing.append(cursor)
        if cursor.parent == cursor:
            break
        cursor = cursor.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(directory, DIR_MODE)  # mkdir's mode is narrowed by the umask, not widened
    return path


def ensure_private_file(path: Path) -> Path:
    """Create ``path`` empty as 0600 if it does not exist; an existing file is made 0600."""
    path = Path(path)
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path
