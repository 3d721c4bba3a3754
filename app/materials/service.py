"""Attaching materials to an application: an uploaded PDF, JPEG or PNG (its type read from its
bytes, never from the name or the header the client sent), or a valid licence of the
applicant's wallet in place of a paper certificate (免证办).

Materials change only while the application is a draft or waits for 补正. The guide says which
are required and which are key: a key material can never be missing; a non-key one may be
(容缺) where the matter allows it, and the case then goes to a reviewer.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.applications.models import Application, ApplicationStatus
from app.licences import service as licences
from app.materials.errors import (
    LicenceUnsuitable,
    MaterialNotFound,
    MaterialNotInGuide,
    MaterialsLocked,
    MaterialTooLarge,
    MaterialTypeUnsupported,
)
from app.materials.models import ApplicationMaterial
from app.materials.storage import Storage

EDITABLE = (ApplicationStatus.DRAFT.value, ApplicationStatus.SUPPLEMENT_REQUESTED.value)
SUPPLYING = (ApplicationStatus.ACCEPTED.value, ApplicationStatus.UNDER_REVIEW.value)
UPLOAD = "upload"
# Pillow's name for each image format we take.
_IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


def sniff(data: bytes) -> str | None:
    """The file's type from its bytes: a PDF, or an image Pillow can read through."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    return _IMAGE_TYPES.get(kind or "")


def guide_material(content: Mapping[str, Any], material_id: str) -> Mapping[str, Any]:
    for material in content["guide"]["materials"]:
        if material["id"] == material_id:
            return material  # type: ignore[no-any-return]
    raise MaterialNotInGuide(material_id=material_id)


def _editable(
    session: Session,
    application: Application,
    content: Mapping[str, Any],
    material_id: str,
    now: dt.datetime,
) -> None:
    """Materials change while a draft or 补正; after 容缺受理, only the missing ones may come,
    until the promised day."""
    if application.status in EDITABLE:
        return
    promised = application.supply_due is not None and now <= application.supply_due
    if promised and application.status in SUPPLYING:
        lacking = missing(session, application, content)
        if material_id in {m["id"] for m in [*lacking.key, *lacking.other]}:
            return
    raise MaterialsLocked(status=application.status)


def _replace(session: Session, application: Application, row: ApplicationMaterial) -> None:
    session.execute(
        delete(ApplicationMaterial).where(
            ApplicationMaterial.application_id == application.id,
            ApplicationMaterial.material_id == row.material_id,
        )
    )
    session.add(row)
    session.flush()


def attach_upload(
    session: Session,
    storage: Storage,
    application: Application,
    content: Mapping[str, Any],
    material_id: str,
    data: bytes,
    *,
    filename: str | None,
    user_id: int,
    max_bytes: int,
    now: dt.datetime,
) -> ApplicationMaterial:
    """Store an uploaded file as the application's `material_id` (replacing an earlier one)."""
    _editable(session, application, content, material_id, now)
    material = guide_material(content, material_id)
    if material.get("provided_by", UPLOAD) != UPLOAD:
        raise MaterialNotInGuide("这项材料无需上传", material_id=material_id)
    if len(data) > max_bytes:
        raise MaterialTooLarge(limit_bytes=max_bytes)
    content_type = sniff(data)
    if content_type is None:
        raise MaterialTypeUnsupported()
    key = storage.put(data)
    row = ApplicationMaterial(
        application_id=application.id,
        material_id=material_id,
        source="upload",
        filename=(filename or material_id)[:128],
        content_type=content_type,
        size_bytes=len(data),
        sha256=key,
        storage_key=key,
        added_by=user_id,
        added_at=now,
    )
    _replace(session, application, row)
    return row


def attach_licence(
    session: Session,
    application: Application,
    content: Mapping[str, Any],
    material_id: str,
    licence_id: int,
    *,
    user_id: int,
    now: dt.datetime,
) -> ApplicationMaterial:
    """免证办: a valid licence of the applicant's wallet, of the type the guide accepts."""
    _editable(session, application, content, material_id, now)
    material = guide_material(content, material_id)
    licence = licences.licence_in_wallet(session, user_id, licence_id)
    if material.get("licence_type") != licence.template:
        raise LicenceUnsuitable(fields={"licence_id": [f"需要{material['name']}"]})
    if licence.state(now) != "valid":
        raise LicenceUnsuitable(fields={"licence_id": ["证照已过期或已撤销"]})
    row = ApplicationMaterial(
        application_id=application.id,
        material_id=material_id,
        source="licence",
        licence_id=licence.id,
        added_by=user_id,
        added_at=now,
    )
    _replace(session, application, row)
    return row


def materials_of(session: Session, application: Application) -> list[ApplicationMaterial]:
    return list(
        session.scalars(
            select(ApplicationMaterial)
            .where(ApplicationMaterial.application_id == application.id)
            .order_by(ApplicationMaterial.id)
        )
    )


@dataclass(frozen=True)
class Missing:
    key: list[Mapping[str, Any]]
    other: list[Mapping[str, Any]]


def missing(session: Session, application: Application, content: Mapping[str, Any]) -> Missing:
    """The required materials to be uploaded that are not attached, key ones apart."""
    return missing_from(
        content, attached={m.material_id for m in materials_of(session, application)}
    )


def missing_from(content: Mapping[str, Any], *, attached: Collection[str]) -> Missing:
    """The required materials to be uploaded that are not among `attached`."""
    wanted = [
        m
        for m in content["guide"]["materials"]
        if m["required"] and m.get("provided_by", UPLOAD) == UPLOAD and m["id"] not in attached
    ]
    return Missing([m for m in wanted if m["key"]], [m for m in wanted if not m["key"]])


def read(
    session: Session, storage: Storage, application: Application, material_id: str
) -> tuple[ApplicationMaterial, bytes]:
    """An uploaded material and its bytes (checked against its digest)."""
    row = session.scalars(
        select(ApplicationMaterial).where(
            ApplicationMaterial.application_id == application.id,
            ApplicationMaterial.material_id == material_id,
            ApplicationMaterial.source == "upload",
        )
    ).first()
    if row is None or row.storage_key is None:
        raise MaterialNotFound(material_id=material_id)
    return row, storage.get(row.storage_key)
