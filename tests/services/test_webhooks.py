"""Webhook signatures, URL validation and delivery to a real local HTTP server with retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis
from rq import Queue, Retry, SimpleWorker
from sqlalchemy.orm import Session, sessionmaker

from insights.errors import InvalidInput, NotFound, ServiceUnavailable
from insights.services import webhooks
from insights.storage.session import make_engine, make_session_factory
from insights.storage.tables import Account, QueryRecord, WebhookEvent

SERVER_SECRET = "server-secret-for-tests"


# --- signatures -------------------------------------------------------------------------------


def test_sign_format_and_round_trip() -> None:
    body = b'{"hello":"world"}'
    header = webhooks.sign("whsec_abc", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert webhooks.verify("whsec_abc", header, body, now=1_700_000_010)


def test_tampering_and_wrong_secret_rejected() -> None:
    body = b'{"amount":100}'
    header = webhooks.sign("s", 1_700_000_000, body)
    now = 1_700_000_000
    assert not webhooks.verify("s", header, b'{"amount":999}', now=now)
    assert not webhooks.verify("other", header, body, now=now)
    forged_time = header.replace("t=1700000000", "t=1700000001")
    assert not webhooks.verify("s", forged_time, body, now=now)
    flipped = header[:-1] + ("0" if header[-1] != "0" else "1")
    assert not webhooks.verify("s", flipped, body, now=now)


def test_stale_and_future_timestamps_rejected() -> None:
    body = b"{}"
    header = webhooks.sign("s", 1_700_000_000, body)
    assert webhooks.verify("s", header, body, now=1_700_000_300)
    assert not webhooks.verify("s", header, body, now=1_700_000_301)
    assert not webhooks.verify("s", header, body, now=1_699_999_000)
    assert webhooks.verify("s", header, body, now=1_700_000_900, tolerance_seconds=1000)
    fresh = webhooks.sign("s", int(time.time()), body)
    assert webhooks.verify("s", fresh, body)  # default: the verifier's own clock


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", "t=abc,v1=00", "v1=00", "t=1700000000", "t=1700000000,t=1700000000,v1=00", "t=-5,v1=00",
     "t=1700000000," + "v1=00," * 300],
)
def test_malformed_headers_rejected(header: str | None) -> None:
    assert not webhooks.verify("s", header, b"{}", now=1_700_000_000)


def test_rotated_secrets_any_v1_matches_and_unknown_schemes_ignored() -> None:
    body = b"{}"
    good = webhooks.sign("new", 1_700_000_000, body).split("v1=")[1]
    header = f"t=1700000000,v0=legacy,v1={'ab' * 32},v1={good}"
    assert webhooks.verify("new", header, body, now=1_700_000_000)


def test_signing_secrets_are_per_account_and_not_the_server_secret() -> None:
    a = webhooks.signing_secret(SERVER_SECRET, account_id=1)
    assert a == webhooks.signing_secret(SERVER_SECRET, account_id=1) and a.startswith("whsec_")
    assert a != webhooks.signing_secret(SERVER_SECRET, account_id=2)
    assert a != webhooks.signing_secret("another", account_id=1)
    assert SERVER_SECRET not in a


# --- URL validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/leaseora", "http://127.0.0.1:8080/hook?x=1", "http://[::1]:9000/", "http://10.0.0.5/h"]
)
def test_valid_webhook_urls(url: str) -> None:
    assert webhooks.validate_webhook_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "example.com/hook",
        "https:///nohost",
        "https://user:pass@example.com/hook",
        "https://user@example.com/hook",
        "http://evil.com\\@good.com/",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "https://example.com/\r\nX-Injected: 1",
        "https://example.com/" + "a" * 2100,
        # The cloud metadata service and other unroutable addresses, in every numeric spelling:
        "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://0xA9FEA9FE/",
        "http://169.254.43518/", "http://[::ffff:169.254.169.254]/", "http://[fe80::1%25eth0]/",
        "http://0.0.0.0:8080/", "http://0/", "http://224.0.0.1/",
    ],
)
def test_invalid_webhook_urls(url: str) -> None:
    with pytest.raises(InvalidInput):
        webhooks.validate_webhook_url(url)


def test_backoff_schedule_is_exponential_and_matches_retry_policy() -> None:
    schedule = webhooks.backoff_schedule()
    assert len(schedule) == 5 and schedule[0] >= 1
    assert all(b == a * webhooks.BACKOFF_FACTOR for a, b in zip(schedule, schedule[1:], strict=False))
    policy = webhooks.retry_policy()
    assert policy.max == 5 and list(policy.intervals) == schedule


# --- delivery to a real local HTTP server ----------------------------------------------------


@dataclass
class Receiver:
    """A local HTTP server answering with `statuses` in turn (then 200), recording every request."""

    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(statuses=[500, 500])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/leaseora"
    yield state
    server.shutdown()
    server.server_close()


def make_event(session: Session, url: str) -> tuple[WebhookEvent, Account]:
    account = Account(name="acme", plan="standard")
    session.add(account)
    session.flush()
    query = QueryRecord(
        id="q_test1",
        account_id=account.id,
        text="average rent of 2-bedroom flats in Berlin",
        status="completed",
        answer="About 1,450 EUR per month.",
        result={"value": 1450},
        confidence_score=0.82,
        model_version="rent-v3",
        sources=["listings"],
    )
    event = WebhookEvent(query_id=query.id, url=url)
    session.add_all([query, event])
    session.commit()
    return event, account


def test_delivery_fails_twice_then_succeeds(
    session: Session, session_factory: sessionmaker[Session], receiver: Receiver
) -> None:
    event, account = make_event(session, receiver.url)
    outcomes = [webhooks.deliver(session_factory, event_id=event.id, secret=SERVER_SECRET) for _ in range(3)]

    assert [o.status for o in outcomes] == ["retrying", "retrying", "delivered"]
    assert [o.attempts for o in outcomes] == [1, 2, 3]
    assert [o.status_code for o in outcomes] == [500, 500, 200]
    with pytest.raises(ServiceUnavailable):
        outcomes[0].raise_for_retry()
    outcomes[2].raise_for_retry()  # delivered: nothing to retry

    session.expire_all()
    row = session.get(WebhookEvent, event.id)
    assert row is not None
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("delivered", 3, 200, None)
    assert row.delivered_at is not None

    assert len(receiver.requests) == 3
    account_secret = webhooks.signing_secret(SERVER_SECRET, account_id=account.id)
    for headers, body in receiver.requests:
        assert headers["content-type"] == "application/json"
        assert headers["x-leaseora-event-id"] == str(event.id)
        assert webhooks.verify(account_secret, headers["x-leaseora-signature"], body)
        assert not webhooks.verify(SERVER_SECRET, headers["x-leaseora-signature"], body)
    payload = json.loads(receiver.requests[-1][1])
    assert payload["type"] == "query.completed" and payload["id"] == f"evt_{event.id}"
    assert payload["data"]["query_id"] == "q_test1" and payload["data"]["answer"] == "About 1,450 EUR per month."
    assert payload["data"]["confidence_score"] == 0.82

    # Delivered events are never sent again (an RQ retry racing a success is harmless).
    again = webhooks.deliver(session_factory, event_id=event.id, secret=SERVER_SECRET)
    assert again.delivered and len(receiver.requests) == 3


def test_failed_attempts_record_the_error(session: Session, session_factory: sessionmaker[Session]) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        port = probe.server_address[1]  # closed right away: connection refused
    event, _ = make_event(session, f"http://127.0.0.1:{port}/hook")
    outcome = webhooks.deliver(session_factory, event_id=event.id, secret=SERVER_SECRET)
    assert outcome.retry and outcome.status_code is None and "Connect" in (outcome.error or "")
    session.expire_all()
    row = session.get(WebhookEvent, event.id)
    assert row is not None and row.attempts == 1 and row.last_error == outcome.error


def test_attempts_are_bounded(session: Session, session_factory: sessionmaker[Session]) -> None:
    event, _ = make_event(session, "https://hooks.example.com/leaseora")
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(503)))
    statuses = [
        webhooks.deliver(session_factory, event_id=event.id, secret=SERVER_SECRET, client=client).status
        for _ in range(webhooks.MAX_ATTEMPTS + 1)
    ]
    assert statuses == ["retrying"] * (webhooks.MAX_ATTEMPTS - 1) + ["failed", "failed"]
    session.expire_all()
    row = session.get(WebhookEvent, event.id)
    assert row is not None and row.attempts == webhooks.MAX_ATTEMPTS and row.last_status_code == 503


def test_redirects_are_not_followed(session: Session, session_factory: sessionmaker[Session]) -> None:
    event, _ = make_event(session, "https://hooks.example.com/leaseora")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/"})

    outcome = webhooks.deliver(
        session_factory, event_id=event.id, secret=SERVER_SECRET, client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    assert outcome.retry and outcome.status_code == 302 and len(seen) == 1


def test_invalid_url_fails_without_a_request(session: Session, session_factory: sessionmaker[Session]) -> None:
    event, _ = make_event(session, "ftp://files.example.com/drop")
    calls: list[httpx.Request] = []
    client = httpx.Client(transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200)))
    outcome = webhooks.deliver(session_factory, event_id=event.id, secret=SERVER_SECRET, client=client)
    assert outcome.status == "failed" and not outcome.retry and "http" in (outcome.error or "") and not calls


def test_unknown_event_is_not_found(session_factory: sessionmaker[Session], session: Session) -> None:
    with pytest.raises(NotFound):
        webhooks.deliver(session_factory, event_id=12345, secret=SERVER_SECRET)


def deliver_job(database_url: str, event_id: int) -> str:
    """What the worker task does: open its own session, deliver, raise so that RQ retries."""
    engine = make_engine(database_url)
    try:
        outcome = webhooks.deliver(make_session_factory(engine), event_id=event_id, secret=SERVER_SECRET)
        outcome.raise_for_retry()
        return outcome.status
    finally:
        engine.dispose()


def test_rq_retry_runs_delivery_again(
    session: Session, database_url: str, redis_client: redis.Redis, receiver: Receiver
) -> None:
    event, _ = make_event(session, receiver.url)
    queue = Queue("test-webhooks", connection=redis_client)
    # Zero intervals so the burst worker retries at once; production uses webhooks.retry_policy().
    job = queue.enqueue(deliver_job, database_url, event.id, retry=Retry(max=webhooks.RETRIES))
    SimpleWorker([queue], connection=redis_client).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished" and job.return_value() == "delivered"
    session.expire_all()
    row = session.get(WebhookEvent, event.id)
    assert row is not None and row.attempts == 3 and row.status == "delivered"
