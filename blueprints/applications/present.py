"""What the applicant's and the reviewer's routes share: the services a decision reaches and
an application as answered."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Response, current_app, g
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.applications import service
from app.applications.models import Application
from app.integrations.shared_data import get_connectors
from app.licences.models import Licence
from app.materials import service as materials
from app.materials.models import ApplicationMaterial
from app.materials.storage import LocalFolderStorage
from app.matters import catalogue
from app.seals import get_seal_context
from app.seals.models import IssuedDocument
from app.security import get_cipher
from app.security.digests import canonical_sha256
from blueprints.applications.schemas import application_out


def material_storage() -> LocalFolderStorage:
    return LocalFolderStorage(Path(current_app.config["MATERIALS_STORAGE_DIR"]))


def material_download(row: ApplicationMaterial, data: bytes) -> Response:
    """A material shown inline (the reviewer's preview), never sniffed into something else."""
    response = Response(data, mimetype=row.content_type or "application/octet-stream")
    response.headers["Content-Disposition"] = f"inline; filename={row.sha256}"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def services(session: Session) -> service.Services:
    return service.Services(get_seal_context(), get_connectors(session), get_cipher())


def request_id() -> str | None:
    return g.get("request_id")


def present(
    session: Session,
    application: Application,
    *,
    viewer: str,
    loaded: service.Loaded | None = None,
) -> dict[str, Any]:
    """The application as answered. `loaded`: its rows the request already holds (a
    submission's), not read again."""
    if loaded is not None:
        licence = loaded.licence
    else:
        licence = session.scalars(
            select(Licence).where(Licence.application_id == application.id)
        ).first()
    documents = _documents(
        session,
        licence.document_id if licence else None,
        application.form_document_id,
        application.commitment_document_id,
    )
    version = catalogue.get_version(session, application.matter_code, application.matter_version)
    names = {m["id"]: m["name"] for m in version.content["guide"]["materials"]}
    attached = [
        {
            "material_id": m.material_id,
            "name": names.get(m.material_id, m.material_id),
            "source": m.source,
            "content_type": m.content_type,
            "size_bytes": m.size_bytes,
            "sha256": m.sha256,
            "licence_id": m.licence_id,
            "added_at": m.added_at,
        }
        for m in (
            loaded.materials if loaded is not None else materials.materials_of(session, application)
        )
    ]
    return application_out(
        application,
        materials=attached,
        events=loaded.events if loaded is not None else service.events_of(session, application),
        licence=licence,
        document_code=_code_of(documents.get(licence.document_id) if licence else None),
        signature=_signature(application, documents),
        viewer=viewer,
    )


def _documents(session: Session, *ids: int | None) -> dict[int, IssuedDocument]:
    """The issued documents an answer names (licence, signed form, commitment letter) by id:
    those the session holds, and the others in one query."""
    found: dict[int, IssuedDocument] = {}
    missing = []
    for document_id in {i for i in ids if i is not None}:
        held = session.identity_map.get(session.identity_key(IssuedDocument, document_id))
        if isinstance(held, IssuedDocument):
            found[document_id] = held
        else:
            missing.append(document_id)
    if missing:
        found.update(
            (d.id, d)
            for d in session.scalars(select(IssuedDocument).where(IssuedDocument.id.in_(missing)))
        )
    return found


def _code_of(document: IssuedDocument | None) -> str | None:
    return get_seal_context().codes.code_for(document.public_id) if document else None


def _signature(
    application: Application, documents: Mapping[int, IssuedDocument]
) -> dict[str, Any] | None:
    """The documents the applicant signed, and whether they cover the form as it is now."""
    if application.form_document_id is None:
        return None
    signed = [
        documents.get(document_id) if document_id else None
        for document_id in (application.form_document_id, application.commitment_document_id)
    ]
    form_document, commitment = (
        {"title": d.title, "document_code": _code_of(d)} if d else None for d in signed
    )
    return {
        "signed_at": application.signed_at,
        "current": application.signed_form_sha256 == canonical_sha256(application.form),
        "form_document": form_document,
        "commitment_document": commitment,
    }
