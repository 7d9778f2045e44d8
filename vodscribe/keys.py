"""The service's own key.

One key signs upload tokens: ``upload_secret`` when set (every machine of a deployment sets the
same), else a random key created once in ``<data_dir>/upload-secret`` (mode 0600) and shared by the
processes of that data directory.
"""

from __future__ import annotations

import os
import secrets
import time

from vodscribe.config import Settings


def server_key(settings: Settings) -> bytes:
    if settings.upload_secret is not None:
        return settings.upload_secret.get_secret_value().encode()
    path = settings.data_dir / "upload-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: of processes starting together, one creates it and the others read it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            key = path.read_bytes().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it to create a new key") from None
    key = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key
