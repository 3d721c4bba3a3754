"""Restarts under load, against the production topology (`make test-prod`)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter

import psycopg
import pytest
import redis
import requests

from scripts.prod_like import Topology
from tests.prod.conftest import District, Load, make_district, wait_until

pytestmark = pytest.mark.prodlike

# The documented answer to a broken database connection: 503 DATABASE_UNAVAILABLE with
# Retry-After (blueprints/errors.py); a client retries with the same Idempotency-Key.
RETRIES = 8


def _pg(topology: Topology) -> psycopg.Connection:
    return psycopg.connect(
        f"postgresql://{topology.pg_user}@{topology.pg_host}:5432/{topology.database}",
        autocommit=True,
    )


# The instances' and workers' connections to the topology's database (not the asking one).
_APP_BACKENDS = "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"


def _app_connections(topology: Topology) -> int:
    with _pg(topology) as conn:
        row = conn.execute(f"SELECT count(*) {_APP_BACKENDS}", (topology.database,)).fetchone()
    return row[0] if row else 0


def _taker(topology: Topology, district: District, answers: dict[int, list[int]]):  # type: ignore[no-untyped-def]
    """Each index is one citizen taking one number, retrying a 503 with the same key."""

    def work(http: requests.Session, index: int) -> list[int]:
        if index >= len(district.tokens):
            raise StopIteration
        key = uuid.uuid4().hex
        seen: list[int] = []
        for _ in range(RETRIES):
            response = http.post(
                f"{topology.base_url}/api/v1/queue/tickets",
                json={**district.take_body, "category_id": district.categories[index % 2]},
                headers={
                    "Authorization": f"Bearer {district.tokens[index]}",
                    "Idempotency-Key": key,
                },
                timeout=30,
            )
            seen.append(response.status_code)
            if response.status_code != 503:
                break
            time.sleep(0.5)
        answers[index] = seen
        return seen

    return work


def _tickets_are_whole(topology: Topology, district: District, taken: int) -> None:
    """Per category and day: numbers 1..n without a gap or a repeat; one ticket a citizen."""
    with _pg(topology) as conn:
        rows = conn.execute(
            "SELECT issued_category_id, service_day, number, user_id FROM tickets"
            " WHERE hall_id = %s",
            (district.hall_id,),
        ).fetchall()
    by_day: dict[tuple[int, object], list[int]] = {}
    for category, day, number, _ in rows:
        by_day.setdefault((category, day), []).append(number)
    for numbers in by_day.values():
        assert sorted(numbers) == list(range(1, len(numbers) + 1))
    per_user = Counter(user for *_, user in rows)
    assert max(per_user.values()) == 1
    assert len(rows) == taken


def test_terminated_database_connections_lose_and_double_no_ticket(topology: Topology) -> None:
    district = make_district(topology, users=360)
    answers: dict[int, list[int]] = {}
    kills_under_load = 0
    with Load(_taker(topology, district, answers), threads=6) as load:
        # Kill every connection a few times while citizens are still taking numbers; a take
        # is a few milliseconds, so the kills come close together or the load is over first.
        for _ in range(3):
            time.sleep(0.4)
            # A kill invalidates the instances' pools and every client then waits 0.5 s before
            # its retry, so the app may hold no connection yet: wait for it to be back at work.
            wait_until(
                lambda: len(answers) == len(district.tokens) or _app_connections(topology) > 0,
                10,
                "the instances connected again",
            )
            under_load = len(answers) < len(district.tokens)
            with _pg(topology) as conn:
                killed = conn.execute(
                    f"SELECT count(pg_terminate_backend(pid)) {_APP_BACKENDS}",
                    (topology.database,),
                ).fetchone()
            if under_load:
                assert killed is not None and killed[0] > 0
                kills_under_load += 1
        assert kills_under_load >= 2, "the load ended before the connections were killed"
        wait_until(lambda: len(answers) == len(district.tokens), 120, "every citizen answered")

    assert load.errors == []
    # Only the documented 503 (retried), never a 500; every citizen ends with a number.
    assert set(load.server_errors) <= {503}
    finals = [seen[-1] for seen in answers.values()]
    assert Counter(finals) == Counter({201: len(district.tokens)})
    _tickets_are_whole(topology, district, taken=len(district.tokens))


def test_a_redis_restart_degrades_rate_limits_to_each_process(topology: Topology) -> None:
    """Redis away: limits fall back to each process's memory (still enforced), no 5xx."""
    district = make_district(topology, users=1)
    headers = {"Authorization": f"Bearer {district.tokens[0]}"}
    url = f"{topology.base_url}/api/v1/queue/tickets"
    body = {**district.take_body, "category_id": district.categories[0]}
    redis_process = topology.redis_server()
    redis_process.stop()
    try:
        statuses = Counter(
            requests.post(url, json=body, headers=headers, timeout=30).status_code
            for _ in range(160)
        )
    finally:
        redis_process.start()
    # RATELIMIT_TAKE_TICKET (30/minute) per process: 2 instances x 2 workers = 120 at most.
    assert not [status for status in statuses if status >= 500], statuses
    assert statuses[429] >= 160 - 4 * 30
    assert statuses[201] == 1
    client = redis.Redis.from_url(topology.redis_url)

    def redis_back() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(redis_back, 10, "redis back")
    wait_until(lambda: topology.servers_up() == 2, 30, "both instances ready again")
    answer = requests.get(f"{topology.base_url}/readyz", timeout=5)
    assert answer.status_code == 200


def test_a_killed_worker_leaves_every_notification_delivered_once(topology: Topology) -> None:
    from app import create_app
    from app.db import utcnow
    from app.notify import outbox
    from scripts.prod_like import load_or_create_secrets
    from tests.factories.notify import QUEUE_CALLED_DATA

    count = 150
    district = make_district(topology, users=count)
    keys = load_or_create_secrets(topology.env_file)
    # The id production names queue_called by (WECHAT_TEMPLATES), as the mini-program sees it.
    spec = json.loads(keys["WECHAT_TEMPLATES"])["queue_called"]
    template_id = spec["id"] if isinstance(spec, dict) else spec
    session_http = requests.Session()
    ca = topology.environment()["REQUESTS_CA_BUNDLE"]
    for openid in district.openids:
        session_http.post(
            f"{topology.wechat_url}/_emulator/login", json={"openid": openid}, verify=ca, timeout=5
        ).raise_for_status()
        session_http.post(
            f"{topology.wechat_url}/_emulator/subscriptions",
            json={"openid": openid, "template_id": template_id, "count": 1},
            verify=ca,
            timeout=5,
        ).raise_for_status()
    app = create_app(
        "development", **keys, DATABASE_URL=topology.database_url, JOB_RUNNER="manual",
        REDIS_URL="", SEED_DEMO_DATA=False,
    )  # fmt: skip
    with app.app_context():
        session = app.extensions["db"].sessionmaker()
        now = utcnow()
        for user_id in district.user_ids:
            outbox.record_subscription_result(session, user_id, {template_id: "accept"}, now)
            outbox.enqueue(
                session, user_id=user_id, template_key="queue_called", data=QUEUE_CALLED_DATA,
                dedupe_key=f"restart-{user_id}", now=now,
            )  # fmt: skip
        session.commit()
        session.close()
    app.extensions["db"].engine.dispose()

    def delivered() -> int:
        with _pg(topology) as conn:
            row = conn.execute(
                "SELECT count(*) FROM notification_outbox WHERE user_id = ANY(%s)"
                " AND status IN ('sent', 'failed', 'skipped')",
                (district.user_ids,),
            ).fetchone()
        return int(row[0]) if row else 0

    # The scheduler sends a sweep every 2 s; kill the worker once the drain is under way.
    wait_until(lambda: delivered() > 0, 30, "the drain started")
    topology.restart_worker(0, kill=True)
    assert delivered() < count  # killed mid-drain, not after it
    wait_until(lambda: delivered() == count, 120, "every row final")

    with _pg(topology) as conn:
        statuses = Counter(
            status
            for (status,) in conn.execute(
                "SELECT status FROM notification_outbox WHERE user_id = ANY(%s)",
                (district.user_ids,),
            )
        )
    received: Counter[int] = Counter()
    for openid in district.openids:
        messages = session_http.get(
            f"{topology.wechat_url}/_emulator/messages",
            params={"touser": openid},
            verify=ca,
            timeout=5,
        ).json()["messages"]
        received[len(messages)] += 1
    # WeChat holds each citizen's one grant: each got the message exactly once.
    assert received == Counter({1: count})
    # A row the killed worker had sent without recording it was sent again after its lease,
    # and WeChat refused the repeat (grant spent): at most the worker's threads' rows.
    assert statuses["sent"] >= count - 4 * 2
    assert statuses["sent"] + statuses["skipped"] == count


def test_a_screen_stream_reconnects_after_its_instance_restarts(topology: Topology) -> None:
    district = make_district(topology, users=1)
    url = f"{topology.base_url}/api/v1/screen/halls/{district.hall_id}/events"
    hellos: list[float] = []
    stop = threading.Event()

    def screen() -> None:
        # What a browser's EventSource does: read the stream, reconnect when it ends.
        while not stop.is_set():
            try:
                with requests.get(url, stream=True, timeout=(5, 10)) as answer:
                    for line in answer.iter_lines(decode_unicode=True):
                        if line.startswith("event: hello"):
                            hellos.append(time.monotonic())
                        if stop.is_set():
                            return
            except requests.RequestException:
                time.sleep(0.5)

    thread = threading.Thread(target=screen, daemon=True)
    thread.start()
    wait_until(lambda: len(hellos) == 1, 15, "the stream opened")
    for index in (0, 1):  # whichever instance holds it, it restarts
        topology.restart_web(index, drain=False)
    restarted = time.monotonic()
    wait_until(lambda: len(hellos) >= 2, 30, "the stream reconnected")
    assert hellos[-1] - restarted < 30
    stop.set()


def test_a_rolling_restart_drops_no_request(topology: Topology) -> None:
    district = make_district(topology, users=1)
    token = district.tokens[0]

    def work(http: requests.Session, index: int) -> list[int]:
        paths = (
            "/readyz",
            "/api/v1/queue/tickets",
            f"/api/v1/screen/halls/{district.hall_id}/board",
        )
        path = paths[index % len(paths)]
        answer = http.get(
            f"{topology.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        return [answer.status_code]

    with Load(work, threads=4) as load:
        time.sleep(1.0)
        for index in (0, 1):
            topology.restart_web(index, drain=True)
        time.sleep(1.0)
    assert load.errors == []
    assert load.server_errors == {}
    assert sum(load.statuses.values()) > 50


def test_a_gunicorn_reload_drops_no_request(topology: Topology) -> None:
    def work(http: requests.Session, index: int) -> list[int]:
        answer = http.get(f"{topology.base_url}/readyz", timeout=30)
        return [answer.status_code]

    with Load(work, threads=4) as load:
        time.sleep(1.0)
        topology.reload_web(0)
        topology.reload_web(1)
        time.sleep(4.0)
    assert load.errors == []
    assert load.server_errors == {}
    assert load.statuses[200] > 20


def test_of_two_schedulers_one_leads_and_the_other_takes_over(topology: Topology) -> None:
    def leaders() -> list[int]:
        found = []
        for index in (0, 1):
            lines = topology.scheduler(index).log_file.read_text().splitlines()
            # Logs are appended across runs: a start, a stop or a lost lease ends a lead.
            marks = (
                '"scheduler leads"',
                '"scheduler lost',
                '"scheduler started"',
                '"scheduler stopped"',
            )
            events = [line for line in lines if any(mark in line for mark in marks)]
            if events and '"scheduler leads"' in events[-1]:
                found.append(index)
        return found

    try:
        wait_until(lambda: len(leaders()) == 1, 15, "one scheduler leads")
    except AssertionError as failure:
        tails = {
            index: topology.scheduler(index).log_file.read_text().splitlines()[-5:]
            for index in (0, 1)
        }
        raise AssertionError(f"{failure}; leaders {leaders()}; last lines {tails}") from None
    (leader,) = leaders()
    other = 1 - leader
    before = topology.scheduler(other).log_file.read_text().count('"scheduler leads"')
    killed_at = time.monotonic()
    topology.scheduler(leader).stop(kill=True)  # no clean hand-over: the lease must run out
    try:
        wait_until(
            lambda: topology.scheduler(other).log_file.read_text().count('"scheduler leads"')
            > before,
            5 + 3,  # JOB_SCHEDULER_LEASE_SECONDS and a tick or two
            "the other scheduler leads",
        )
        assert time.monotonic() - killed_at > 1.0  # it waited for the lease, not less
    finally:
        topology.scheduler(leader).start()


def test_a_call_reaches_the_screen_through_the_balancer_at_once(topology: Topology) -> None:
    # HAProxy held each small event chunk for more data (MSG_MORE) until `option
    # http-no-delay`: ~200 ms between a call and the screen, found by bench/rush_hour.py.
    from app.queueing.events import make_broker

    district = make_district(topology, users=1)
    url = f"{topology.base_url}/api/v1/screen/halls/{district.hall_id}/events"
    arrived: dict[str, float] = {}
    opened = threading.Event()

    def screen() -> None:
        with requests.get(url, stream=True, timeout=(5, 20)) as answer:
            for chunk in answer.iter_content(chunk_size=None):
                now = time.perf_counter()
                text = chunk.decode()
                opened.set()
                for line in text.splitlines():
                    if line.startswith("data: ") and '"probe"' in line:
                        arrived[json.loads(line[6:])["probe"]] = now
                if len(arrived) == 10:
                    return

    thread = threading.Thread(target=screen, daemon=True)
    thread.start()
    assert opened.wait(15), "the stream did not open"
    time.sleep(0.5)  # the relay of the instance holding the stream has subscribed
    broker = make_broker(topology.redis_url, topology.environment()["DRAMATIQ_NAMESPACE"])
    sent: dict[str, float] = {}
    for n in range(10):
        probe = f"p{n}"
        sent[probe] = time.perf_counter()
        broker.publish(district.hall_id, {"type": "call", "ticket_id": n, "probe": probe})
        time.sleep(0.2)
    thread.join(10)
    delays = sorted((arrived[p] - sent[p]) * 1000 for p in sent if p in arrived)
    assert len(delays) == 10, f"{len(delays)} of 10 events arrived"
    assert delays[len(delays) // 2] < 50, f"median delay {delays[len(delays) // 2]:.0f} ms"
