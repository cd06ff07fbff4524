"""Bad input at volume (issue #7): fuzz the running reminders API from its own OpenAPI document.

The real app listens on a free loopback port (``make_client``: temp SQLite file, FakeClock), the
schema is loaded from its ``/openapi.json`` and schemathesis generates requests for every
operation: valid (positive) and schema-violating (negative) data, with the bearer token and without,
and once more with path/body identifiers pinned to a real family so that requests get past the
404s into the validation and store code; a last pass splices hostile values (NUL, unpaired
surrogates, integers beyond 64 bits, a token that is not UTF-8) into valid requests. Every response
goes through schemathesis' ``not_a_server_error`` check; the server must answer ``/health`` afterwards.

Deterministic: fixed hypothesis seed, no example database, no shrinking (nothing raises inside
the generated test; 5xx are collected and reported together). ``bench/fuzz_reminders.py`` runs
the same :func:`fuzz_api` at a larger count and writes docs/benchmarks/fuzz.md.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Callable, Counter, Dict, Iterator, List, Optional, Sequence

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from reminders.delivery import sign

from .conftest import AUTH, SECRET, TOKEN, child_payload, create_child

pytestmark = pytest.mark.asyncio

SEED = 7
MIN_REQUESTS = 1000
# examples per (operation, pass); the passes are listed in PASSES. ~1,500 requests, ~30 s on 2 cores.
TEST_EXAMPLES = 14


@dataclasses.dataclass(frozen=True)
class Anchors:
    """Identifiers of a real family, so generated requests can reach past "unknown id" 404s."""

    child_id: str
    family_id: str
    caregiver_id: str
    sender_id: str
    phone: str
    ics_token: str
    activity_id: str

    def path_parameters(self) -> Dict[str, str]:
        return {"child_id": self.child_id, "family_id": self.family_id, "caregiver_id": self.caregiver_id,
                "sender_id": self.sender_id, "activity_id": self.activity_id}

    def body_fields(self) -> Dict[str, str]:
        """JSON body fields that name an existing row (``from`` is the inbound SMS sender)."""
        return {"sender_id": self.sender_id, "caregiver_id": self.caregiver_id, "child_id": self.child_id,
                "from": self.phone}


@dataclasses.dataclass(frozen=True)
class FuzzPass:
    """One way of generating requests for every operation."""

    name: str
    mode: GenerationMode
    with_token: bool
    anchored: bool
    share: float = 1.0          # fraction of the per-pass example budget
    hostile: bool = False       # splice HOSTILE_* values into the generated request (_hostile_request)


PASSES = (
    FuzzPass("positive", GenerationMode.POSITIVE, True, False),
    FuzzPass("negative", GenerationMode.NEGATIVE, True, False),
    FuzzPass("positive, real ids", GenerationMode.POSITIVE, True, True),
    FuzzPass("negative, real ids", GenerationMode.NEGATIVE, True, True),
    # schemathesis' strings hold no unpaired surrogates and its integers rarely leave 64 bits: splice such
    # values into valid requests (and now and then send a token that is not UTF-8)
    FuzzPass("hostile values, real ids", GenerationMode.POSITIVE, True, True, hostile=True),
    # without the token only the public routes do anything; a few per operation show the 401 path holds
    FuzzPass("no token", GenerationMode.POSITIVE, False, False, share=0.25),
)


@dataclasses.dataclass
class FuzzReport:
    """What the fuzzing did and found."""

    operations: int = 0
    statuses: Counter[int] = dataclasses.field(default_factory=collections.Counter)
    by_operation: Dict[str, Counter[int]] = dataclasses.field(default_factory=dict)
    failures: List[str] = dataclasses.field(default_factory=list)        # failed checks, with a curl command
    skipped: List[str] = dataclasses.field(default_factory=list)         # (operation, pass) with nothing to generate

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def record(self, label: str, status: int) -> None:
        self.statuses[status] += 1
        self.by_operation.setdefault(label, collections.Counter())[status] += 1


class _SignSms(requests.auth.AuthBase):
    """Sign the serialized body the way the SMS gateway does, so inbound-SMS cases get past the HMAC check."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        r.headers["X-Signature"] = sign(body.encode() if isinstance(body, str) else body, self.secret)
        return r


HOSTILE_TEXT = ("\x00", "\u202e", "\ufeff", "\U0001f476", "'; DROP TABLE children; --", "../../etc/passwd", " " * 300)
HOSTILE_BODY_TEXT = HOSTILE_TEXT + ("\ud800", "\udfff")     # unpaired surrogates: only JSON can carry them
HOSTILE_INTS = (0, -1, -(2 ** 63) - 1, 2 ** 63, 10 ** 30, -(10 ** 30))


def _hostile(value: Any, draw: Callable[[Any], Any], texts: Sequence[str]) -> Any:
    """*value* with some strings spliced with one of *texts* and some integers swapped for HOSTILE_INTS."""
    if isinstance(value, str):
        if not draw(st.booleans()):
            return value
        at = draw(st.integers(0, len(value)))
        return value[:at] + draw(st.sampled_from(texts)) + value[at:]
    if isinstance(value, bool) or not isinstance(value, (int, dict, list)):
        return value
    if isinstance(value, int):
        return draw(st.sampled_from(HOSTILE_INTS)) if draw(st.booleans()) else value
    if isinstance(value, dict):
        return {k: _hostile(v, draw, texts) for k, v in value.items()}
    return [_hostile(v, draw, texts) for v in value]


def _hostile_request(case, draw: Callable[[Any], Any], base_url: str, headers: Dict[str, str]) -> Dict[str, Any]:
    """requests.request() arguments for *case* with hostile values spliced into path, query and JSON body.

    The body is edited after serialization: schemathesis re-checks an edited case against the schema
    with jsonschema-rs, which cannot take unpaired surrogates."""
    if case.query:
        case.query = _hostile(dict(case.query), draw, HOSTILE_TEXT)
    if case.path_parameters:
        case.path_parameters = _hostile(dict(case.path_parameters), draw, HOSTILE_TEXT)
    request = case.as_transport_kwargs(base_url=base_url, headers=headers)
    if isinstance(request.get("json"), (dict, list)):
        request["json"] = _hostile(request["json"], draw, HOSTILE_BODY_TEXT)
    return request


def _operations(schema) -> List[Any]:
    """All operations; the DELETEs last, so that deleting the anchored family doesn't starve the others."""
    ops = [result.ok() for result in schema.get_all_operations()]
    return sorted(ops, key=lambda op: op.method.upper() == "DELETE")


def _anchor_body(case, anchors: Anchors, draw: Callable[[Any], Any]) -> None:
    """Pin identifier fields of a JSON object body to the real family (each one with probability 1/2)."""
    if not isinstance(case.body, dict):
        return
    for key, value in anchors.body_fields().items():
        if key in case.body and draw(st.booleans()):
            case.body[key] = value


def _run_pass(session: requests.Session, op, fpass: FuzzPass, base_url: str, token: str, sms_secret: Optional[str],
              anchors: Anchors, examples: int, seed_value: int, report: FuzzReport,
              checks: Sequence[Callable]) -> None:
    """Generate up to *examples* cases for one operation and pass; record statuses and check failures."""
    kwargs: Dict[str, Any] = {}
    if fpass.anchored:
        path_params = {p.name: anchors.path_parameters()[p.name] for p in op.path_parameters
                       if p.name in anchors.path_parameters()}
        if path_params:
            kwargs["path_parameters"] = path_params
        if op.path.endswith("/calendar.ics"):
            kwargs["query"] = {"token": anchors.ics_token}
    headers = {"Authorization": f"Bearer {token}"} if fpass.with_token else {}
    # the HMAC is part of the request's authentication, like the bearer token
    auth = _SignSms(sms_secret) if sms_secret and fpass.with_token and op.path == "/sms/inbound" else None

    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=op.as_strategy(generation_mode=fpass.mode, **kwargs), data=st.data())
    def generated(case, data) -> None:
        sent_headers = headers
        if fpass.anchored:
            _anchor_body(case, anchors, data.draw)
        if fpass.hostile:
            if headers and data.draw(st.integers(0, 7)) == 0:
                # requests sends header text as latin-1: "\xff" arrives as a byte that is not UTF-8
                sent_headers = {"Authorization": headers["Authorization"] + "\xff"}
            request = _hostile_request(case, data.draw, base_url, sent_headers)
            response = session.request(**request, auth=auth, timeout=30)
        else:
            response = case.call(base_url=base_url, session=session, headers=sent_headers,
                                 **({"auth": auth} if auth else {}))
        report.record(op.label, response.status_code)
        try:
            case.validate_response(response, checks=list(checks), headers=sent_headers)
        except FailureGroup as group:
            titles = "; ".join(sorted({f.title for f in group.exceptions}))
            report.failures.append(f"{op.label} [{fpass.name}] -> {response.status_code} ({titles}): "
                                 + case.as_curl_command(headers=sent_headers))

    try:
        generated()
    except Unsatisfiable:
        # e.g. negative data for an operation without parameters or body: nothing can violate its schema
        report.skipped.append(f"{op.label} [{fpass.name}]")


@contextlib.contextmanager
def _hypothesis_home(path: Optional[Path]) -> Iterator[None]:
    """Point hypothesis' storage (constants and unicode caches; the example database is off) at *path*."""
    if path is None:
        yield
        return
    set_hypothesis_home_dir(path)
    try:
        yield
    finally:
        set_hypothesis_home_dir(None)      # back to the default for anything else in the process


def fuzz_api(base_url: str, token: str, anchors: Anchors, *, examples: int, seed_value: int = SEED,
             sms_secret: Optional[str] = None, checks: Sequence[Callable] = (not_a_server_error,),
             storage_dir: Optional[Path] = None) -> FuzzReport:
    """Fuzz every operation of the running API at *base_url* (blocking; call it off the server's loop).

    *checks* are schemathesis checks run on every response; failures are listed in ``report.failures``.
    Hypothesis keeps its caches under *storage_dir* (not ``.hypothesis/`` in the work tree).
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    report = FuzzReport()
    ops = _operations(schema)
    report.operations = len(ops)
    with _hypothesis_home(storage_dir), requests.Session() as session:
        for op in ops:
            for fpass in PASSES:
                _run_pass(session, op, fpass, base_url, token, sms_secret, anchors,
                          max(1, round(examples * fpass.share)), seed_value, report, checks)
    return report


async def make_anchors(client: TestClient) -> Anchors:
    """Create one consented family and one activity through the API (the same helpers the API tests use)."""
    child = await create_child(client, payload=child_payload())
    resp = await client.post("/activities", json={"title": "辅食添加课", "place": "社区卫生服务中心",
                                                  "starts_at": "2026-03-10T09:30:00", "capacity": 5}, headers=AUTH)
    assert resp.status == 201, await resp.text()
    activity = await resp.json()
    mother, grandma = child["caregivers"][0], child["caregivers"][1]
    return Anchors(child_id=child["id"], family_id=child["family_id"], caregiver_id=mother["id"],
                   sender_id=mother["chat_sender_id"], phone=grandma["phone"], ics_token=child["ics_token"],
                   activity_id=activity["id"])


async def test_fuzz_openapi_no_server_errors(make_client, tmp_path):
    client = await make_client()
    anchors = await make_anchors(client)
    base_url = str(client.make_url("")).rstrip("/")
    # schemathesis is synchronous (requests): run it in a thread while this loop serves the app
    report = await asyncio.to_thread(fuzz_api, base_url, TOKEN, anchors, examples=TEST_EXAMPLES,
                                     sms_secret=SECRET, storage_dir=tmp_path / "hypothesis")
    assert report.operations >= 20
    assert len(report.by_operation) == report.operations, "every operation was called"
    assert report.requests >= MIN_REQUESTS, report.statuses
    assert not report.failures, "\n".join(report.failures[:20])
    assert not any(s >= 500 for s in report.statuses), report.statuses
    assert report.statuses[401] > 0 and any(200 <= s < 300 for s in report.statuses)
    health = await client.get("/health")
    assert health.status == 200 and (await health.json())["db"] is True
