"""The applicant signs before submitting: the application form and, for 告知承诺 matters, the
commitment letter.

The signature is the existing personal one: a key made for this one event and a certificate
naming the verified real name, the handwriting drawn in the signer's box; the department's
seal then closes each document. Signing needs a face verification just now (the fresh
confirmation: the identity service's face check in production, its emulator in development).
What was signed is kept as the form's fingerprint: a form changed afterwards is signed again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.applications.errors import ApplicationNotSigned
from app.applications.models import Application
from app.enterprises.models import RegistryEnterprise
from app.identity.assurance import require_level
from app.identity.models import User
from app.identity.realname import id_number_of, real_name_of
from app.licences import service as licences
from app.matters.models import Matter, MatterVersion
from app.seals import errors as seal_errors
from app.seals.context import SealContext
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor, check_use
from app.seals.models import IssuedDocument, Seal
from app.seals.signatures import PersonalSignature
from app.seals.templates import get_template
from app.security.crypto import FieldCipher
from app.security.digests import canonical_sha256

FORM_TEMPLATE = "application_form"
COMMITMENT_TEMPLATE = "commitment_letter"
# The department's seal is applied by the system, beside the applicant's own signature.
SYSTEM = SealActor(kind="system")
ANSWERS_HEADER = ["填报项", "内容"]


@dataclass(frozen=True)
class Signed:
    form: IssuedDocument
    commitment: IssuedDocument | None


def needs_commitment(version: MatterVersion) -> bool:
    return "commitment" in version.content


def check_signed(application: Application, version: MatterVersion) -> None:
    """Refuse (422 APPLICATION_NOT_SIGNED) a submission whose current form the applicant has
    not signed, or a 告知承诺 matter without the signed commitment letter."""
    if application.form_document_id is None:
        raise ApplicationNotSigned(fields={"signature": ["请先签名确认申请表"]})
    if application.signed_form_sha256 != canonical_sha256(application.form):
        raise ApplicationNotSigned(fields={"signature": ["申请表签名后已修改，请重新签名"]})
    if needs_commitment(version) and application.commitment_document_id is None:
        raise ApplicationNotSigned(fields={"commitment": ["请签署告知承诺书"]})


def answers_table(form_schema: Mapping[str, Any], form: Mapping[str, Any]) -> list[list[str]]:
    """The form as printed: one row per answered field, labelled by the schema's titles, in
    the schema's order."""
    properties = form_schema.get("properties", {})
    keys = [k for k in properties if k in form] + [k for k in form if k not in properties]
    rows = [ANSWERS_HEADER]
    for key in keys:
        spec = properties.get(key, {})
        label = spec.get("title", key) if isinstance(spec, Mapping) else key
        rows.append([str(label), _printed(form[key])])
    return rows


def _printed(value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str | int | float) or value is None:
        return "" if value is None else str(value)
    return json.dumps(value, ensure_ascii=False)


def sign(
    session: Session,
    seals: SealContext,
    cipher: FieldCipher,
    application: Application,
    matter: Matter,
    version: MatterVersion,
    *,
    user: User,
    handwriting_png: bytes,
    now: dt.datetime,
    request_id: str | None = None,
    form: Mapping[str, Any] | None = None,
) -> Signed:
    """Sign the application's current form (and the commitment letter where the matter asks
    for one) in `user`'s name; signing again replaces the earlier documents.

    `form`: a new form to sign instead (补正), which becomes the application's once signed:
    a refused signature leaves the application's form as it was.
    """
    require_level(session, user, "application.sign", now=now, request_id=request_id)
    signed_form = application.form if form is None else dict(form)
    holder = Holder(
        real_name_of(cipher, user) or "",
        id_number_of(cipher, user) or "",
        "person",
        user.id,
    )
    personal = PersonalSignature(user, handwriting_png)
    enterprise = (
        session.get(RegistryEnterprise, application.enterprise_id)
        if application.enterprise_id is not None
        else None
    )
    form_document = _issue(
        session,
        seals,
        cipher,
        application,
        FORM_TEMPLATE,
        holder,
        personal,
        {
            "matter_name": matter.name,
            "application_number": application.number,
            "on_behalf_of": enterprise.name if enterprise else "",
            "answers": answers_table(version.content["form"], signed_form),
        },
        now=now,
        request_id=request_id,
    )
    commitment = None
    if needs_commitment(version):
        commitment = _issue(
            session,
            seals,
            cipher,
            application,
            COMMITMENT_TEMPLATE,
            holder,
            personal,
            {"matter_name": matter.name},
            now=now,
            request_id=request_id,
        )
    if form is not None:
        application.form = signed_form
    application.form_document_id = form_document.id
    application.commitment_document_id = commitment.id if commitment else None
    application.signed_form_sha256 = canonical_sha256(signed_form)
    application.signed_at = now
    application.updated_at = now
    session.flush()
    return Signed(form_document, commitment)


def check_seals(
    session: Session, department_id: int, version: MatterVersion, *, now: dt.datetime
) -> None:
    """Refuse now, as signing would (recorded in the seal-use log), when the department's
    seal for the form (or for the commitment letter the matter asks for) cannot sign: for a
    filing that signs at once, asked before the application is written, so that the refusal,
    which is kept, keeps nothing else."""
    matter_code = version.content["code"]
    templates = [FORM_TEMPLATE, *([COMMITMENT_TEMPLATE] if needs_commitment(version) else [])]
    for template in templates:
        seal = _seal_for(session, department_id, matter_code, template, now)
        check_use(
            session,
            seal,
            actor=SYSTEM,
            template=get_template(template),
            matter=matter_code,
            now=now,
        )


def _seal_for(
    session: Session, department_id: int, matter_code: str, template: str, now: dt.datetime
) -> Seal:
    seal = licences.seal_for(session, department_id, matter_code, template, now=now)
    if seal is None:
        raise seal_errors.SealNotUsable(reason="no_seal_for_matter", matter=matter_code)
    return seal


def _issue(
    session: Session,
    seals: SealContext,
    cipher: FieldCipher,
    application: Application,
    template: str,
    holder: Holder,
    personal: PersonalSignature,
    data: dict[str, Any],
    *,
    now: dt.datetime,
    request_id: str | None,
) -> IssuedDocument:
    seal = _seal_for(session, application.department_id, application.matter_code, template, now)
    return issue_document(
        session,
        seals,
        seal=seal,
        template=template,
        holder=holder,
        data=data,
        actor=SYSTEM,
        now=now,
        matter=application.matter_code,
        personal=personal,
        cipher=cipher,
        request_id=request_id,
    )
