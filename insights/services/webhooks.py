"""Webhooks: signing, verification and delivery of finished queries (Stripe-style signatures).

Every delivery is a `POST` of JSON to the query's webhook URL with

    Content-Type: application/json
    X-Leaseora-Event-Id: <event id>
    X-Leaseora-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256 of "<t>.<raw body>">

To verify, a receiver splits the header on `,` and `=`, recomputes the HMAC of
`f"{t}.".encode() + raw_body` with its signing secret, compares it in constant time with any `v1`
value (several may be present while secrets rotate; unknown schemes are ignored) and rejects
timestamps more than five minutes from its own clock, which stops replays. `verify` does exactly
that.

Signing secret: each account gets its own, `signing_secret(server_secret, account_id=...)`
(`whsec_...`, derived with HMAC from the server secret), so an account can verify its webhooks
without learning the server secret or being able to forge another account's.

Delivery and retries: `deliver` makes one attempt and records it on the `WebhookEvent` row
(attempts, last status code, last error, status `pending` -> `retrying` -> `delivered`|`failed`).
The RQ job that calls it re-runs it with `retry_policy()` (`Retry(max=5, interval=backoff_schedule())`)
by calling `outcome.raise_for_retry()`. Any 2xx is success; redirects are not followed; transport
errors, timeouts and other status codes are retried until `MAX_ATTEMPTS`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from rq import Retry
from sqlalchemy.orm import Session, sessionmaker

from insights.errors import InvalidInput, NotFound, ServiceUnavailable
from insights.storage.queries_repo import query_to_dict
from insights.storage.tables import QueryRecord, WebhookEvent, utcnow

SIGNATURE_HEADER = "X-Leaseora-Signature"
"""Header carrying `t=<unix>,v1=<hex>`."""

EVENT_ID_HEADER = "X-Leaseora-Event-Id"
"""Header carrying the webhook event id, so receivers can deduplicate retried deliveries."""

SIGNATURE_SCHEME = "v1"
"""The signature scheme: HMAC-SHA-256 of "<t>.<body>" in hex."""

DEFAULT_TOLERANCE = 300
"""Seconds a signature's timestamp may differ from the verifier's clock (replay window)."""

MAX_WEBHOOK_URL_LENGTH = 2048
"""Longest webhook URL accepted (what browsers and proxies reliably handle)."""

MAX_SIGNATURE_HEADER_LENGTH = 1024
"""Longer signature headers are rejected before parsing."""

BACKOFF_BASE = 15
"""Seconds before the first retry; each further retry waits `BACKOFF_FACTOR` times longer."""

BACKOFF_FACTOR = 4
"""Growth of the wait between retries: 15 s, 1 min, 4 min, 16 min, 64 min (about 85 min in all)."""

RETRIES = 5
"""Retries after the first attempt."""

MAX_ATTEMPTS = RETRIES + 1
"""Attempts after which an event is `failed` for good."""

DELIVERY_TIMEOUT = 10.0
"""Seconds to connect, send and read the status line of a delivery: a slow receiver is a failed one."""

USER_AGENT = "Leaseora-Webhooks/1"
"""User-Agent of deliveries."""


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one `deliver` call did, as recorded on the event row."""

    event_id: int
    status: str
    attempts: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        """Whether the receiver acknowledged the event with a 2xx."""
        return self.status == "delivered"

    @property
    def retry(self) -> bool:
        """Whether another attempt should be made."""
        return self.status == "retrying"

    def raise_for_retry(self) -> None:
        """Raise ServiceUnavailable when a retry is due, so that RQ's `Retry` runs the job again."""
        if self.retry:
            raise ServiceUnavailable(
                f"webhook event {self.event_id} attempt {self.attempts} failed: {self.error}",
                retry_after=_next_wait(self.attempts),
                details={"event_id": self.event_id, "status_code": self.status_code},
            )


@dataclass(frozen=True)
class _Request:
    url: str
    body: bytes
    signing_secret: str


def backoff_schedule() -> list[int]:
    """Seconds to wait before each retry (exponential): [15, 60, 240, 960, 3840]."""
    return [BACKOFF_BASE * BACKOFF_FACTOR**i for i in range(RETRIES)]


def retry_policy() -> Retry:
    """The RQ retry policy for delivery jobs: `Retry(max=5, interval=backoff_schedule())`."""
    return Retry(max=RETRIES, interval=backoff_schedule())


def signing_secret(server_secret: str, *, account_id: int | None) -> str:
    """The webhook signing secret of an account, derived from the server secret (stable, per account)."""
    subject = f"webhook-signing:{account_id if account_id is not None else 'anonymous'}"
    return "whsec_" + hmac.new(server_secret.encode(), subject.encode(), hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Leaseora-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={int(timestamp)},{SIGNATURE_SCHEME}={_digest(secret, int(timestamp), body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether `header` is a valid, fresh signature of `body` under `secret` (never raises)."""
    parsed = _parse_signature(header)
    if parsed is None:
        return False
    timestamp, candidates = parsed
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, timestamp, body)
    # Check every candidate so the time taken does not depend on which one matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)


def validate_webhook_url(url: str) -> str:
    """Return `url` if it is an acceptable webhook URL, else raise InvalidInput.

    Accepted: absolute http(s) URLs with a host, at most `MAX_WEBHOOK_URL_LENGTH` characters, without
    credentials, whitespace or control characters, and not written as a link-local, multicast or
    unspecified address (the cloud metadata service at 169.254.169.254 above all). Loopback and
    private addresses are allowed on purpose (local receivers, tests), and names are not resolved
    here: restrict egress at the network if that matters.
    """
    if not isinstance(url, str) or not url:
        raise _bad_url("webhook_url is required")
    if len(url) > MAX_WEBHOOK_URL_LENGTH:
        raise _bad_url(f"webhook_url is longer than {MAX_WEBHOOK_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise _bad_url("webhook_url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1/h": an unbalanced or invalid IPv6 host, a netloc NFKC-normalising to "#@?/:"
        raise _bad_url("webhook_url is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _bad_url("webhook_url must be an http:// or https:// URL")
    # Two parsers must agree that there is a host and no userinfo; disagreements are how
    # "http://a\\@b/"-style URLs smuggle a different destination.
    parsed = _httpx_url(url)
    if "@" in parts.netloc or parts.username or parts.password or parsed.userinfo:
        raise _bad_url("webhook_url must not contain credentials")
    if not parts.hostname or not parsed.host:
        raise _bad_url("webhook_url must have a host")
    if _unroutable(parsed.host):
        raise _bad_url("webhook_url must not point at a link-local, multicast or unspecified address "
                       "(such as a cloud metadata service)")
    try:
        parts.port
    except ValueError:
        raise _bad_url("webhook_url has an invalid port") from None
    return url


def deliver(
    session_factory: sessionmaker[Session],
    *,
    event_id: int,
    secret: str,
    client: httpx.Client | None = None,
) -> DeliveryOutcome:
    """Make one delivery attempt of webhook event `event_id` and record it on the event row.

    `secret` is the server secret (`settings.resolved_secret()`); the body is signed with the
    query's account's `signing_secret`. Events already `delivered` or `failed` are not sent
    again. An invalid URL fails the event at once, without a request. No database session is
    held open during the HTTP request.
    """
    prepared = _prepare(session_factory, event_id=event_id, secret=secret)
    if isinstance(prepared, DeliveryOutcome):
        return prepared
    status_code, error = _post(prepared, event_id=event_id, client=client)
    return _record(session_factory, event_id=event_id, status_code=status_code, error=error)


def webhook_body(event: WebhookEvent, query: QueryRecord) -> bytes:
    """The JSON body of a delivery: `{"id", "type", "created", "data": <the query's JSON>}`."""
    envelope = {
        "id": f"evt_{event.id}",
        "type": f"query.{query.status}",
        "created": int(time.time()),
        "data": query_to_dict(query),
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True, default=str).encode()


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _parse_signature(header: str | None) -> tuple[int, list[str]] | None:
    if not header or len(header) > MAX_SIGNATURE_HEADER_LENGTH:
        return None
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            return None
        if name == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return None
            timestamp = int(value)
        elif name == SIGNATURE_SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        return None
    return timestamp, candidates


def _bad_url(message: str) -> InvalidInput:
    return InvalidInput(message, details={"field": "webhook_url"})


def _unroutable(host: str) -> bool:
    """Whether `host`, written as an address, is link-local (169.254.169.254, the cloud metadata service),
    multicast or unspecified. Every form the system's resolver reads as a number counts ("2852039166",
    "0xA9FEA9FE", "0251.0376.0251.0376", "::ffff:169.254.169.254"); names are not resolved here."""
    text = host.strip("[]").split("%", 1)[0]  # an IPv6 zone ("fe80::1%eth0") is no part of the address
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(text)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))  # the resolver's numeric forms
        except OSError:
            return False  # a name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_link_local or address.is_multicast or address.is_unspecified


def _httpx_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
        parsed.host, parsed.userinfo  # decoded on first read: "http://xn--a.com/" fails only here (IDNAError)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _bad_url("webhook_url is not a valid URL") from None
    return parsed


def _prepare(session_factory: sessionmaker[Session], *, event_id: int, secret: str) -> _Request | DeliveryOutcome:
    """Read the event and its query; an outcome instead when nothing is to be sent."""
    with session_factory() as session:
        event = session.get(WebhookEvent, event_id)
        if event is None:
            raise NotFound(f"webhook event {event_id} not found")
        if event.status in ("delivered", "failed"):
            return _outcome(event)
        try:
            url = validate_webhook_url(event.url)
        except InvalidInput as exc:
            event.status, event.last_error = "failed", exc.message
            session.commit()
            return _outcome(event)
        query = session.get(QueryRecord, event.query_id)
        if query is None:  # the foreign key cascades, so only a race with a deletion gets here
            raise NotFound(f"query {event.query_id} of webhook event {event_id} not found")
        return _Request(
            url=url,
            body=webhook_body(event, query),
            signing_secret=signing_secret(secret, account_id=query.account_id),
        )


def _post(request: _Request, *, event_id: int, client: httpx.Client | None) -> tuple[int | None, str | None]:
    """Send the request; (status code, error) with error None on a 2xx."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: str(event_id),
        SIGNATURE_HEADER: sign(request.signing_secret, int(time.time()), request.body),
    }
    own = client is None
    http = client or httpx.Client(timeout=DELIVERY_TIMEOUT, follow_redirects=False)
    try:
        # Streaming without reading: a receiver's response body is never downloaded.
        with http.stream("POST", request.url, content=request.body, headers=headers) as response:
            code = response.status_code
    except httpx.HTTPError as exc:
        return None, _truncate(f"{type(exc).__name__}: {exc}")
    finally:
        if own:
            http.close()
    return code, None if 200 <= code < 300 else f"HTTP {code}"


def _record(
    session_factory: sessionmaker[Session], *, event_id: int, status_code: int | None, error: str | None
) -> DeliveryOutcome:
    """Count the attempt and move the event to delivered, retrying or failed."""
    with session_factory() as session:
        event = session.get(WebhookEvent, event_id)
        if event is None:
            raise NotFound(f"webhook event {event_id} not found")
        event.attempts = (event.attempts or 0) + 1
        event.last_status_code = status_code
        event.last_error = error
        if error is None:
            event.status, event.delivered_at = "delivered", utcnow()
        else:
            event.status = "failed" if event.attempts >= MAX_ATTEMPTS else "retrying"
        session.commit()
        return _outcome(event)


def _outcome(event: WebhookEvent) -> DeliveryOutcome:
    return DeliveryOutcome(
        event_id=event.id,
        status=event.status,
        attempts=event.attempts or 0,
        status_code=event.last_status_code,
        error=event.last_error,
    )


def _next_wait(attempts: int) -> int:
    schedule = backoff_schedule()
    return schedule[min(max(attempts - 1, 0), len(schedule) - 1)]


def _truncate(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
