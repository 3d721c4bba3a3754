"""Binding mini-program users to enterprises, and agents authorised by legal representatives.

A user becomes an enterprise's legal representative on the mini-program when the ID number
their account was verified with is the one the registry holds (as a keyed hash) for the
legal representative, and they passed a face verification moments ago: a name, or a name and
an ID number, can be typed by anyone. Where the registry holds no ID number, binding online is
refused (the window checks the papers). The legal representative then authorises agents
(经办人) by naming them; the named person accepts after their own real-name verification.
Every enterprise endpoint goes through `require_enterprise_access`: a user acts only for
enterprises they are bound to.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from stdnum.cn import uscc as uscc_number
from stdnum.exceptions import ValidationError as StdnumError

from app.audit.service import Actor, record
from app.calendar import local_day
from app.db import affected_rows, utcnow
from app.enterprises import errors
from app.enterprises.models import (
    AgentAuthorisation,
    AuthorisationStatus,
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
)
from app.identity.assurance import DEFAULT_FACE_RECENT_SECONDS, require_level
from app.identity.models import User
from app.identity.realname import (
    ID_NUMBER_CONTEXT,
    normalize_id_number,
    normalize_name,
    real_name_of,
)
from app.policies.accounts import freeze_receiving_account
from app.security.crypto import FieldCipher
from app.security.masking import mask_id_number

AGENT_NAME_CONTEXT = "agent_authorisations.agent_name"
AUTHORISATION_TTL = dt.timedelta(days=7)
# Enough for any real enterprise's staff turnover; stops one account spraying invitations.
MAX_OPEN_AUTHORISATIONS = 20

# Dots people type in minority names instead of U+00B7 (the registry has them too).
_DOTS = str.maketrans({"•": "·", "・": "·", "．": "·", ".": "·", "\u2027": "·", "･": "·"})


# --- helpers ----------------------------------------------------------------------------------


def normalise_uscc(raw: str) -> str:
    """The 18-character USCC in upper case; USCC_INVALID when the format or check digit fails."""
    try:
        return str(uscc_number.validate(raw))
    except StdnumError:
        raise errors.UsccInvalid(uscc_length=len(raw.strip())) from None


def comparable_name(name: str) -> str:
    """A name as compared with the registry: width-folded, no blanks, one kind of middle dot."""
    folded = unicodedata.normalize("NFKC", name).translate(_DOTS)
    return "".join(folded.split())


def _user_id(user: User | int) -> int:
    return user if isinstance(user, int) else user.id


def _matches_legal_rep(user: User, enterprise: RegistryEnterprise) -> bool:
    """Whether the user's verified ID number is the registry's legal representative's."""
    return (
        enterprise.legal_rep_id_index is not None
        and user.id_number_index is not None
        and enterprise.legal_rep_id_index == user.id_number_index
    )


def _refuse_binding(
    session: Session,
    user: User,
    enterprise: RegistryEnterprise,
    reason: str,
    *,
    now: dt.datetime,
    request_id: str | None,
) -> None:
    """Audit a refused attempt to bind as legal representative (the caller then raises)."""
    record(
        session,
        "enterprise.bind_refused",
        actor=Actor("user", user.id),
        now=now,
        subject_type="enterprise",
        subject_id=enterprise.id,
        details={"reason": reason},
        request_id=request_id,
    )
    session.flush()


def _insert_binding(session: Session, binding: EnterpriseBinding) -> None:
    """Add an active binding; AlreadyBound when a concurrent one won.

    The partial unique indexes settle two concurrent binds; the savepoint keeps the caller's
    transaction usable for the error response.
    """
    try:
        with session.begin_nested():
            session.add(binding)
            session.flush()
    except IntegrityError:
        raise errors.AlreadyBound() from None


def _active_binding(session: Session, user_id: int, enterprise_id: int) -> EnterpriseBinding | None:
    return session.scalars(
        select(EnterpriseBinding).where(
            EnterpriseBinding.user_id == user_id,
            EnterpriseBinding.enterprise_id == enterprise_id,
            EnterpriseBinding.status == BindingStatus.ACTIVE,
        )
    ).one_or_none()


def _active_legal_rep(session: Session, enterprise_id: int) -> EnterpriseBinding | None:
    return session.scalars(
        select(EnterpriseBinding).where(
            EnterpriseBinding.enterprise_id == enterprise_id,
            EnterpriseBinding.role == BindingRole.LEGAL_REPRESENTATIVE,
            EnterpriseBinding.status == BindingStatus.ACTIVE,
        )
    ).one_or_none()


def _audit_binding(
    session: Session,
    action: str,
    binding: EnterpriseBinding,
    *,
    actor: Actor,
    now: dt.datetime,
    request_id: str | None,
    **details: object,
) -> None:
    record(
        session,
        action,
        actor=actor,
        now=now,
        subject_type="enterprise_binding",
        subject_id=binding.id,
        details={"enterprise_id": binding.enterprise_id, "role": binding.role.value, **details},
        request_id=request_id,
    )


# --- queries ----------------------------------------------------------------------------------


def find_enterprise(session: Session, uscc: str) -> RegistryEnterprise | None:
    """The registry row of a (normalised) USCC, if any."""
    return session.scalars(
        select(RegistryEnterprise).where(RegistryEnterprise.uscc == uscc)
    ).one_or_none()


def enterprises_of(session: Session, user: User | int) -> list[EnterpriseBinding]:
    """The user's active bindings, each with its enterprise loaded, oldest first."""
    return list(
        session.scalars(
            select(EnterpriseBinding)
            .where(
                EnterpriseBinding.user_id == _user_id(user),
                EnterpriseBinding.status == BindingStatus.ACTIVE,
            )
            .options(selectinload(EnterpriseBinding.enterprise))
            .order_by(EnterpriseBinding.id)
        )
    )


def require_enterprise_access(
    session: Session,
    user: User | int,
    enterprise_id: int,
    *,
    roles: Iterable[BindingRole] = (BindingRole.LEGAL_REPRESENTATIVE, BindingRole.AGENT),
    now: dt.datetime | None = None,
    request_id: str | None = None,
) -> EnterpriseBinding:
    """The user's active binding to the enterprise, or Forbidden.

    The guard of every enterprise endpoint: an agent or legal representative acts only for
    their own enterprises. An enterprise that does not exist is refused the same way, so ids
    cannot be probed. With `roles=(BindingRole.LEGAL_REPRESENTATIVE,)` agents are refused too.
    A binding whose legal representative the registry no longer names is refused and the
    refusal audited (`LegalRepresentativeChanged` keeps that write): a registry load ends such
    bindings itself, but a row changed any other way (a hand-made fix, another import) must
    not leave the old representative and their agents in power.
    """
    binding = _active_binding(session, _user_id(user), enterprise_id)
    if binding is None:
        raise errors.EnterpriseAccessDenied(enterprise_id=enterprise_id)
    unnamed = _legal_rep_unnamed_by_registry(binding)
    if unnamed is not None:
        record(
            session,
            "enterprise.access_refused",
            actor=Actor("user", binding.user_id),
            now=now or utcnow(),
            subject_type="enterprise",
            subject_id=enterprise_id,
            details={
                "reason": "legal_rep_changed",
                "binding_id": binding.id,
                "legal_rep_binding_id": unnamed.id,
            },
            request_id=request_id,
        )
        session.flush()
        raise errors.LegalRepresentativeChanged(enterprise_id=enterprise_id)
    if binding.role not in tuple(roles):
        raise errors.LegalRepresentativeOnly(enterprise_id=enterprise_id)
    return binding


def _legal_rep_unnamed_by_registry(binding: EnterpriseBinding) -> EnterpriseBinding | None:
    """The legal representative's binding behind `binding` (its own, or the one that authorised
    an agent) when the registry names someone else as legal representative; else None.

    Compared by blind index only (`users.id_number_index` against the registry's), so no
    personal data is decrypted on this hot path. A registry row without the ID number names
    nobody this way: such bindings predate the comparison, and binding anew is refused.
    """
    enterprise = binding.enterprise
    if enterprise.legal_rep_id_index is None:
        return None
    legal_rep = (
        binding if binding.role == BindingRole.LEGAL_REPRESENTATIVE else binding.authorised_by
    )
    if legal_rep is None or _matches_legal_rep(legal_rep.user, enterprise):
        return None
    return legal_rep


def agents_of(
    session: Session, user: User | int, enterprise_id: int, *, request_id: str | None = None
) -> list[EnterpriseBinding]:
    """Active agent bindings of an enterprise, for its legal representative."""
    require_enterprise_access(
        session,
        user,
        enterprise_id,
        roles=(BindingRole.LEGAL_REPRESENTATIVE,),
        request_id=request_id,
    )
    return list(
        session.scalars(
            select(EnterpriseBinding)
            .where(
                EnterpriseBinding.enterprise_id == enterprise_id,
                EnterpriseBinding.role == BindingRole.AGENT,
                EnterpriseBinding.status == BindingStatus.ACTIVE,
            )
            .order_by(EnterpriseBinding.id)
        )
    )


def authorisations_of(
    session: Session,
    user: User | int,
    enterprise_id: int,
    *,
    limit: int = 100,
    request_id: str | None = None,
) -> list[AgentAuthorisation]:
    """The enterprise's agent authorisations, newest first, for its legal representative."""
    require_enterprise_access(
        session,
        user,
        enterprise_id,
        roles=(BindingRole.LEGAL_REPRESENTATIVE,),
        request_id=request_id,
    )
    return list(
        session.scalars(
            select(AgentAuthorisation)
            .where(AgentAuthorisation.enterprise_id == enterprise_id)
            .order_by(AgentAuthorisation.id.desc())
            .limit(limit)
        )
    )


def authorisations_for(
    session: Session, cipher: FieldCipher, user: User, *, now: dt.datetime
) -> list[AgentAuthorisation]:
    """Open authorisations addressed to the user (their ID number and their name)."""
    if not user.is_realname_verified or user.id_number_index is None:
        return []
    candidates = session.scalars(
        select(AgentAuthorisation)
        .where(
            AgentAuthorisation.agent_id_number_index == user.id_number_index,
            AgentAuthorisation.status == AuthorisationStatus.PENDING,
            AgentAuthorisation.expires_at > now,
        )
        .options(selectinload(AgentAuthorisation.enterprise))
        .order_by(AgentAuthorisation.id)
    )
    return [a for a in candidates if _addressed_to(cipher, a, user)]


def _addressed_to(cipher: FieldCipher, authorisation: AgentAuthorisation, user: User) -> bool:
    name = real_name_of(cipher, user)
    named = cipher.decrypt(authorisation.agent_name_sealed, context=AGENT_NAME_CONTEXT)
    return (
        name is not None
        and user.id_number_index == authorisation.agent_id_number_index
        and comparable_name(name) == comparable_name(named)
    )


def agent_name_of(cipher: FieldCipher, authorisation: AgentAuthorisation) -> str:
    """The agent's name as the legal representative wrote it (mask it before showing)."""
    return cipher.decrypt(authorisation.agent_name_sealed, context=AGENT_NAME_CONTEXT)


# --- binding as legal representative ----------------------------------------------------------


def bind_as_legal_representative(
    session: Session,
    cipher: FieldCipher,
    user: User,
    uscc: str,
    *,
    now: dt.datetime,
    face_recent_seconds: int = DEFAULT_FACE_RECENT_SECONDS,
    request_id: str | None = None,
) -> EnterpriseBinding:
    """Bind the user to the enterprise as its legal representative, checked against the registry.

    Needs the FACE assurance level and the registry's ID number. An active agent binding of the
    same user is superseded. Another user's legal-representative binding is challenged: if that
    user is not the registry's legal representative (an enterprise that changed its legal
    representative, or a binding made before ID numbers were compared) it is revoked, audited,
    and the enterprise's receiving account is frozen until the rightful person confirms it.
    """
    code = normalise_uscc(uscc)
    if not user.is_realname_verified:
        raise errors.RealNameRequired()
    enterprise = find_enterprise(session, code)
    if enterprise is None:
        raise errors.EnterpriseNotFound()
    if not enterprise.is_active:
        raise errors.EnterpriseNotActive(status=enterprise.status.value)
    require_level(
        session,
        user,
        "enterprise.bind_legal_representative",
        now=now,
        face_recent_seconds=face_recent_seconds,
        request_id=request_id,
    )
    if enterprise.legal_rep_id_index is None:
        _refuse_binding(
            session, user, enterprise, "registry_id_missing", now=now, request_id=request_id
        )
        raise errors.RegistryLegalRepUnknown()
    if not _matches_legal_rep(user, enterprise):
        _refuse_binding(session, user, enterprise, "not_legal_rep", now=now, request_id=request_id)
        raise errors.NotLegalRepresentative()

    own = _active_binding(session, user.id, enterprise.id)
    if own is not None and own.role == BindingRole.LEGAL_REPRESENTATIVE:
        raise errors.AlreadyBound(binding_id=own.id)
    previous = _active_legal_rep(session, enterprise.id)
    if previous is not None:
        holder = session.get(User, previous.user_id)
        if holder is not None and _matches_legal_rep(holder, enterprise):
            raise errors.LegalRepAlreadyBound()

    # Every check has passed: only now write.
    actor = Actor("user", user.id)
    if own is not None:
        _revoke_with_agents(
            session, own, by_user_id=user.id, reason="superseded", actor=actor, now=now,
            request_id=request_id,
        )  # fmt: skip
    if previous is not None:
        _revoke_with_agents(
            session, previous, by_user_id=None, reason="legal_rep_changed", actor=actor,
            now=now, request_id=request_id,
        )  # fmt: skip
        frozen = freeze_receiving_account(
            session, enterprise.id, reason="legal_rep_changed", actor=actor, now=now
        )
        _audit_binding(
            session, "enterprise.binding_challenged", previous, actor=actor, now=now,
            request_id=request_id, challenged_user_id=previous.user_id,
            receiving_account_frozen=frozen,
        )  # fmt: skip

    binding = EnterpriseBinding(
        user_id=user.id,
        enterprise_id=enterprise.id,
        role=BindingRole.LEGAL_REPRESENTATIVE,
        status=BindingStatus.ACTIVE,
        created_at=now,
    )
    _insert_binding(session, binding)
    _audit_binding(
        session, "enterprise.bound", binding, actor=actor, now=now, request_id=request_id
    )
    return binding


def legal_rep_changed_in_registry(
    session: Session, enterprise: RegistryEnterprise, *, now: dt.datetime
) -> list[EnterpriseBinding]:
    """The registry now names another legal representative: end the old one's binding with the
    agents and open authorisations it gave, and freeze the receiving account until the new one
    confirms it. What a new representative's binding does, done at once: they may never bind.

    `enterprise` carries the registry's new row. A holder the registry still names (the same
    ID number) keeps the binding. Audited as the system, source registry; returns the bindings
    revoked. Flushes, never commits: the registry load's transaction holds it all.
    """
    actor = Actor.system()
    revoked: list[EnterpriseBinding] = []
    holder = _active_legal_rep(session, enterprise.id)
    if holder is not None and not _matches_legal_rep(holder.user, enterprise):
        revoked = _revoke_with_agents(
            session,
            holder,
            by_user_id=None,
            reason="legal_rep_changed",
            actor=actor,
            now=now,
            request_id=None,
            source="registry",
        )
    frozen = freeze_receiving_account(
        session, enterprise.id, reason="legal_rep_changed", actor=actor, now=now
    )
    if revoked or frozen:
        record(
            session,
            "enterprise.legal_rep_changed",
            actor=actor,
            now=now,
            subject_type="enterprise",
            subject_id=enterprise.id,
            details={
                "source": "registry",
                "revoked_binding_ids": [b.id for b in revoked],
                "receiving_account_frozen": frozen,
            },
        )
    session.flush()
    return revoked


# --- agents -----------------------------------------------------------------------------------


def authorise_agent(
    session: Session,
    cipher: FieldCipher,
    user: User,
    enterprise_id: int,
    *,
    agent_name: str,
    agent_id_number: str,
    now: dt.datetime,
    request_id: str | None = None,
) -> AgentAuthorisation:
    """The legal representative names a person as agent; it waits for that person to accept.

    Naming the same person again replaces their open authorisation (a fresh expiry).
    """
    legal_rep = require_enterprise_access(
        session,
        user,
        enterprise_id,
        roles=(BindingRole.LEGAL_REPRESENTATIVE,),
        now=now,
        request_id=request_id,
    )
    require_level(session, user, "enterprise.authorise_agent", now=now, request_id=request_id)
    if not legal_rep.enterprise.is_active:
        raise errors.EnterpriseNotActive(status=legal_rep.enterprise.status.value)
    name = normalize_name(agent_name)
    number, _birth = normalize_id_number(agent_id_number, today=local_day(now))
    index = cipher.blind_index(number, context=ID_NUMBER_CONTEXT)
    if index == user.id_number_index:
        raise errors.CannotAuthoriseSelf()
    agent = session.scalars(select(User).where(User.id_number_index == index)).one_or_none()
    if agent is not None and _active_binding(session, agent.id, enterprise_id) is not None:
        raise errors.AlreadyBound("该人员已绑定该企业")

    # Close the person's earlier open authorisation so the partial unique index admits this one.
    for earlier in session.scalars(
        select(AgentAuthorisation).where(
            AgentAuthorisation.enterprise_id == enterprise_id,
            AgentAuthorisation.agent_id_number_index == index,
            AgentAuthorisation.status == AuthorisationStatus.PENDING,
        )
    ):
        earlier.status = (
            AuthorisationStatus.EXPIRED
            if earlier.expires_at <= now
            else AuthorisationStatus.CANCELLED
        )
        earlier.responded_at = now
    session.flush()
    open_count = session.scalar(
        select(func.count()).where(
            AgentAuthorisation.enterprise_id == enterprise_id,
            AgentAuthorisation.status == AuthorisationStatus.PENDING,
            AgentAuthorisation.expires_at > now,
        )
    )
    if (open_count or 0) >= MAX_OPEN_AUTHORISATIONS:
        raise errors.TooManyOpenAuthorisations(limit=MAX_OPEN_AUTHORISATIONS)

    authorisation = AgentAuthorisation(
        enterprise_id=enterprise_id,
        legal_rep_binding_id=legal_rep.id,
        agent_name_sealed=cipher.encrypt(name, context=AGENT_NAME_CONTEXT),
        agent_id_number_index=index,
        agent_id_number_masked=mask_id_number(number),
        status=AuthorisationStatus.PENDING,
        created_at=now,
        expires_at=now + AUTHORISATION_TTL,
    )
    try:
        with session.begin_nested():
            session.add(authorisation)
            session.flush()
    except IntegrityError:
        raise errors.AlreadyBound("已向该人员发出授权，请勿重复提交") from None
    record(
        session,
        "enterprise.agent_invited",
        actor=Actor("user", user.id),
        now=now,
        subject_type="agent_authorisation",
        subject_id=authorisation.id,
        details={"enterprise_id": enterprise_id, "legal_rep_binding_id": legal_rep.id},
        request_id=request_id,
    )
    return authorisation


def _open_authorisation_for(
    session: Session,
    cipher: FieldCipher,
    user: User,
    authorisation_id: int,
    *,
    now: dt.datetime,
) -> AgentAuthorisation:
    if not user.is_realname_verified:
        raise errors.RealNameRequired()
    require_level(session, user, "enterprise.accept_authorisation", now=now)
    authorisation = session.get(AgentAuthorisation, authorisation_id)
    # Someone else's, answered or expired: all look the same from outside.
    if (
        authorisation is None
        or not _addressed_to(cipher, authorisation, user)
        or not authorisation.is_open(now)
    ):
        raise errors.AuthorisationNotFound()
    return authorisation


def _claim(
    session: Session,
    authorisation: AgentAuthorisation,
    status: AuthorisationStatus,
    *,
    user_id: int,
    now: dt.datetime,
) -> None:
    """Move a pending authorisation to `status` once: of two racing answers one wins."""
    claimed = session.execute(
        update(AgentAuthorisation)
        .where(
            AgentAuthorisation.id == authorisation.id,
            AgentAuthorisation.status == AuthorisationStatus.PENDING,
            AgentAuthorisation.expires_at > now,
        )
        .values(status=status, responded_at=now, agent_user_id=user_id)
        .execution_options(synchronize_session="fetch")
    )
    if affected_rows(claimed) != 1:
        raise errors.AuthorisationNotFound()


def accept_authorisation(
    session: Session,
    cipher: FieldCipher,
    user: User,
    authorisation_id: int,
    *,
    now: dt.datetime,
    request_id: str | None = None,
) -> EnterpriseBinding:
    """The named person accepts: they become an agent of the enterprise."""
    authorisation = _open_authorisation_for(session, cipher, user, authorisation_id, now=now)
    legal_rep = authorisation.legal_rep_binding
    if not legal_rep.is_active:
        raise errors.AuthorisationNotFound()
    if not authorisation.enterprise.is_active:
        raise errors.EnterpriseNotActive(status=authorisation.enterprise.status.value)
    if _active_binding(session, user.id, authorisation.enterprise_id) is not None:
        raise errors.AlreadyBound()

    _claim(session, authorisation, AuthorisationStatus.ACCEPTED, user_id=user.id, now=now)
    binding = EnterpriseBinding(
        user_id=user.id,
        enterprise_id=authorisation.enterprise_id,
        role=BindingRole.AGENT,
        authorised_by_binding_id=legal_rep.id,
        status=BindingStatus.ACTIVE,
        created_at=now,
    )
    _insert_binding(session, binding)
    authorisation.agent_binding_id = binding.id
    session.flush()
    _audit_binding(
        session,
        "enterprise.agent_authorised",
        binding,
        actor=Actor("user", user.id),
        now=now,
        request_id=request_id,
        authorisation_id=authorisation.id,
        authorised_by_binding_id=legal_rep.id,
    )
    return binding


def decline_authorisation(
    session: Session,
    cipher: FieldCipher,
    user: User,
    authorisation_id: int,
    *,
    now: dt.datetime,
    request_id: str | None = None,
) -> AgentAuthorisation:
    """The named person declines the authorisation."""
    authorisation = _open_authorisation_for(session, cipher, user, authorisation_id, now=now)
    _claim(session, authorisation, AuthorisationStatus.DECLINED, user_id=user.id, now=now)
    record(
        session,
        "enterprise.agent_declined",
        actor=Actor("user", user.id),
        now=now,
        subject_type="agent_authorisation",
        subject_id=authorisation.id,
        details={"enterprise_id": authorisation.enterprise_id},
        request_id=request_id,
    )
    return authorisation


def cancel_authorisation(
    session: Session,
    user: User | int,
    enterprise_id: int,
    authorisation_id: int,
    *,
    now: dt.datetime,
    request_id: str | None = None,
) -> AgentAuthorisation:
    """The legal representative withdraws an authorisation not yet answered."""
    require_enterprise_access(
        session,
        user,
        enterprise_id,
        roles=(BindingRole.LEGAL_REPRESENTATIVE,),
        now=now,
        request_id=request_id,
    )
    authorisation = session.get(AgentAuthorisation, authorisation_id)
    if authorisation is None or authorisation.enterprise_id != enterprise_id:
        raise errors.AuthorisationNotFound()
    cancelled = session.execute(
        update(AgentAuthorisation)
        .where(
            AgentAuthorisation.id == authorisation_id,
            AgentAuthorisation.status == AuthorisationStatus.PENDING,
        )
        .values(status=AuthorisationStatus.CANCELLED, responded_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if affected_rows(cancelled) != 1:
        raise errors.AuthorisationNotFound()
    record(
        session,
        "enterprise.agent_invitation_cancelled",
        actor=Actor("user", _user_id(user)),
        now=now,
        subject_type="agent_authorisation",
        subject_id=authorisation_id,
        details={"enterprise_id": enterprise_id},
        request_id=request_id,
    )
    return authorisation


# --- revocation -------------------------------------------------------------------------------


def _revoke(
    session: Session,
    binding: EnterpriseBinding,
    *,
    by_user_id: int | None,
    reason: str,
    now: dt.datetime,
) -> bool:
    """Revoke one active binding; False when a concurrent request revoked it first."""
    revoked = session.execute(
        update(EnterpriseBinding)
        .where(EnterpriseBinding.id == binding.id, EnterpriseBinding.status == BindingStatus.ACTIVE)
        .values(
            status=BindingStatus.REVOKED,
            revoked_at=now,
            revoked_by_user_id=by_user_id,
            revoked_reason=reason,
        )
        .execution_options(synchronize_session="fetch")
    )
    return affected_rows(revoked) == 1


def _revoke_with_agents(
    session: Session,
    binding: EnterpriseBinding,
    *,
    by_user_id: int | None,
    reason: str,
    actor: Actor,
    now: dt.datetime,
    request_id: str | None,
    **details: object,
) -> list[EnterpriseBinding]:
    """Revoke a binding; for a legal representative also the agents and open authorisations
    that came from it. Returns every binding revoked here; `details` go into each audit entry."""
    if not _revoke(session, binding, by_user_id=by_user_id, reason=reason, now=now):
        return []
    _audit_binding(
        session,
        "enterprise.binding_revoked",
        binding,
        actor=actor,
        now=now,
        request_id=request_id,
        reason=reason,
        **details,
    )
    revoked = [binding]
    if binding.role != BindingRole.LEGAL_REPRESENTATIVE:
        return revoked
    agents = session.scalars(
        select(EnterpriseBinding).where(
            EnterpriseBinding.authorised_by_binding_id == binding.id,
            EnterpriseBinding.status == BindingStatus.ACTIVE,
        )
    ).all()
    for agent in agents:
        if _revoke(session, agent, by_user_id=by_user_id, reason="cascade", now=now):
            _audit_binding(
                session,
                "enterprise.binding_revoked",
                agent,
                actor=actor,
                now=now,
                request_id=request_id,
                reason="cascade",
                cascade_from=binding.id,
                **details,
            )
            revoked.append(agent)
    session.execute(
        update(AgentAuthorisation)
        .where(
            AgentAuthorisation.legal_rep_binding_id == binding.id,
            AgentAuthorisation.status == AuthorisationStatus.PENDING,
        )
        .values(status=AuthorisationStatus.CANCELLED, responded_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return revoked


def revoke_binding(
    session: Session,
    user: User | int,
    binding_id: int,
    *,
    now: dt.datetime,
    request_id: str | None = None,
) -> list[EnterpriseBinding]:
    """Revoke a binding: one's own, or as legal representative an agent's of the enterprise.

    Revoking a legal representative's binding revokes the agents it authorised. Returns every
    binding revoked. Bindings the user may not touch are reported as not found.
    """
    user_id = _user_id(user)
    binding = session.get(EnterpriseBinding, binding_id)
    if binding is None or not binding.is_active:
        raise errors.BindingNotFound()
    if binding.user_id == user_id:
        reason = "self"
    elif binding.role == BindingRole.AGENT and _is_legal_rep(session, user_id, binding):
        reason = "legal_representative"
    else:
        raise errors.BindingNotFound()
    revoked = _revoke_with_agents(
        session,
        binding,
        by_user_id=user_id,
        reason=reason,
        actor=Actor("user", user_id),
        now=now,
        request_id=request_id,
    )
    if not revoked:
        raise errors.BindingNotFound()
    return revoked


def _is_legal_rep(session: Session, user_id: int, binding: EnterpriseBinding) -> bool:
    own = _active_binding(session, user_id, binding.enterprise_id)
    return own is not None and own.role == BindingRole.LEGAL_REPRESENTATIVE
