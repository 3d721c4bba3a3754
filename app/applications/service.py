"""Filing an application and the applicant's steps: submit (instant approval when every rule
holds), withdraw, resubmit after 补正.

Submitting runs the matter version's rules on the form and the shared-data facts. When every
rule holds, the application is approved and its licence sealed in the same transaction; when
one fails or cannot be decided (a connector down), it is accepted for a reviewer with the
reasons. Who files for an enterprise is checked at every step: its legal representative or an
agent it authorised, bound now, not merely when the draft was made.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app.applications import deadlines, inspections, notices, signing, tolerance, workflow
from app.applications.errors import (
    ActingForEnterpriseRefused,
    ApplicantKindMismatch,
    ApplicationNotFound,
    ApplicationNotSigned,
    IdempotencyKeyReused,
    ReasonRequired,
)
from app.applications.models import Application, ApplicationEvent, ApplicationStatus
from app.audit.service import Actor
from app.audit.service import record as audit
from app.calendar import local_day
from app.db import built_once, hold, lock_row
from app.enterprises.errors import (
    EnterpriseAccessDenied,
    EnterpriseNotActive,
    LegalRepresentativeOnly,
)
from app.enterprises.models import BindingStatus, EnterpriseBinding, RegistryEnterprise
from app.enterprises.service import require_enterprise_access
from app.identity.assurance import require_level
from app.identity.models import User
from app.identity.realname import id_number_of, real_name_of
from app.licences import service as licences
from app.licences.models import Licence
from app.materials import service as materials
from app.materials.errors import MaterialsMissing
from app.materials.models import ApplicationMaterial
from app.matters import catalogue, forms, parameters, rules
from app.matters.models import Matter, MatterVersion
from app.seals import errors as seal_errors
from app.seals.context import SealContext
from app.seals.issuing import Holder
from app.seals.lifecycle import SealActor
from app.seals.models import IssuedDocument
from app.security.crypto import FieldCipher
from app.security.digests import canonical_sha256
from app.shared_data.connectors import Connector, LookupRequest, gather

INSTANT_FLAG = "秒批"
TOLERANCE_FLAG = "容缺"
# What stops the seal from being applied to a decided case (the case then waits for a reviewer).
SEAL_REFUSALS = (
    seal_errors.SealUseForbidden,
    seal_errors.SealNotUsable,
    seal_errors.DocumentDataInvalid,
    seal_errors.SignerNotVerified,
    seal_errors.PkiMissing,
)


@dataclass(frozen=True)
class Services:
    """What a submission reaches beyond the database."""

    seals: SealContext
    connectors: Mapping[str, Connector]
    cipher: FieldCipher


@dataclass(frozen=True)
class Loaded:
    """An application's rows that a request already read or wrote, in the order the answer
    lists them, so that answering does not read them again: its transitions, its materials
    and its licence (None: it has none)."""

    events: list[ApplicationEvent]
    materials: list[ApplicationMaterial]
    licence: Licence | None


# -- recording transitions -------------------------------------------------------------------


def move(
    session: Session,
    application: Application,
    action: str,
    *,
    by: str,
    actor_id: int | None,
    now: dt.datetime,
    reason: str | None = None,
    events: list[ApplicationEvent] | None = None,
) -> ApplicationEvent:
    """Take `action` if the application's workflow allows it from its state; record it.

    `events`: all of the application's transitions so far, in order, when the caller holds
    them (submitting): the new one is appended, the deadlines are computed from them, and the
    rows are left for the caller's next flush, so one UPDATE carries the whole submission.
    """
    flow = flow_of(application)
    transition = flow.transition(application.status, action, by)
    if transition.reason_required and not (reason and reason.strip()):
        raise ReasonRequired(action=action)
    event = ApplicationEvent(
        application_id=application.id,
        action=action,
        from_status=application.status,
        to_status=transition.target,
        actor_kind=by,
        actor_id=actor_id,
        reason=reason,
        at=now,
    )
    session.add(event)
    application.status = transition.target
    application.updated_at = now
    if flow.states[transition.target].final:
        application.decided_at = now
    if events is not None:
        events.append(event)
        deadlines.refresh(session, application, events)
        return event
    session.flush()
    deadlines.refresh(session, application)
    return event


def lock(session: Session, application: Application) -> None:
    """Hold the application's row until the transaction ends, and read it afresh.

    The applicant's and the reviewer's steps read the application, decide, then write: two at
    once (a double tap on submit or on 认领, a withdraw crossing a submit) would each decide on
    the state they read, and the second would seal a second licence or overwrite the first's
    decision. Locked first, the
    second waits for the first to commit and then sees the state it left (populate_existing:
    the caller's object was read before the wait), so its transition is refused (409). On
    SQLite, where FOR UPDATE is not rendered, transactions already take turns (BEGIN IMMEDIATE).
    One statement.
    """
    lock_row(session, application)


def flow_of(application: Application) -> workflow.Workflow:
    """The workflow version the application started under."""
    return workflow.load_all()[(application.workflow, application.workflow_version)]


def events_of(session: Session, application: Application) -> list[ApplicationEvent]:
    return list(
        session.scalars(
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == application.id)
            .order_by(ApplicationEvent.id)
        )
    )


# -- who may file ------------------------------------------------------------------------------


def _acting_for(
    session: Session,
    user: User,
    enterprise_id: int,
    *,
    now: dt.datetime,
    request_id: str | None,
) -> EnterpriseBinding:
    """The user's binding to the enterprise; refused (audited) when there is none."""
    try:
        return require_enterprise_access(session, user, enterprise_id)
    except (EnterpriseAccessDenied, LegalRepresentativeOnly) as error:
        audit(
            session,
            "application.enterprise_refused",
            actor=Actor("user", user.id),
            now=now,
            subject_type="enterprise",
            subject_id=enterprise_id,
            details={"code": error.code},
            request_id=request_id,
        )
        session.flush()
        raise ActingForEnterpriseRefused(enterprise_id=enterprise_id) from error


def _check_applicant(
    session: Session,
    user: User,
    matter: Matter,
    enterprise_id: int | None,
    *,
    now: dt.datetime,
    request_id: str | None,
) -> str:
    """How the user files this matter: citizen, legal_representative or agent."""
    if matter.applicant == "enterprise" and enterprise_id is None:
        raise ApplicantKindMismatch(
            "该事项须以企业名义申请，请选择已绑定的企业", fields={"enterprise_id": ["请选择企业"]}
        )
    if matter.applicant == "citizen" and enterprise_id is not None:
        raise ApplicantKindMismatch(
            "该事项只能由个人申请", fields={"enterprise_id": ["该事项不能以企业名义申请"]}
        )
    require_level(session, user, "application.submit", now=now, request_id=request_id)
    if enterprise_id is None:
        return "citizen"
    binding = _acting_for(session, user, enterprise_id, now=now, request_id=request_id)
    if not binding.enterprise.is_active:
        # 注销, 吊销, 停业: no longer a company that may hold a permit.
        raise EnterpriseNotActive(
            "该企业已注销、吊销或停业，不能以企业名义申请", status=binding.enterprise.status.value
        )
    return str(binding.role)


# -- filing ------------------------------------------------------------------------------------


# 10^8 numbers a day: a district's few thousand filings meet an earlier number now and then
# (the birthday bound), a run of this many taken draws never.
NUMBER_DRAWS = 5


def _new_number(now: dt.datetime) -> str:
    """办件编号: the local date and 8 random digits (unique, not guessable in sequence)."""
    return f"{local_day(now):%Y%m%d}{secrets.randbelow(10**8):08d}"


def _number_taken(session: Session, number: str) -> bool:
    return session.scalar(select(Application.id).where(Application.number == number)) is not None


def _with_key(session: Session, scoped_key: str) -> Application | None:
    return session.scalars(
        select(Application).where(Application.idempotency_key == scoped_key)
    ).first()


def file(
    session: Session,
    services: Services,
    *,
    user: User,
    matter_code: str,
    form: Mapping[str, Any],
    enterprise_id: int | None,
    submit_now: bool,
    now: dt.datetime,
    handwriting_png: bytes | None = None,
    idempotency_key: str | None = None,
    request_id: str | None = None,
) -> tuple[Application, bool]:
    """File an application under the matter's current version (and, with the applicant's
    handwriting, sign and submit it in one step unless a draft is asked for). Returns it and
    whether it was created by this call: the same Idempotency-Key gives back the application
    the first call filed."""
    scoped_key = fingerprint = None
    if idempotency_key:
        scoped_key = f"user:{user.id}:{idempotency_key}"
        fingerprint = canonical_sha256(
            {
                "matter": matter_code,
                "form": form,
                "enterprise_id": enterprise_id,
                "submit": submit_now,
            }
        )
        earlier = _with_key(session, scoped_key)
        if earlier is not None:
            if earlier.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused()
            return earlier, False

    matter = catalogue.get_matter(session, matter_code)
    version = catalogue.get_version(session, matter_code)
    if submit_now:
        # Refused before anything is written: the form, and materials (none attached yet).
        forms.check_form(version.content["form"], form)
        _check_materials(materials.missing_from(version.content, attached=()), matter)
        if handwriting_png is None:
            raise ApplicationNotSigned(fields={"signature": ["请签名确认申请表"]})
    acting_as = _check_applicant(
        session, user, matter, enterprise_id, now=now, request_id=request_id
    )
    if submit_now:
        # Signing asks for a face check just now. Asked here, before the draft is written: its
        # refusal is committed (audited), and a draft committed with it would be what a retry
        # under the same Idempotency-Key gets back, unsubmitted, once the cause is gone.
        require_level(session, user, "application.sign", now=now, request_id=request_id)
        # The same for the seal that will sign the form: its refusal is kept too.
        signing.check_seals(session, matter.department_id, version, now=now)
    flow = workflow.for_kind(matter.kind)
    application = Application(
        matter_id=matter.id,
        matter_code=matter.code,
        matter_version=version.version,
        workflow=flow.name,
        workflow_version=flow.version,
        department_id=matter.department_id,
        applicant_user_id=user.id,
        enterprise_id=enterprise_id,
        acting_as=acting_as,
        form=dict(form),
        status=flow.initial,
        idempotency_key=scoped_key,
        request_fingerprint=fingerprint,
        created_at=now,
        updated_at=now,
    )
    for _draw in range(NUMBER_DRAWS):
        application.number = _new_number(now)
        try:
            with session.begin_nested():
                session.add(application)
            break
        except IntegrityError:
            # A concurrent retry with the same key filed first.
            earlier = _with_key(session, scoped_key) if scoped_key else None
            if earlier is not None:
                if earlier.request_fingerprint != fingerprint:
                    raise IdempotencyKeyReused() from None
                return earlier, False
            # Or the number drawn is another application's: draw again.
            if not _number_taken(session, application.number):
                raise
    else:
        raise RuntimeError(f"no free application number in {NUMBER_DRAWS} draws")
    audit(
        session,
        "application.filed",
        actor=Actor("user", user.id),
        now=now,
        subject_type="application",
        subject_id=application.id,
        details={
            "number": application.number,
            "matter": matter.code,
            "version": version.version,
            "enterprise_id": enterprise_id,
            "acting_as": acting_as,
        },
        request_id=request_id,
    )
    if submit_now:
        assert handwriting_png is not None  # refused above
        _sign(
            session, services, application, matter, version, user, handwriting_png, now, request_id
        )
        _submit(session, services, application, matter, version, user, now, request_id)
    return application, True


def submit(
    session: Session,
    services: Services,
    application: Application,
    *,
    user: User,
    now: dt.datetime,
    request_id: str | None = None,
    locked: bool = False,
) -> Loaded:
    """Submit a draft (under the version it was drafted under); the rows read and written on
    the way, for the answer. `locked`: the caller read it with `for_applicant(for_update=True)`."""
    # Before anything is read or sealed: a second submit of the same draft waits here and is
    # then refused as no longer a draft, instead of sealing a second licence.
    if not locked:
        lock(session, application)
    matter, version = catalogue.get_with_version(
        session, application.matter_id, application.matter_version
    )
    forms.check_form(version.content["form"], application.form)
    _check_applicant(
        session, user, matter, application.enterprise_id, now=now, request_id=request_id
    )
    return _submit(session, services, application, matter, version, user, now, request_id)


def _sign(
    session: Session,
    services: Services,
    application: Application,
    matter: Matter,
    version: MatterVersion,
    user: User,
    handwriting_png: bytes,
    now: dt.datetime,
    request_id: str | None,
    form: Mapping[str, Any] | None = None,
) -> signing.Signed:
    """The applicant signs the application's current form (filing, a draft), or the corrected
    one that replaces it once signed (补正)."""
    return signing.sign(
        session,
        services.seals,
        services.cipher,
        application,
        matter,
        version,
        user=user,
        handwriting_png=handwriting_png,
        now=now,
        request_id=request_id,
        form=form,
    )


def sign_draft(
    session: Session,
    services: Services,
    application: Application,
    *,
    user: User,
    handwriting_png: bytes,
    now: dt.datetime,
    request_id: str | None = None,
) -> signing.Signed:
    """The applicant signs a draft's form (and commitment letter) before submitting it."""
    if application.status != ApplicationStatus.DRAFT:
        raise workflow.IllegalTransition(state=application.status, action="sign")
    check_still_acting(session, application, user, now=now, request_id=request_id)
    matter = session.get(Matter, application.matter_id)
    assert matter is not None
    version = catalogue.get_version(session, matter.code, application.matter_version)
    forms.check_form(version.content["form"], application.form)
    return _sign(
        session, services, application, matter, version, user, handwriting_png, now, request_id
    )


def update_draft(
    session: Session,
    application: Application,
    *,
    user: User,
    form: Mapping[str, Any],
    now: dt.datetime,
    request_id: str | None = None,
) -> Application:
    """Replace a draft's form (checked when it is submitted), as someone still acting for its
    enterprise (refused, audited, for a former agent)."""
    if application.status != ApplicationStatus.DRAFT:
        raise workflow.IllegalTransition(state=application.status, action="edit")
    check_still_acting(session, application, user, now=now, request_id=request_id)
    application.form = dict(form)
    application.updated_at = now
    session.flush()
    return application


def _check_materials(lacking: materials.Missing, matter: Matter) -> bool:
    """Refuse a submission lacking a key material, or any material where the matter allows no
    容缺; True when non-key materials are missing and tolerated."""
    tolerated = bool(lacking.other) and TOLERANCE_FLAG in matter.flags
    if lacking.key or (lacking.other and not tolerated):
        raise MaterialsMissing(
            fields={m["id"]: f"请提交{m['name']}" for m in [*lacking.key, *lacking.other]}
        )
    return tolerated


def _submit(
    session: Session,
    services: Services,
    application: Application,
    matter: Matter,
    version: MatterVersion,
    user: User,
    now: dt.datetime,
    request_id: str | None,
) -> Loaded:
    """Decide a submission. Everything is read first and the licence (if any) sealed before
    the application's own rows are touched: its transitions, deadlines and decision then go
    out in one flush instead of one UPDATE each."""
    attached = materials.materials_of(session, application)
    lacking = materials.missing_from(version.content, attached={m.material_id for m in attached})
    tolerated = _check_materials(lacking, matter)
    signing.check_signed(application, version)
    # An illegal submission (409) is refused before any shared-data lookup.
    flow = flow_of(application)
    flow.transition(application.status, "submit", "applicant")
    # A draft has never moved (no transition leads back to it): nothing recorded to read.
    events = (
        events_of(session, application) if flow.entered_by_transition(application.status) else []
    )
    # Read once for the rules' lookups and the licence's holder.
    enterprise = (
        session.get(RegistryEnterprise, application.enterprise_id)
        if application.enterprise_id is not None
        else None
    )
    decision, facts = evaluate(
        session, services, application, matter, version, now=now, enterprise=enterprise
    )
    licence = None
    if tolerated:
        # 容缺受理: accepted with a non-key material to follow by a promised day; a reviewer
        # decides once it is in, and the case ends by itself if it never comes.
        names = "、".join(m["name"] for m in lacking.other)
        application.supply_due = tolerance.supply_due(version.content, now)
        due_day = local_day(application.supply_due - dt.timedelta(seconds=1))
        reason = f"容缺受理：{names}待补交（{due_day:%Y年%m月%d日}前）"
    elif decision.outcome == rules.APPROVE:
        licence = _issue_instantly(
            session,
            services,
            application,
            version,
            facts,
            now=now,
            request_id=request_id,
            enterprise=enterprise,
        )
        # The rules approved; the decision stays as they made it. Only the seal was missing.
        reason = "规则全部满足，但电子印章暂不可用，转人工审查"
    else:
        reason = "；".join(decision.reasons)[:500]
    move(session, application, "submit", by="applicant", actor_id=user.id, now=now, events=events)
    application.submitted_at = now
    deadlines.refresh(session, application, events)
    application.decision = decision.as_json()
    if licence is not None:
        move(
            session,
            application,
            "approve_instantly",
            by="system",
            actor_id=None,
            now=now,
            events=events,
        )
        inspections.open_for(session, application, version.content, now=now)
    else:
        move(
            session,
            application,
            "accept",
            by="system",
            actor_id=None,
            now=now,
            reason=reason,
            events=events,
        )
    notices.notify(session, application, matter, now=now, seq=len(events))
    return Loaded(events, attached, licence)


# -- rules and licences ------------------------------------------------------------------------


def lookup_facts(
    session: Session,
    services: Services,
    application: Application,
    rule_set: rules.RuleSet,
    now: dt.datetime,
    enterprise: RegistryEnterprise | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The form's facts and the shared data's (`enterprise`: the application's, when the
    caller holds it)."""
    if enterprise is None and application.enterprise_id:
        enterprise = session.get(RegistryEnterprise, application.enterprise_id)
    today = local_day(now)
    request = LookupRequest(
        application.form,
        enterprise.uscc if enterprise else None,
        today,
        applicant_user_id=application.applicant_user_id,
        now=now,
    )
    looked_up, unavailable = gather(services.connectors, rule_set.lookups, request)
    return {**rules.form_facts(application.form, today), **looked_up}, unavailable


def evaluate(
    session: Session,
    services: Services,
    application: Application,
    matter: Matter,
    version: MatterVersion,
    *,
    now: dt.datetime,
    enterprise: RegistryEnterprise | None = None,
) -> tuple[rules.Decision, dict[str, Any]]:
    """The rules' decision on the application now (review when the matter is never instant),
    and every fact looked up: the licence prints some that are no rule's input (a table)."""
    rule_set = catalogue.rule_set_of(version)
    if rule_set is None or INSTANT_FLAG not in matter.flags:
        return rules.Decision(rules.REVIEW, (), {}, {}, (), ("该事项须人工审查",)), {}
    facts, unavailable = lookup_facts(session, services, application, rule_set, now, enterprise)
    decision = rules.decide(
        rule_set,
        facts,
        parameters.current_values(session, matter, rule_set),
        unavailable=unavailable,
    )
    return decision, facts


def holder_for(
    session: Session,
    cipher: FieldCipher,
    application: Application,
    enterprise: RegistryEnterprise | None = None,
) -> tuple[Holder, int | None]:
    """Whom the licence is issued to: the enterprise (`enterprise` when the caller holds it),
    or the applicant by real name."""
    if application.enterprise_id is not None:
        if enterprise is None:
            enterprise = session.get(RegistryEnterprise, application.enterprise_id)
        assert enterprise is not None
        return (
            Holder(enterprise.name, enterprise.uscc, "enterprise", application.applicant_user_id),
            enterprise.id,
        )
    user = session.get(User, application.applicant_user_id)
    assert user is not None
    name, id_number = real_name_of(cipher, user), id_number_of(cipher, user)
    return Holder(name or "", id_number or "", "person", user.id), None


def issue_licence(
    session: Session,
    services: Services,
    application: Application,
    version: MatterVersion,
    facts: Mapping[str, Any],
    *,
    actor: SealActor,
    now: dt.datetime,
    request_id: str | None,
    enterprise: RegistryEnterprise | None = None,
) -> Licence:
    """Seal and register the application's licence (seal errors propagate)."""
    spec = version.content["licence"]
    seal = licences.seal_for(
        session, application.department_id, application.matter_code, spec["template"], now=now
    )
    if seal is None:
        raise seal_errors.SealNotUsable(reason="no_seal_for_matter", matter=application.matter_code)
    holder, enterprise_id = holder_for(session, services.cipher, application, enterprise)
    return licences.issue(
        session,
        services.seals,
        seal=seal,
        licence_spec=spec,
        matter_code=application.matter_code,
        holder=holder,
        holder_enterprise_id=enterprise_id,
        facts=facts,
        actor=actor,
        application_id=application.id,
        application_number=application.number,
        now=now,
        request_id=request_id,
    )


def _issue_instantly(
    session: Session,
    services: Services,
    application: Application,
    version: MatterVersion,
    facts: Mapping[str, Any],
    *,
    now: dt.datetime,
    request_id: str | None,
    enterprise: RegistryEnterprise | None = None,
) -> Licence | None:
    """The licence, or None (audited) when the seal cannot be applied: the application then
    goes to a reviewer instead of failing the applicant's request."""
    try:
        with session.begin_nested():
            return issue_licence(
                session,
                services,
                application,
                version,
                facts,
                actor=SealActor(kind="system"),
                now=now,
                request_id=request_id,
                enterprise=enterprise,
            )
    except SEAL_REFUSALS as error:
        audit(
            session,
            "application.instant_issue_failed",
            actor=Actor.system(),
            now=now,
            subject_type="application",
            subject_id=application.id,
            details={"number": application.number, "code": error.code},
            request_id=request_id,
        )
        return None


# -- the applicant's view and steps ------------------------------------------------------------


def _visible_to(user_id: Any) -> Any:
    """The applications `user_id` (an id, or a bound parameter for one) may see."""
    bound = select(EnterpriseBinding.enterprise_id).where(
        EnterpriseBinding.user_id == user_id, EnterpriseBinding.status == BindingStatus.ACTIVE
    )
    return or_(Application.applicant_user_id == user_id, Application.enterprise_id.in_(bound))


def for_applicant(session: Session, user_id: int, number: str) -> Application:
    """An application the user filed, or one of an enterprise they act for; another's is not
    found (its existence is not revealed)."""
    found = session.scalars(
        select(Application).where(Application.number == number, _visible_to(user_id))
    ).first()
    if found is None:
        raise ApplicationNotFound(number=number)
    return found


@built_once
def _submission_statement() -> Any:
    # Built once (bound by number and user): the two aliases of the documents alone took ~1 ms
    # to build their column proxies on every submission.
    form_document = aliased(IssuedDocument, name="form_document")
    commitment_document = aliased(IssuedDocument, name="commitment_document")
    return (
        select(
            Application,
            User,
            RegistryEnterprise,
            Matter,
            MatterVersion,
            form_document,
            commitment_document,
        )
        .join(User, User.id == Application.applicant_user_id)
        .outerjoin(RegistryEnterprise, RegistryEnterprise.id == Application.enterprise_id)
        .outerjoin(Matter, Matter.id == Application.matter_id)
        .outerjoin(
            MatterVersion,
            and_(
                MatterVersion.matter_id == Application.matter_id,
                MatterVersion.version == Application.matter_version,
            ),
        )
        .outerjoin(form_document, form_document.id == Application.form_document_id)
        .outerjoin(
            commitment_document, commitment_document.id == Application.commitment_document_id
        )
        .where(Application.number == bindparam("number"), _visible_to(bindparam("user_id")))
        # Only the application is held: the others are read, as their own reads read them.
        .with_for_update(of=Application)
        .execution_options(populate_existing=True)
    )


def for_submission(session: Session, user_id: int, number: str) -> Application:
    """`for_applicant`, read with its row held as `lock` holds it, for `submit(locked=True)`;
    and, in the same statement, the rows a submission reads next join the session: the
    applicant, the enterprise, the matter and the version filed under, and the signed form and
    commitment letter the answer names (`session.get`, `catalogue.get_with_version` and the
    answer then find them there). One statement where these took five, on the path of every
    秒批."""
    row = session.execute(_submission_statement(), {"number": number, "user_id": user_id}).first()
    if row is None:
        raise ApplicationNotFound(number=number)
    hold(session, *row)
    application, matter, version = row[0], row[3], row[4]
    if matter is not None and version is not None:
        catalogue.remember_version(session, matter, version)
    return application


def list_for_applicant(
    session: Session, user_id: int, *, offset: int, limit: int
) -> tuple[list[Application], int]:
    condition = _visible_to(user_id)
    total = session.scalar(select(func.count()).select_from(Application).where(condition)) or 0
    rows = session.scalars(
        select(Application)
        .where(condition)
        .order_by(Application.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def check_still_acting(
    session: Session,
    application: Application,
    user: User,
    *,
    now: dt.datetime,
    request_id: str | None,
) -> None:
    if application.enterprise_id is not None:
        _acting_for(session, user, application.enterprise_id, now=now, request_id=request_id)
    elif application.applicant_user_id != user.id:
        raise ApplicationNotFound(number=application.number)


def withdraw(
    session: Session,
    application: Application,
    *,
    user: User,
    reason: str | None,
    now: dt.datetime,
    request_id: str | None = None,
) -> Application:
    lock(session, application)  # a submit in flight decides first; then this is refused
    check_still_acting(session, application, user, now=now, request_id=request_id)
    move(session, application, "withdraw", by="applicant", actor_id=user.id, now=now, reason=reason)
    matter = session.get(Matter, application.matter_id)
    assert matter is not None
    notices.notify(session, application, matter, now=now)
    return application


def resubmit(
    session: Session,
    services: Services,
    application: Application,
    *,
    user: User,
    form: Mapping[str, Any] | None,
    handwriting_png: bytes | None,
    now: dt.datetime,
    request_id: str | None = None,
) -> Application:
    """Answer a request for 补正 with a corrected form; the reviewer takes it up again.

    A form that differs from the one signed is signed again with the applicant's handwriting,
    as at filing: the file's signed application form always says what is being decided.
    """
    lock(session, application)  # a second tap waits, then finds it resubmitted already (409)
    check_still_acting(session, application, user, now=now, request_id=request_id)
    matter = session.get(Matter, application.matter_id)
    assert matter is not None
    version = catalogue.get_version(session, application.matter_code, application.matter_version)
    changed = form is not None and canonical_sha256(dict(form)) != application.signed_form_sha256
    if form is not None:
        forms.check_form(version.content["form"], form)
    if changed and handwriting_png is None:
        raise ApplicationNotSigned(fields={"handwriting_png": ["申请表已修改，请重新签名"]})
    # Signed before the case moves: a refused signature (a face check worn off, the seal
    # unusable) is a KeepsWrites error, committed with whatever was flushed before it, and must
    # leave the case waiting for 补正 with the form that was signed.
    flow_of(application).transition(application.status, "resubmit", "applicant")
    if changed and handwriting_png is not None:
        _sign(
            session,
            services,
            application,
            matter,
            version,
            user,
            handwriting_png,
            now,
            request_id,
            form=form,
        )
    elif form is not None:
        application.form = dict(form)  # the form signed already
    move(session, application, "resubmit", by="applicant", actor_id=user.id, now=now)
    notices.notify(session, application, matter, now=now)
    return application
