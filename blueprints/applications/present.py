"""What the applicant's and the reviewer's routes share: the services a decision reaches and
an application as answered."""

from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.applications import service
from app.applications.models import Application
from app.integrations.shared_data import get_connectors
from app.licences.models import Licence
from app.seals import get_seal_context
from app.seals.models import IssuedDocument
from app.security import get_cipher
from blueprints.applications.schemas import application_out


def services(session: Session) -> service.Services:
    return service.Services(get_seal_context(), get_connectors(session), get_cipher())


def request_id() -> str | None:
    return g.get("request_id")


def present(session: Session, application: Application, *, viewer: str) -> dict[str, Any]:
    licence = session.scalars(
        select(Licence).where(Licence.application_id == application.id)
    ).first()
    document = session.get(IssuedDocument, licence.document_id) if licence else None
    return application_out(
        application,
        events=service.events_of(session, application),
        licence=licence,
        document_code=get_seal_context().codes.code_for(document.public_id) if document else None,
        viewer=viewer,
    )
