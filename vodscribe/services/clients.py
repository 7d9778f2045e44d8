"""API clients (accounts) and their keys. Only a SHA-256 of each key is stored."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vodscribe.db.tables import Client


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_client(session: Session, name: str) -> tuple[Client, str]:
    """Create a client and return it with its API key (shown once, never stored in clear)."""
    client = Client(name=name, key_hash="pending")
    session.add(client)
    session.flush()
    key = f"{client.id}_{secrets.token_hex(24)}"
    client.key_hash = hash_key(key)
    session.flush()
    return client, key


def authenticate(session: Session, key: str) -> Client | None:
    if not key:
        return None
    return session.scalar(select(Client).where(Client.key_hash == hash_key(key)))


def count_clients(session: Session) -> int:
    return session.scalar(select(func.count(Client.id))) or 0


#: The ``key_hash`` of the anonymous client: not a SHA-256 hex digest, so no key ever matches it.
ANONYMOUS = "anonymous"


def anonymous_client(session: Session) -> Client:
    """The client that keyless speech requests run as, where the server allows them; made on first use."""
    client = session.scalar(select(Client).where(Client.key_hash == ANONYMOUS))
    if client is not None:
        return client
    try:
        with session.begin_nested():
            session.add(Client(name="anonymous", key_hash=ANONYMOUS))
    except IntegrityError:  # another request made it first
        pass
    session.commit()
    found = session.scalar(select(Client).where(Client.key_hash == ANONYMOUS))
    assert found is not None
    return found
