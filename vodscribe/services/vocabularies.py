"""Vocabularies: a client's saved terms (create, list, get, update, delete), and the terms a request
uses (its own, after those of the saved vocabulary it names), stored with its tasks as a snapshot:
changing a saved vocabulary later changes no task made before."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vodscribe import languages
from vodscribe.db.tables import Client, Vocabulary, utcnow
from vodscribe.schemas.vocabularies import (
    MAX_TERMS,
    TermIn,
    TermItem,
    TermOut,
    VocabularyIn,
    VocabularyOut,
    VocabularyPatch,
)


class VocabularyError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def stored_terms(items: Sequence[TermItem]) -> list[dict[str, Any]]:
    """The terms as stored: ``{"term", "translations": {B code: text}}``, one per term (the last of
    two same terms wins), language codes resolved."""
    terms: dict[str, dict[str, Any]] = {}
    for item in items:
        given = item if isinstance(item, TermIn) else TermIn(term=item)
        renderings = {}
        for code, text in (given.translations or {}).items():
            try:
                renderings[languages.resolve(code).b] = text
            except languages.UnknownLanguageError as exc:
                raise VocabularyError(f'Term "{given.term}": {exc}') from exc
        terms[given.term] = {"term": given.term, "translations": renderings}
    return list(terms.values())


def _own(session: Session, client: Client, vocabulary_id: int) -> Vocabulary:
    found = session.get(Vocabulary, vocabulary_id) if 0 < vocabulary_id < 2**31 else None
    if found is None or found.client_id != client.id:
        raise VocabularyError(f"Vocabulary {vocabulary_id} not found", 404)
    return found


def create(session: Session, client: Client, body: VocabularyIn) -> Vocabulary:
    vocabulary = Vocabulary(client_id=client.id, name=body.name, terms=stored_terms(body.terms))
    session.add(vocabulary)
    session.commit()
    return vocabulary


def get(session: Session, client: Client, vocabulary_id: int) -> Vocabulary:
    return _own(session, client, vocabulary_id)


def update(session: Session, client: Client, vocabulary_id: int, body: VocabularyPatch) -> Vocabulary:
    vocabulary = _own(session, client, vocabulary_id)
    if body.name is not None:
        vocabulary.name = body.name
    if body.terms is not None:
        vocabulary.terms = stored_terms(body.terms)
    vocabulary.updated_at = utcnow()
    session.commit()
    return vocabulary


def delete(session: Session, client: Client, vocabulary_id: int) -> None:
    session.delete(_own(session, client, vocabulary_id))
    session.commit()


def page(session: Session, client: Client, number: int, limit: int) -> tuple[int, list[Vocabulary]]:
    mine = Vocabulary.client_id == client.id
    total = session.scalar(select(func.count(Vocabulary.id)).where(mine)) or 0
    rows = session.scalars(
        select(Vocabulary)
        .where(mine)
        .order_by(Vocabulary.id.desc())
        .offset((number - 1) * limit)
        .limit(limit)
    )
    return total, list(rows)


def out(vocabulary: Vocabulary) -> VocabularyOut:
    return VocabularyOut(
        id=vocabulary.id,
        name=vocabulary.name,
        terms=[TermOut.model_validate(t) for t in vocabulary.terms],
        created_at=vocabulary.created_at,
        updated_at=vocabulary.updated_at,
    )


def for_request(
    session: Session, client: Client, terms: Sequence[TermItem] | None, vocabulary_id: int | None
) -> list[dict[str, Any]] | None:
    """The terms a request uses: the saved vocabulary's (``vocabulary_id``, the client's own), then
    its own ``terms`` (which win over a saved term of the same text); None when it names none."""
    merged: dict[str, dict[str, Any]] = {}
    if vocabulary_id is not None:
        for term in _own(session, client, vocabulary_id).terms:
            merged[term["term"]] = term
    for term in stored_terms(terms or ()):
        merged[term["term"]] = term
    if len(merged) > MAX_TERMS:
        raise VocabularyError(f"A request may use at most {MAX_TERMS} terms ({len(merged)} given).")
    return list(merged.values()) or None
