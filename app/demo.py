"""`flask demo seed`: departments, the 19 Panyu halls with their queues and a demo day,
staff accounts, a demo enterprise registry with policies, and departments' seals.

Idempotent: run it again and it adds only what is missing. Refused in production.
"""

from __future__ import annotations

import os
import random

import click
import requests
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from app.appointments.demo import seed_queue_day
from app.audit.service import Actor
from app.calendar import local_day
from app.db import get_session, utcnow
from app.enterprises.registry import demo_id_number, generate_registry, load_registry
from app.identity.models import StaffAccount, StaffRole
from app.identity.staff import create_staff
from app.organisation.catalogue import load_organisation
from app.organisation.models import Department, Hall
from app.policies.demo import seed_policies
from app.queueing.demo import (
    ROUND_THE_CLOCK_HALL,
    open_round_the_clock_hall,
    round_the_clock_hall,
    seed_queueing,
    write_printable_codes,
)
from app.queueing.settings import from_config as queue_settings
from app.seals.demo import seed_seals
from app.security import get_cipher
from app.shared_data.demo import seed_shared_data
from config import PROJECT_ROOT

demo_cli = AppGroup("demo", help="Demo data for development.")

DEFAULT_DEMO_PASSWORD = "Panyu-Demo-2026!"  # nosec B105  # demo staff password, demo seed refused in production
REGISTRY_SIZE = 300


def demo_staff(
    departments: dict[str, Department], halls: dict[str, Hall]
) -> list[tuple[str, str, list[tuple[StaffRole, int | None, int | None]]]]:
    """The demo accounts: (username, display name, grants)."""
    district, donghuan, demo = halls["PY-D00"], halls["PY-T03"], halls[ROUND_THE_CLOCK_HALL[0]]
    return [
        ("admin", "系统管理员", [(StaffRole.ADMIN, None, None)]),
        ("clerk.demo", "演示大厅窗口人员", [(StaffRole.WINDOW_CLERK, demo.id, None)]),
        ("clerk.district", "区中心窗口人员", [(StaffRole.WINDOW_CLERK, district.id, None)]),
        ("clerk.donghuan", "东环街窗口人员", [(StaffRole.WINDOW_CLERK, donghuan.id, None)]),
        ("manager.district", "区中心大厅主管", [(StaffRole.HALL_MANAGER, district.id, None)]),
        (
            "reviewer.weather",
            "气象局审批人员",
            [(StaffRole.REVIEWER, None, departments["PY-QXJ"].id)],
        ),
        (
            "reviewer.water",
            "水务局审批人员",
            [(StaffRole.REVIEWER, None, departments["PY-SWJ"].id)],
        ),
        (
            "reviewer.urban",
            "城管局审批人员",
            [(StaffRole.REVIEWER, None, departments["PY-CGJ"].id)],
        ),
        (
            "policy.commerce",
            "商务局政策专员",
            [(StaffRole.POLICY_OFFICER, None, departments["PY-SWU"].id)],
        ),
    ]


def _demo_login_code() -> str | None:
    base = current_app.config["WECHAT_API_BASE"]
    if not base.startswith("http"):
        return None
    try:
        response = requests.post(f"{base}/_emulator/login", json={}, timeout=3)
        return str(response.json()["code"])
    except (requests.RequestException, KeyError, ValueError):
        return None


@demo_cli.command("seed")
@click.option("--registry-size", default=REGISTRY_SIZE, show_default=True)
def seed(registry_size: int) -> None:
    """Load demo departments, halls, staff and enterprise registry (idempotent)."""
    if current_app.config["ENV_NAME"] == "production":
        raise click.ClickException("demo data is never loaded in production")
    password = os.environ.get("DEMO_STAFF_PASSWORD", DEFAULT_DEMO_PASSWORD)
    session = get_session()
    now = utcnow()
    departments, halls = load_organisation(session)
    demo_hall = halls[ROUND_THE_CLOCK_HALL[0]] = round_the_clock_hall(session)
    existing = set(session.scalars(select(StaffAccount.username)))
    for username, name, grants in demo_staff(departments, halls):
        if username not in existing:
            create_staff(
                session,
                username=username,
                display_name=name,
                password=password,
                grants=grants,
                actor=Actor.system(),
                now=now,
            )
    # Repeatable demo data, not a secret: a seeded PRNG is what we want here.
    rng = random.Random(2026)  # noqa: S311  # nosec B311  # repeatable demo data, never a secret
    registry = generate_registry(registry_size, rng)
    # The registry identifies legal representatives by ID number (binding compares it); the
    # demo ones get numbers from their own seeded sequence so the registry rows stay as before.
    id_rng = random.Random(20260)  # noqa: S311  # nosec B311  # repeatable demo data, never a secret
    for row in registry:
        row["legal_rep_id_number"] = demo_id_number(id_rng)
    load_registry(session, registry, cipher=get_cipher(), now=now)
    session.flush()
    seed_policies(session, now=now)
    seed_seals(session, actor=Actor.system(), now=now)
    seed_shared_data(session, today=local_day(now))
    demo_clerk = session.scalar(select(StaffAccount).where(StaffAccount.username == "clerk.demo"))
    assert demo_clerk is not None  # created above
    open_round_the_clock_hall(session, demo_hall, clerk_id=demo_clerk.id)
    hall_codes = seed_queueing(session, queue_settings(current_app.config), now=now)
    seed_queue_day(session, now=now)
    session.commit()

    click.echo(f"demo data ready: {len(departments)} departments, {len(halls)} halls")
    folder = write_printable_codes(hall_codes, PROJECT_ROOT / "var" / "hall-codes")
    click.echo(f"printable hall codes: {folder}/<hall code>.svg, one per hall ({len(hall_codes)})")
    demo_token = next(token for hall, token in hall_codes if hall.id == demo_hall.id)
    click.echo(
        f"the queue at any hour: {demo_hall.name} ({demo_hall.code}) is open round the clock"
        " (the real halls keep office hours, Beijing time); its hall code:"
    )
    click.echo(f"  {demo_token}")
    click.echo(f"staff accounts (password {password!r}): admin, clerk.demo, clerk.district,")
    click.echo("  clerk.donghuan, manager.district, reviewer.weather, reviewer.water,")
    click.echo("  reviewer.urban, policy.commerce")
    click.echo("  the staff console: http://127.0.0.1:5000/console/ (a hall screen's token: admin,")
    click.echo("  系统管理 -> 大厅 -> 大厅屏); the API: POST /api/v1/staff/auth/login")
    code = _demo_login_code()
    base = current_app.config["WECHAT_API_BASE"]
    if code:
        click.echo(f"a WeChat login code from the emulator (single use, 5 min): {code}")
        click.echo(f"  more codes: curl -X POST {base}/_emulator/login -d '{{}}'")
    click.echo('  POST /api/v1/auth/wechat/login {"code": "<code>"}')
    first_active = next(r for r in registry if r["status"] in ("存续", "在业"))
    click.echo(
        f"a demo legal representative: {first_active['legal_rep_name']}"
        f" {first_active['legal_rep_id_number']} of {first_active['name']} ({first_active['uscc']})"
    )
    click.echo("  POST /api/v1/me/realname, then a face token from the identity emulator:")
    click.echo(
        f"  curl -X POST {current_app.config['IDENTITY_SERVICE_BASE']}/dev/face/token"
        """ -d '{"name": "...", "id_number": "..."}'  -> POST /api/v1/me/realname/face"""
    )
    click.echo("a 红棉码 (the city's personal code) for a window terminal to scan:")
    click.echo(
        f"  curl -X POST {current_app.config['CITY_CODE_SERVICE_BASE']}/dev/citycode"
        """ -d '{"name": "...", "id_number": "..."}'  -> POST /api/v1/terminal/windows/<id>/take"""
    )
