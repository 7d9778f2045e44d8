"""The service's own key, and the secrets kept with it at rest.

One key signs upload tokens and seals the secrets the service must read back (webhook signing
secrets): ``upload_secret`` when set (every machine of a deployment sets the same), else a random key
created once in ``<data_dir>/upload-secret`` (mode 0600) and shared by the processes of that data
directory. Sealing is Fernet (AES-128-CBC with an HMAC-SHA256, from ``cryptography``) under a key
derived from it for that purpose only, so a copy of the database alone does not give the secrets away.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time

from cryptography.fernet import Fernet, InvalidToken

from vodscribe.config import Settings

#: What a sealed value starts with; a value without it was stored before sealing (read as it is).
SEALED = "enc1:"


def server_key(settings: Settings) -> bytes:
    if settings.upload_secret is not None:  # at least 16 bytes: Settings refuses a shorter one
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


def _fernet(settings: Settings, purpose: str) -> Fernet:
    derived = hmac.new(server_key(settings), f"vodscribe:{purpose}".encode(), hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(settings: Settings, purpose: str, secret: str) -> str:
    return SEALED + _fernet(settings, purpose).encrypt(secret.encode()).decode()


def unseal(settings: Settings, purpose: str, stored: str) -> str:
    """The secret in a stored value (sealed, or stored before sealing); raises ValueError when the
    value was sealed with another key."""
    if not stored.startswith(SEALED):
        return stored
    try:
        return _fernet(settings, purpose).decrypt(stored.removeprefix(SEALED).encode()).decode()
    except InvalidToken:
        raise ValueError(
            "a secret was sealed with another key: give every machine the same upload_secret"
        ) from None
