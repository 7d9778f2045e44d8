"""``/streaming/ai/vocabularies`` (our extension): a client's saved terms, named by ``vocabulary_id``
in AI tasks, videos and subtitle requests (see :mod:`vodscribe.speech.vocabulary`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from vodscribe.api.deps import ClientDep, SessionDep
from vodscribe.api.errors import ApiError
from vodscribe.api.params import Page
from vodscribe.schemas.errors import StatusErrorBody, responses
from vodscribe.schemas.vocabularies import VocabularyIn, VocabularyList, VocabularyOut, VocabularyPatch
from vodscribe.services import vocabularies
from vodscribe.services.vocabularies import VocabularyError

router = APIRouter(prefix="/streaming/ai/vocabularies", tags=["Vocabularies"])
ERRORS = responses(400, 401, 429, 503)
FOUND_ERRORS = {**ERRORS, **responses(404, model=StatusErrorBody)}
VocabularyId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _raise(exc: VocabularyError) -> ApiError:
    return ApiError(exc.status, exc.message, with_status=exc.status == 404)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=VocabularyOut, responses=ERRORS)
def create_vocabulary(body: VocabularyIn, client: ClientDep, session: SessionDep) -> Any:
    """Save terms (each a string, or ``{"term", "translations": {language: text}}``)."""
    try:
        return vocabularies.out(vocabularies.create(session, client, body))
    except VocabularyError as exc:
        raise _raise(exc) from exc


@router.get("", response_model=VocabularyList, responses=ERRORS)
def list_vocabularies(
    client: ClientDep, session: SessionDep, page: Page = 1, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> Any:
    """This client's vocabularies, newest first."""
    total, rows = vocabularies.page(session, client, page, limit)
    return VocabularyList(
        count=total,
        next=f"page={page + 1}" if page * limit < total else None,
        previous=f"page={page - 1}" if page > 1 else None,
        results=[vocabularies.out(v) for v in rows],
    )


@router.get("/{vocabulary_id}", response_model=VocabularyOut, responses=FOUND_ERRORS)
def get_vocabulary(vocabulary_id: VocabularyId, client: ClientDep, session: SessionDep) -> Any:
    try:
        return vocabularies.out(vocabularies.get(session, client, vocabulary_id))
    except VocabularyError as exc:
        raise _raise(exc) from exc


@router.patch("/{vocabulary_id}", response_model=VocabularyOut, responses=FOUND_ERRORS)
def update_vocabulary(
    vocabulary_id: VocabularyId, body: VocabularyPatch, client: ClientDep, session: SessionDep
) -> Any:
    """Replace its name and/or its terms; tasks made before keep the terms they were made with."""
    try:
        return vocabularies.out(vocabularies.update(session, client, vocabulary_id, body))
    except VocabularyError as exc:
        raise _raise(exc) from exc


@router.delete(
    "/{vocabulary_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=FOUND_ERRORS,
)
def delete_vocabulary(vocabulary_id: VocabularyId, client: ClientDep, session: SessionDep) -> Response:
    try:
        vocabularies.delete(session, client, vocabulary_id)
    except VocabularyError as exc:
        raise _raise(exc) from exc
    return Response(status_code=204)
