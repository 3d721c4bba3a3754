"""The authorisation matrix, walked for real: every route x principal x (own / another's).

`tests/core/authz_matrix.py` says, for each (method, route template) of `app.url_map`, who may
call it; this module makes each of those requests against one small district built once per
module and checks the answer. A route without an entry fails, and so does an entry whose route
no longer exists: a new endpoint cannot ship without someone deciding who may call it.

"allow" means the request got past authorisation: a 2xx or 3xx, or a 4xx about the body or the
state (400, 409, 422...). "deny" means 401/403, or 404 where the project hides that a resource
exists (another's ticket, application or licence is "not found"). Bodies are minimal: `{}`,
unless the scope is read from the body or the query (`BODIES`, `QUERIES`), where an empty body
would be refused as invalid before the scope is looked at and so prove nothing.

Every request runs inside a savepoint rolled back afterwards, so a request that acts (approve,
revoke, cancel, log out) leaves the district as it was for the next one.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from app.applications import workflow
from app.applications.models import Application, ApplicationStatus, Inspection, InspectionStatus
from app.appointments.models import Appointment, AppointmentSlot, AppointmentStatus
from app.audit.service import Actor
from app.db import get_session, utcnow
from app.enterprises.models import (
    BindingRole,
    BindingStatus,
    EnterpriseBinding,
    RegistryEnterprise,
    RegistryStatus,
)
from app.enterprises.service import authorise_agent
from app.identity.models import StaffAccount, StaffRole, StaffRoleGrant, User
from app.identity.principals import principal_for
from app.identity.realname import verify_real_name
from app.identity.sessions import open_family, start_session
from app.licences.models import Licence, LicenceStatus
from app.licences.service import show_code
from app.materials.models import ApplicationMaterial
from app.matters import catalogue, parameters, rules
from app.matters.cli import CATALOGUE_DIR
from app.matters.models import Matter
from app.organisation.catalogue import load_organisation
from app.organisation.models import Hall, HallKind
from app.policies import criteria as crit
from app.policies import profiles, reference
from app.policies import service as policies
from app.policies.accounts import ACCOUNT_CONTEXT
from app.policies.models import Policy, ReceivingAccount
from app.queueing import displays
from app.queueing.codes import create_printed_code
from app.queueing.demo import setup_queue_hall
from app.queueing.models import Ticket, TicketStatus
from app.queueing.settings import from_config
from app.ratings.models import Rating, RatingFollowUp, RatingLevel
from app.seals.context import SealContext
from app.seals.issuing import Holder, issue_document
from app.seals.lifecycle import SealActor, create_seal
from app.seals.models import IssuedDocument, SealKind
from app.security import get_cipher
from blueprints.applications.present import material_storage
from blueprints.console.access import FAMILY_KEY, SEEN_KEY, STAFF_KEY
from blueprints.console.screen import DISPLAY_KEY
from tests.applications.conftest import advert_form, drainage_form, weather_form
from tests.core.authz_matrix import ALLOW, DENY, MATRIX, OWN, PRINCIPALS
from tests.factories.appointments import ticket_values
from tests.factories.enterprises import uscc_for
from tests.factories.identity import _ServiceVerifier, app_token_settings, id_number_for
from tests.factories.seals import WEATHER_DATA, handwriting_png
from tests.factories.staff import TEST_HASHER
from tests.support import database as test_database

# Served by Flask and flask-smorest themselves; they expose no data (as in test_routes_authz).
FRAMEWORK_ENDPOINTS = {
    "static",
    "console.static",
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
}
CITIZENS = ("user", "citizen", "rep", "agent")
HALL_ROLES = ("clerk", "manager")
# A documentation address (RFC 5737): not this machine, not a trusted proxy.
CALLER_ADDRESS = "203.0.113.7"
# Path parameters that name no one's resource: the same value is used for both sides.
NEUTRAL_PARAMETERS = {"day", "fmt", "token", "name", "filename", "action", "version"}
PARAMETER = re.compile(r"<(?:([a-z]+)(?:\([^)]*\))?:)?(\w+)>")


# -- the district --------------------------------------------------------------------------------


@dataclass
class District:
    """What the requests need: the module's connection, each principal's path parameters on
    both sides, API headers, console clients with their session cookie and CSRF token."""

    connection: Connection
    own: dict[str, dict[str, Any]]
    other: dict[str, dict[str, Any]]
    headers: dict[str, dict[str, str]]
    api: FlaskClient
    console: dict[str, FlaskClient]
    cookie_name: str
    cookies: dict[str, str]
    csrf: dict[str, str]
    neutral: dict[str, Any]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _user(session: Session, name: str, *, level: str | None, n: int) -> User:
    user = User(openid=f"o_authz_matrix_{n:04d}")
    session.add(user)
    session.flush()
    if level is not None:
        now = utcnow()
        verify_real_name(
            session,
            get_cipher(),
            _ServiceVerifier(),
            user,
            name=name,
            id_number=id_number_for(order=700 + n),
            now=now,
        )
        if level == "face":
            user.face_verified_at = now
    session.flush()
    return user


def _staff(
    session: Session, username: str, role: StaffRole, hall: int | None, dept: int | None
) -> StaffAccount:
    account = StaffAccount(
        username=username,
        display_name=username,
        password_hash=TEST_HASHER.hash("Panyu-2024-pass"),
    )
    account.grants = [StaffRoleGrant(role=role, hall_id=hall, department_id=dept)]
    session.add(account)
    session.flush()
    return account


def _bind(
    session: Session,
    user: User,
    enterprise: RegistryEnterprise,
    role: BindingRole,
    by: EnterpriseBinding | None = None,
) -> EnterpriseBinding:
    binding = EnterpriseBinding(
        user_id=user.id,
        enterprise_id=enterprise.id,
        role=role,
        status=BindingStatus.ACTIVE,
        authorised_by_binding_id=by.id if by else None,
    )
    session.add(binding)
    session.flush()
    return binding


def _application(
    session: Session,
    matter: Matter,
    user: User,
    status: ApplicationStatus,
    n: int,
    form: dict[str, Any],
    enterprise: RegistryEnterprise | None = None,
) -> Application:
    now = utcnow()
    flow = workflow.for_kind(matter.kind)
    application = Application(
        number=f"AZ{now:%Y%m%d}{n:06d}",
        matter_id=matter.id,
        matter_code=matter.code,
        matter_version=matter.current_version,
        workflow=flow.name,
        workflow_version=flow.version,
        department_id=matter.department_id,
        applicant_user_id=user.id,
        enterprise_id=enterprise.id if enterprise else None,
        acting_as="legal_representative" if enterprise else "citizen",
        form=form,
        status=status,
        submitted_at=None if status == ApplicationStatus.DRAFT else now,
        updated_at=now,
    )
    session.add(application)
    session.flush()
    return application


def build_district(session: Session, app: Flask, seals: SealContext) -> dict[str, Any]:
    """Halls A and B, departments A (城管) and B (水务), the principals and their resources."""
    now = utcnow()
    settings = from_config(app.config)
    departments, _halls = load_organisation(session)
    catalogue.load_directory(session, CATALOGUE_DIR, now=now)
    # Two departments with 告知承诺 permits (their inspections need the commitment); the
    # citizens' own applications are for the weather bureau's certificate, a third department.
    dept_a, dept_b = departments["PY-CGJ"], departments["PY-SWJ"]
    matters = {m.code: m for m in session.scalars(select(Matter))}
    matter_a, matter_b = matters["PY-CGJ-LSGG"], matters["PY-SWJ-PSXK"]
    matter_citizen = matters["PY-QXJ-QXZM"]

    halls = {}
    for side in ("A", "B"):
        hall = Hall(code=f"AUTHZ-{side}", name=f"授权矩阵测试大厅{side}", kind=HallKind.TOWN)
        session.add(hall)
        session.flush()
        halls[side] = setup_queue_hall(session, hall)
    hall_a, hall_b = halls["A"].hall, halls["B"].hall

    users = {
        "user": _user(session, "王五", level=None, n=1),
        "citizen": _user(session, "李四", level="verified", n=2),
        "rep": _user(session, "张三", level="face", n=3),
        "agent": _user(session, "赵六", level="verified", n=4),
        "stranger": _user(session, "钱七", level="face", n=5),
        "stranger_rep": _user(session, "孙八", level="face", n=6),
    }
    enterprises = {}
    for key, serial in (("E1", 9101), ("E2", 9102)):
        enterprises[key] = RegistryEnterprise(
            uscc=uscc_for(serial),
            name=f"广州市番禺区授权矩阵{key}有限公司",
            legal_rep_name="张三",
            status=RegistryStatus.EXISTING,
            registered_town="市桥街",
            established_on=dt.date(2015, 6, 1),
            synced_at=now,
        )
        session.add(enterprises[key])
    session.flush()
    e1, e2 = enterprises["E1"], enterprises["E2"]
    rep_binding = _bind(session, users["rep"], e1, BindingRole.LEGAL_REPRESENTATIVE)
    agent_binding = _bind(session, users["agent"], e1, BindingRole.AGENT, rep_binding)
    e2_rep_binding = _bind(session, users["stranger_rep"], e2, BindingRole.LEGAL_REPRESENTATIVE)
    e2_agent_binding = _bind(session, users["stranger"], e2, BindingRole.AGENT, e2_rep_binding)
    invitation_own = authorise_agent(
        session,
        get_cipher(),
        users["rep"],
        e1.id,
        agent_name="李四",
        agent_id_number=id_number_for(order=702),
        now=now,
    )
    invitation_other = authorise_agent(
        session,
        get_cipher(),
        users["stranger_rep"],
        e2.id,
        agent_name="王五",
        agent_id_number=id_number_for(order=777),
        now=now,
    )

    staff = {
        "clerk": _staff(session, "authz.clerk", StaffRole.WINDOW_CLERK, hall_a.id, None),
        "manager": _staff(session, "authz.manager", StaffRole.HALL_MANAGER, hall_a.id, None),
        "reviewer": _staff(session, "authz.reviewer", StaffRole.REVIEWER, None, dept_a.id),
        "officer": _staff(session, "authz.officer", StaffRole.POLICY_OFFICER, None, dept_a.id),
        "admin": _staff(session, "authz.admin", StaffRole.ADMIN, None, None),
        "spare": _staff(session, "authz.spare", StaffRole.WINDOW_CLERK, hall_b.id, None),
    }

    # Tickets: each citizen's own (served and rated), and a stranger's in each hall with a bad
    # rating, whose follow-up belongs to that hall.
    taken = now - dt.timedelta(hours=1)
    category_a, category_b = halls["A"].categories["A"], halls["B"].categories["A"]
    tickets: dict[str, Ticket] = {}
    ratings_for: list[tuple[Ticket, RatingLevel]] = []
    for key, category, user in (
        *((p, category_a, users[p]) for p in CITIZENS),
        ("hall_A", category_a, users["stranger"]),
        ("hall_B", category_b, users["stranger"]),
    ):
        ticket = Ticket(
            **ticket_values(
                category,
                taken,
                status=TicketStatus.DONE,
                user=user,
                wait_seconds=60,
                service_seconds=300,
            )
        )
        session.add(ticket)
        session.flush()
        tickets[key] = ticket
        ratings_for.append(
            (ticket, RatingLevel.DISSATISFIED if key.startswith("hall") else RatingLevel.SATISFIED)
        )
    follow_ups: dict[str, RatingFollowUp] = {}
    for ticket, level in ratings_for:
        rating = Rating(
            ticket_id=ticket.id,
            user_id=ticket.user_id,
            hall_id=ticket.hall_id,
            level=level,
            score=2 if level == RatingLevel.DISSATISFIED else 4,
            rated_at=now,
        )
        session.add(rating)
        session.flush()
        if level == RatingLevel.DISSATISFIED:
            follow_ups["hall_A" if ticket.hall_id == hall_a.id else "hall_B"] = RatingFollowUp(
                rating_id=rating.id, hall_id=ticket.hall_id, due_at=now + dt.timedelta(days=5)
            )
    session.add_all(follow_ups.values())

    # Appointments: a slot tomorrow in each hall; each citizen's own and a stranger's in hall A.
    starts = (now + dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    slots = {}
    for key, category in (("A", category_a), ("B", category_b)):
        slots[key] = AppointmentSlot(
            hall_id=category.hall_id,
            category_id=category.id,
            day=starts.date(),
            starts_at=starts,
            ends_at=starts + dt.timedelta(minutes=30),
            capacity=10,
            booked=0,
        )
        session.add(slots[key])
    session.flush()
    appointments = {}
    for key in (*CITIZENS, "stranger"):
        appointments[key] = Appointment(
            slot_id=slots["A"].id,
            user_id=users[key].id,
            hall_id=hall_a.id,
            category_id=category_a.id,
            day=starts.date(),
            starts_at=starts,
            status=AppointmentStatus.BOOKED,
            booked_at=now,
        )
        slots["A"].booked += 1
        session.add(appointments[key])
    session.flush()

    DRAFT, REVIEW = ApplicationStatus.DRAFT, ApplicationStatus.UNDER_REVIEW
    # Applications: drafts of each citizen (the legal representative's for the enterprise, so
    # its agent's too), and a stranger's under review in each department.
    applications = {
        "user": _application(session, matter_citizen, users["user"], DRAFT, 1, weather_form()),
        "citizen": _application(
            session, matter_citizen, users["citizen"], DRAFT, 2, weather_form()
        ),
        "E1": _application(session, matter_a, users["rep"], DRAFT, 3, advert_form(), e1),
        "dept_A": _application(session, matter_a, users["stranger"], REVIEW, 4, advert_form()),
        "dept_B": _application(session, matter_b, users["stranger"], REVIEW, 5, drainage_form()),
    }
    storage = material_storage()
    png = _png()
    key_of_png = storage.put(png)
    for key, material in (
        ("user", "applicant_id"),
        ("citizen", "applicant_id"),
        ("E1", "design_drawing"),
        ("dept_A", "design_drawing"),
        ("dept_B", "drainage_plan"),
    ):
        application = applications[key]
        session.add(
            ApplicationMaterial(
                application_id=application.id,
                material_id=material,
                source="upload",
                filename="m.png",
                content_type="image/png",
                size_bytes=len(png),
                sha256=key_of_png,
                storage_key=key_of_png,
                added_by=application.applicant_user_id,
                added_at=now,
            )
        )
    session.flush()
    for key, matter in (("dept_A", matter_a), ("dept_B", matter_b)):
        # The rules' decision that sent them to a reviewer (the replay reads it).
        application = applications[key]
        version = catalogue.get_version(session, matter.code, application.matter_version)
        rule_set = catalogue.rule_set_of(version)
        assert rule_set is not None
        decision = rules.decide(rule_set, {}, parameters.current_values(session, matter, rule_set))
        application.decision = decision.as_json()
    for key in ("user", "citizen", "E1"):
        application = applications[key]
        session.add(
            Rating(
                application_id=application.id,
                user_id=application.applicant_user_id,
                department_id=application.department_id,
                level=RatingLevel.SATISFIED,
                score=4,
                rated_at=now,
            )
        )
    for key in ("dept_A", "dept_B"):
        application = applications[key]
        rating = Rating(
            application_id=application.id,
            user_id=application.applicant_user_id,
            department_id=application.department_id,
            level=RatingLevel.DISSATISFIED,
            score=2,
            rated_at=now,
        )
        session.add(rating)
        session.flush()
        follow_ups[key] = RatingFollowUp(
            rating_id=rating.id,
            department_id=application.department_id,
            due_at=now + dt.timedelta(days=5),
        )
        session.add(follow_ups[key])
    inspections = {}
    for key in ("dept_A", "dept_B"):
        application = applications[key]
        inspections[key] = Inspection(
            application_id=application.id,
            department_id=application.department_id,
            status=InspectionStatus.OPEN,
            due_at=now + dt.timedelta(days=30),
        )
        session.add(inspections[key])
    session.flush()

    # Seals of both departments, a document under each, and licences in wallets.
    seal_of = {}
    for key, department in (("A", dept_a), ("B", dept_b)):
        seal_of[key] = create_seal(
            session,
            seals,
            department=department,
            kind=SealKind.APPROVAL,
            valid_until=now + dt.timedelta(days=365),
            authorised_roles=["reviewer"],
            authorised_templates=["meteorological_certificate"],
            authorised_matters=["meteorological_certificate"],
            actor=Actor.system(),
            now=now,
        )
    documents: dict[str, IssuedDocument] = {}
    for key in ("A", "B"):
        documents[key] = issue_document(
            session,
            seals,
            seal=seal_of[key],
            template="meteorological_certificate",
            holder=Holder(name="广州市番禺区某某建筑有限公司", id_number=uscc_for(9103)),
            data=WEATHER_DATA,
            actor=SealActor("system"),
            now=now,
            matter="meteorological_certificate",
        )
    licences = {}
    for n, (key, holder_user, issuer) in enumerate(
        (
            ("user", users["user"], "B"),
            ("citizen", users["citizen"], "B"),
            ("E1", None, "A"),
            ("dept_A", users["stranger"], "A"),
            ("dept_B", users["stranger"], "B"),
        )
    ):
        document = documents[issuer]
        licences[key] = Licence(
            number=f"AZ-LIC-{n}",
            template="meteorological_certificate",
            title="气象证明",
            matter_code="PY-QXJ-QXZM",
            holder_kind="enterprise" if holder_user is None else "person",
            holder_user_id=holder_user.id if holder_user else None,
            holder_enterprise_id=e1.id if holder_user is None else None,
            holder_masked="张*",
            data={},
            valid_from=now,
            valid_until=now + dt.timedelta(days=30),
            status=LicenceStatus.VALID,
            document_id=document.id,
        )
        session.add(licences[key])
    session.flush()

    # Both enterprises' profiles, as their legal representatives declared them (still to be
    # confirmed by an officer), and their receiving accounts.
    for enterprise, rep_user in ((e1, users["rep"]), (e2, users["stranger_rep"])):
        profile = profiles.ensure_profile(session, enterprise, now=now)
        values = profiles.clean(
            {"employees": 30, "tags": [reference.Tag.EXPORTER.value]}, profiles.SELF_DECLARED
        )
        profiles.update_profile(
            session,
            profile,
            values,
            source=profiles.SELF,
            user_id=rep_user.id,
            now=now,
            rematch=False,
        )
        session.add(
            ReceivingAccount(
                enterprise_id=enterprise.id,
                bank_name="中国银行",
                account_name=enterprise.name,
                account_number_sealed=get_cipher().encrypt(
                    "6222020200001234567", context=ACCOUNT_CONTEXT
                ),
                account_number_masked="6222 **** 4567",
                confirmed_by_user_id=rep_user.id,
                confirmed_at=now,
            )
        )
    session.flush()

    # Policies of both departments, published.
    policy_of: dict[str, Policy] = {}
    for key, department in (("A", dept_a), ("B", dept_b)):
        doc = f"番测〔2026〕{90 + len(policy_of)}号"
        policy = policies.create_policy(
            session,
            department_id=department.id,
            fields={
                "title": f"授权矩阵政策{key}",
                "doc_number": doc,
                "summary": "测试",
                "benefit_kind": "subsidy",
                "delivery": "automatic",
            },
            criteria=crit.from_structured({"tags_all": [reference.Tag.EXPORTER.value]}, doc=doc),
            staff_id=None,
            now=now,
        )
        policies.publish(session, policy, staff_id=None, now=now)
        policy_of[key] = policy

    codes = {
        key: create_printed_code(session, settings, halls[key].hall.id, label="入口", staff_id=None)
        for key in ("A", "B")
    }
    screen = {
        key: displays.register(session, halls[key].hall.id, name="入口屏", staff_id=None, now=now)
        for key in ("A", "B")
    }
    session.flush()
    return {
        "halls": halls,
        "users": users,
        "staff": staff,
        "e1": e1,
        "e2": e2,
        "bindings": {
            "rep": rep_binding,
            "agent": agent_binding,
            "e2_rep": e2_rep_binding,
            "e2_agent": e2_agent_binding,
        },
        "invitations": {"own": invitation_own, "other": invitation_other},
        "tickets": tickets,
        "follow_ups": follow_ups,
        "slots": slots,
        "appointments": appointments,
        "applications": applications,
        "inspections": inspections,
        "seals": seal_of,
        "documents": documents,
        "licences": licences,
        "policies": policy_of,
        "codes": codes,
        "displays": screen,
        "departments": (dept_a, dept_b),
        "matters": (matter_a, matter_b),
        "licence_token": show_code(settings, licences["citizen"], now=now).token,
    }


def _parameters(
    world: dict[str, Any], principal: str, staff_ids: dict[str, int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The path parameters of `principal`'s own resources, and of another's."""
    halls, apps, tickets = world["halls"], world["applications"], world["tickets"]
    dept_a, dept_b = world["departments"]
    matter_a, matter_b = world["matters"]
    pairs: dict[str, tuple[Any, Any]] = {
        "hall_id": (halls["A"].hall.id, halls["B"].hall.id),
        "window_id": (halls["A"].windows[1].id, halls["B"].windows[1].id),
        "category_id": (halls["A"].categories["A"].id, halls["B"].categories["A"].id),
        "code_id": (world["codes"]["A"].id, world["codes"]["B"].id),
        "display_id": (world["displays"]["A"].display.id, world["displays"]["B"].display.id),
        "slot_id": (world["slots"]["A"].id, world["slots"]["B"].id),
        "ticket_id": (tickets["hall_A"].id, tickets["hall_B"].id),
        "follow_up_id": (world["follow_ups"]["hall_A"].id, world["follow_ups"]["hall_B"].id),
        "appointment_id": (
            world["appointments"]["stranger"].id,
            world["appointments"]["stranger"].id,
        ),
        "department_id": (dept_a.id, dept_b.id),
        "number": (apps["dept_A"].number, apps["dept_B"].number),
        "material_id": ("design_drawing", "drainage_plan"),
        "inspection_id": (world["inspections"]["dept_A"].id, world["inspections"]["dept_B"].id),
        "licence_id": (world["licences"]["dept_A"].id, world["licences"]["dept_B"].id),
        "seal_id": (world["seals"]["A"].id, world["seals"]["B"].id),
        "public_id": (world["documents"]["A"].public_id, world["documents"]["B"].public_id),
        "policy_id": (world["policies"]["A"].id, world["policies"]["B"].id),
        "enterprise_id": (world["e1"].id, world["e2"].id),
        "binding_id": (world["bindings"]["rep"].id, world["bindings"]["e2_rep"].id),
        "agent_binding_id": (world["bindings"]["agent"].id, world["bindings"]["e2_agent"].id),
        "authorisation_id": (world["invitations"]["own"].id, world["invitations"]["other"].id),
        "staff_id": (staff_ids.get(principal, staff_ids["spare"]), staff_ids["spare"]),
        "matter": (matter_a.code, matter_b.code),
    }
    if principal in CITIZENS:
        mine = "E1" if principal in ("rep", "agent") else principal
        pairs.update(
            ticket_id=(tickets[principal].id, tickets["hall_A"].id),
            appointment_id=(
                world["appointments"][principal].id,
                world["appointments"]["stranger"].id,
            ),
            number=(apps[mine].number, apps["dept_A"].number),
            licence_id=(world["licences"][mine].id, world["licences"]["dept_A"].id),
            material_id=("design_drawing" if mine == "E1" else "applicant_id", "design_drawing"),
        )
        if principal == "agent":
            pairs["binding_id"] = (world["bindings"]["agent"].id, world["bindings"]["e2_rep"].id)
    if principal == "reviewer":
        pairs["follow_up_id"] = (world["follow_ups"]["dept_A"].id, world["follow_ups"]["dept_B"].id)
    return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}


@pytest.fixture(scope="module")
def district(app: Flask, seal_context: SealContext) -> Iterator[District]:
    """The district, committed to an outer transaction of one connection for the module."""
    with test_database.outer_transaction(app) as connection:
        with app.app_context():
            session = get_session()
            world = build_district(session, app, seal_context)
            staff_ids = {key: account.id for key, account in world["staff"].items()}
            settings = app_token_settings(app)
            headers: dict[str, dict[str, str]] = {"anon": {}}
            for key in CITIZENS:
                pair = start_session(
                    session,
                    principal_for(session, "user", world["users"][key].id),
                    settings=settings,
                    refresh_ttl_seconds=3600,
                    now=utcnow(),
                )
                headers[key] = {"Authorization": f"Bearer {pair.access_token}"}
            families = {}
            for key in ("clerk", "manager", "reviewer", "officer", "admin"):
                pair = start_session(
                    session,
                    principal_for(session, "staff", staff_ids[key]),
                    settings=settings,
                    refresh_ttl_seconds=3600,
                    now=utcnow(),
                )
                headers[key] = {"Authorization": f"Bearer {pair.access_token}"}
                families[key] = open_family(session, "staff", staff_ids[key], now=utcnow()).id
            headers["display"] = {"Authorization": f"Display {world['displays']['A'].token}"}
            own, other = {}, {}
            for principal in PRINCIPALS:
                own[principal], other[principal] = _parameters(world, principal, staff_ids)
            neutral = {
                "token": world["licence_token"],
                "code": seal_context.codes.code_for(world["documents"]["A"].public_id),
                "crl": "issuing",
                "parameter": {
                    world["matters"][0].code: "max_days",
                    world["matters"][1].code: "max_daily_volume_m3",
                },
                "version": 1,
                "day": (utcnow() + dt.timedelta(days=20)).date().isoformat(),
            }
            session.commit()
        console: dict[str, FlaskClient] = {}
        csrf: dict[str, str] = {}
        cookies: dict[str, str] = {}
        for principal in PRINCIPALS:
            client = app.test_client()
            page = client.get("/console/login").get_data(as_text=True)
            found = re.search(r'name="csrf-token" content="([^"]+)"', page)
            assert found, "the console's login page carries no CSRF token"
            csrf[principal] = found.group(1)
            # The cookie session is the console's (its requests alone open one).
            with client.session_transaction("/console/") as cookie:
                if principal in families:
                    cookie[STAFF_KEY] = staff_ids[principal]
                    cookie[FAMILY_KEY] = families[principal]
                    cookie[SEEN_KEY] = int(time.time())
                elif principal == "display":
                    cookie[DISPLAY_KEY] = world["displays"]["A"].token
            console[principal] = client
            stored = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
            assert stored is not None
            cookies[principal] = stored.value
        yield District(
            connection=connection,
            own=own,
            other=other,
            headers=headers,
            api=app.test_client(),
            console=console,
            cookie_name=app.config["SESSION_COOKIE_NAME"],
            cookies=cookies,
            csrf=csrf,
            neutral=neutral,
        )


# -- the requests --------------------------------------------------------------------------------

# Bodies and queries for routes whose scope is read from them (an empty one would be refused as
# invalid before the scope is checked). Each is a function of the side's path parameters.
PNG = _png()
HANDWRITING = base64.b64encode(handwriting_png()).decode()
A = "/api/v1"
APP = A + "/applications/<string:number>"
REVIEW = A + "/review/applications/<string:number>"
TERMINAL = A + "/terminal/windows/<int:window_id>"
REASON = {"reason": "授权矩阵测试"}
# Well formed, but no personal code the server issued: refused after the window's hall is checked.
UNKNOWN_CODE = "not-a-personal-code"
BODIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    f"POST {A}/me/enterprises": lambda v: {"uscc": uscc_for(9101), "role": "legal_representative"},
    f"POST {A}/me/appointments": lambda v: {"slot_id": v["slot_id"]},
    f"POST {A}/applications": lambda v: {
        "matter_code": "PY-QXJ-QXZM",
        "form": weather_form(),
        "submit": False,
    },
    f"PUT {APP}/form": lambda v: {"form": {}},
    f"POST {APP}/signature": lambda v: {"handwriting_png": HANDWRITING},
    f"POST {APP}/withdraw": lambda v: REASON,
    f"POST {APP}/resubmit": lambda v: {},
    f"POST {APP}/materials/<string:material_id>": lambda v: PNG,
    f"POST {APP}/materials/<string:material_id>/licence": lambda v: {"licence_id": v["licence_id"]},
    f"POST {APP}/rating": lambda v: {"level": "satisfied"},
    f"POST {A}/me/tickets/<int:ticket_id>/rating": lambda v: {"level": "satisfied"},
    f"POST {A}/me/appointments/<int:appointment_id>/check-in": lambda v: {"code": UNKNOWN_CODE},
    f"POST {A}/terminal/appointments/check-in": lambda v: {
        "hall_id": v["hall_id"],
        "code": UNKNOWN_CODE,
    },
    f"POST {A}/enterprises/<int:enterprise_id>/agent-authorisations": lambda v: {
        "agent_name": "周九",
        "agent_id_number": id_number_for(order=799),
    },
    f"PATCH {A}/appointment-slots/<int:slot_id>": lambda v: {"capacity": 9},
    f"POST {A}/rating-follow-ups/<int:follow_up_id>/close": lambda v: {
        "rectification": "已约谈窗口人员并整改"
    },
    f"PUT {A}/halls/<int:hall_id>/hours": lambda v: {"intervals": []},
    f"PUT {A}/halls/<int:hall_id>/special-days/<string:day>": lambda v: {"closed": True},
    f"POST {A}/halls/<int:hall_id>/categories": lambda v: {"name": "授权测试", "prefix": "Z"},
    f"POST {A}/halls/<int:hall_id>/windows": lambda v: {"number": 77},
    f"POST {A}/halls/<int:hall_id>/displays": lambda v: {"name": "二楼屏"},
    f"POST {TERMINAL}/identify": lambda v: {"code": UNKNOWN_CODE},
    f"POST {TERMINAL}/take": lambda v: {"code": UNKNOWN_CODE, "category_id": v["category_id"]},
    f"POST {TERMINAL}/green-channel": lambda v: {"code": UNKNOWN_CODE, "note": "残疾人证"},
    f"POST {TERMINAL}/status": lambda v: {"status": "paused"},
    f"POST {TERMINAL}/call": lambda v: {"ticket_id": v["ticket_id"]},
    f"POST {A}/staff/policies": lambda v: {
        "department_id": v["department_id"],
        "title": "授权矩阵新政策",
        "doc_number": "番测〔2026〕99号",
        "summary": "测试",
        "benefit_kind": "subsidy",
        "delivery": "application",
    },
    f"POST {A}/staff/policies/<int:policy_id>/withdraw": lambda v: REASON,
    f"POST {A}/staff/enterprises/<int:enterprise_id>/policy-facts/review": lambda v: {
        "fact": "employees",
        "decision": "confirm",
    },
    f"PUT {A}/enterprises/<int:enterprise_id>/policy-account": lambda v: {
        "bank_name": "中国银行",
        "account_name": "广州市番禺区授权矩阵E1有限公司",
        "account_number": "6222020200001234567",
    },
    f"PUT {A}/enterprises/<int:enterprise_id>/policy-feed/<int:policy_id>": lambda v: {
        "read": True
    },
    f"PUT {A}/matters/<string:code>/parameters/<string:name>": lambda v: {"value": 20},
    f"POST {A}/seals/<int:seal_id>/documents": lambda v: {
        "template": "meteorological_certificate",
        "matter": "meteorological_certificate",
        "holder": {"name": "广州市番禺区某某建筑有限公司", "id_number": uscc_for(9104)},
        "data": WEATHER_DATA,
    },
    f"POST {REVIEW}/transfer": lambda v: {"to_staff_id": v["staff_id"]},
    f"POST {REVIEW}/request-supplement": lambda v: REASON,
    f"POST {REVIEW}/reject": lambda v: REASON,
    f"POST {REVIEW}/return": lambda v: REASON,
    f"POST {A}/review/inspections/<int:inspection_id>/rectify": lambda v: {
        "note": "请整改",
        "by": (utcnow() + dt.timedelta(days=10)).date().isoformat(),
    },
    f"POST {A}/review/inspections/<int:inspection_id>/revoke": lambda v: {"note": "承诺不实"},
    f"POST {A}/licences/<int:licence_id>/revoke": lambda v: REASON,
    # The console's forms.
    "POST /console/policies/new": lambda v: {"department_id": v["department_id"]},
    "POST /console/terminal/windows/<int:window_id>/status": lambda v: {"status": "paused"},
}
QUERIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    f"GET {A}/staff/policies": lambda v: {"department_id": v["department_id"]},
    "GET /console/policies": lambda v: {"department_id": v["department_id"]},
    "GET /console/policies/new": lambda v: {"department_id": v["department_id"]},
}


def _path(key: str, values: dict[str, Any], neutral: dict[str, Any]) -> str:
    rule = key.split(" ", 1)[1]

    def fill(match: re.Match[str]) -> str:
        name = match.group(2)
        if name == "binding_id" and "/agents/" in rule:
            return str(values["agent_binding_id"])
        if name == "code" and rule.startswith("/api/v1/matters/"):
            return str(values["matter"])
        if name == "name" and rule.startswith("/api/v1/matters/"):
            return str(neutral["parameter"][values["matter"]])
        if name == "name":
            return str(neutral["crl"])
        if name == "fmt":
            return "png"
        if name == "filename":
            return "swagger-ui.css"
        if name == "action":
            return "suspend" if "/seals/" in rule else "serve"
        if name in values:
            return str(values[name])
        return str(neutral[name])

    return PARAMETER.sub(fill, rule)


# Routes whose body or query, not their path, names the hall or department they act on.
SIDED_BY_BODY = {
    f"POST {A}/terminal/appointments/check-in",
    f"GET {A}/staff/policies",
    f"POST {A}/staff/policies",
    "GET /console/policies",
    "GET /console/policies/new",
    "POST /console/policies/new",
}


def has_sides(key: str) -> bool:
    """Does the route name one resource, so that own and another's differ?"""
    if key in SIDED_BY_BODY:
        return True
    rule = key.split(" ", 1)[1]
    names = {m.group(2) for m in PARAMETER.finditer(rule)}
    if not rule.startswith("/api/v1/matters/"):
        names.discard("code")
    return bool(names - NEUTRAL_PARAMETERS)


# A 404 with one of these codes answers a caller already authorised for the resource: the
# material is not one the matter's guide lets them upload.
AUTHORISED_404 = {"MATERIAL_NOT_IN_GUIDE"}


def outcome(status: int, location: str, text: str = "") -> str:
    """What an answer means for authorisation."""
    found = re.search(r'"code": ?"(\w+)"', text)
    if status == 404 and found and found.group(1) in AUTHORISED_404:
        return ALLOW
    if status >= 500:
        return f"server error {status}"
    if status in (401, 403, 404):
        return DENY
    return ALLOW


def call(
    district: District, key: str, principal: str, side: str, body: Any = None
) -> tuple[int, str, str]:
    """Make the request (with `BODIES`' body unless one is given); its status, its Location
    and the start of its body."""
    method, rule = key.split(" ", 1)
    values = district.other[principal] if side == "other" else district.own[principal]
    path = _path(key, values, district.neutral)
    if body is None:
        body = BODIES.get(key, lambda v: {})(values)
    query = QUERIES.get(key, lambda v: {})(values)
    options: dict[str, Any] = {
        "method": method,
        "query_string": query,
        # Every caller comes from outside the machine, as a phone or a hall's PC does.
        "environ_base": {"REMOTE_ADDR": CALLER_ADDRESS},
    }
    if rule.startswith("/console/"):
        client = district.console[principal]
        # A logout or login earlier in the module changed the client's cookie: start afresh.
        client.set_cookie(district.cookie_name, district.cookies[principal])
        options["headers"] = {"Accept": "application/json", "X-CSRFToken": district.csrf[principal]}
        options["data"] = body
    else:
        client = district.api
        options["headers"] = dict(district.headers[principal])
        if isinstance(body, bytes):
            options["headers"]["Content-Type"] = "image/png"
            options["data"] = body
        else:
            options["json"] = body
    savepoint = district.connection.begin_nested()
    try:
        response = client.open(path, **options)
        status, location = response.status_code, response.headers.get("Location", "")
        if response.mimetype in ("application/json", "text/html"):
            text = response.get_data(as_text=True)[:300]
        else:  # an image, a PDF, a CSV or an event stream: what it is, not its bytes
            text = f"<{response.mimetype}>"
        response.close()
    finally:
        savepoint.rollback()
    return status, location, text


def routes_of(app: Flask) -> set[str]:
    """Every (method, route template) the app serves, as the matrix names them."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in FRAMEWORK_ENDPOINTS:
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            routes.add(f"{method} {rule.rule}")
    return routes


def test_every_route_has_an_entry_and_every_entry_a_route(app: Flask) -> None:
    routes = routes_of(app)
    missing = sorted(routes - MATRIX.keys())
    assert missing == [], (
        "routes without an entry in tests/core/authz_matrix.py; decide who may call each: "
        + ", ".join(missing)
    )
    gone = sorted(MATRIX.keys() - routes)
    assert gone == [], (
        "entries in tests/core/authz_matrix.py for routes that no longer exist: " + ", ".join(gone)
    )


def test_the_walk_finds_a_new_route() -> None:
    probe = Flask("probe")

    @probe.post("/api/v1/forgotten/<int:thing_id>")
    def forgotten(thing_id: int) -> str:
        return "oops"

    assert routes_of(probe) == {"POST /api/v1/forgotten/<int:thing_id>"}


def test_every_entry_has_one_known_cell_per_principal() -> None:
    for key, row in MATRIX.items():
        cells = row.split()
        assert len(cells) == len(PRINCIPALS), (
            f"{key}: {len(cells)} cells for {len(PRINCIPALS)} principals"
        )
        assert set(cells) <= {"yes", "no", OWN}, f"{key}: unknown cell in {row!r}"
        assert OWN not in cells or has_sides(key), (
            f"{key} names no resource, so no principal can own it"
        )


def _cases() -> Iterator[Any]:
    for key in MATRIX:
        sides = ("own", "other") if has_sides(key) else ("any",)
        for principal in PRINCIPALS:
            for side in sides:
                yield pytest.param(key, principal, side, id=f"{key} | {principal} | {side}")


def expected(key: str, principal: str, side: str) -> str:
    cell = MATRIX[key].split()[PRINCIPALS.index(principal)]
    if cell == OWN:
        return ALLOW if side == "own" else DENY
    return ALLOW if cell == "yes" else DENY


@pytest.mark.parametrize(("key", "principal", "side"), list(_cases()))
def test_the_route_admits_whom_the_matrix_says(
    district: District, key: str, principal: str, side: str
) -> None:
    status, location, text = call(district, key, principal, side)
    want = expected(key, principal, side)
    got = outcome(status, location, text)
    assert got == want, (
        f"{key} as {principal} ({side} resource): expected {want}, got {status} {location} {text}"
    )


# Bodies that name another's resource while the path names the caller's own: each is refused
# (a 4xx: not found, or a conflict naming the rule), never carried out. (route, principal,
# body from the other side's parameters.)
CROSS_REFERENCES: list[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
    (f"POST {TERMINAL}/call", "clerk", lambda o: {"ticket_id": o["ticket_id"]}),
    (
        f"POST {TERMINAL}/tickets/<int:ticket_id>/transfer",
        "clerk",
        lambda o: {"category_id": o["category_id"]},
    ),
    (
        f"POST {TERMINAL}/tickets/<int:ticket_id>/transfer",
        "clerk",
        lambda o: {"window_id": o["window_id"]},
    ),
    (
        f"POST {TERMINAL}/take",
        "clerk",
        lambda o: {"code": UNKNOWN_CODE, "category_id": o["category_id"]},
    ),
    (
        f"POST {A}/halls/<int:hall_id>/windows",
        "manager",
        lambda o: {"number": 55, "category_ids": [o["category_id"]]},
    ),
    (
        f"PATCH {A}/halls/windows/<int:window_id>",
        "manager",
        lambda o: {"category_ids": [o["category_id"]]},
    ),
    (
        f"POST {APP}/materials/<string:material_id>/licence",
        "rep",
        lambda o: {"licence_id": o["licence_id"]},
    ),
    (
        f"POST {APP}/materials/<string:material_id>/licence",
        "citizen",
        lambda o: {"licence_id": o["licence_id"]},
    ),
]


@pytest.mark.parametrize(
    ("key", "principal", "body_of"),
    CROSS_REFERENCES,
    ids=[f"{key} | {principal} | #{n}" for n, (key, principal, _) in enumerate(CROSS_REFERENCES)],
)
def test_a_body_naming_anothers_resource_is_refused(
    district: District,
    key: str,
    principal: str,
    body_of: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    status, _location, text = call(
        district, key, principal, "own", body_of(district.other[principal])
    )
    assert 400 <= status < 500, f"{key} as {principal} naming another's resource: {status} {text}"
