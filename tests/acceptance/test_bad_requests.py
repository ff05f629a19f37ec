"""A corpus of bad requests against a real ``mediatasks serve`` on SQLite and on PostgreSQL.

Each must answer a 4xx with the dialect's ``{"errors": [...]}`` body, never a 5xx, and leave the
connection usable: the same keep-alive connection answers the next request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import processes

pytestmark = pytest.mark.slow

#: (method, path, request arguments); ``{asset}``, ``{webhook}`` and ``{task}`` name real ones.
Case = tuple[str, str, dict[str, Any]]


def _filters(value: Any) -> dict[str, Any]:
    return {"params": {"filters": json.dumps(value)}}


def _raw(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


CORPUS: list[Case] = [
    # List parameters: cursors, filters and orders of every wrong type and size.
    ("GET", "/api/task", {"params": {"cursor": "skip99999999999999999999999"}}),
    ("GET", "/api/task", {"params": {"cursor": "skip-1"}}),
    ("GET", "/api/task", {"params": {"cursor": "W1tdLFtdXQ"}}),  # [[],[]]
    ("GET", "/api/task", {"params": {"cursor": "=" * 5000}}),
    ("GET", "/api/asset", {"params": {"cursor": "bm90IGpzb24"}}),
    ("GET", "/api/task", _filters([{"id": "createdAt", "value": {"gt": 99999999999999999999999}}])),
    ("GET", "/api/task", _filters([{"id": "createdAt", "value": 18446744073709551616}])),
    ("GET", "/api/task", _filters([{"id": "createdAt", "value": {"lt": 1e300}}])),
    ("GET", "/api/task", _filters([{"id": "id", "value": 5}])),
    ("GET", "/api/task", _filters([{"id": "createdAt", "value": "abc"}])),
    ("GET", "/api/task", _filters([{"id": "createdAt", "value": {"gt": "abc"}}])),
    ("GET", "/api/task", _filters([{"id": "createdAt", "value": {"eq": 1}}])),
    ("GET", "/api/task", _filters([{"id": "createdAt", "value": {}}])),
    ("GET", "/api/task", _filters([{"id": "type", "value": None}])),
    ("GET", "/api/task", _filters([{"id": "type", "value": ["upload"]}])),
    ("GET", "/api/task", _filters([{"id": "type", "value": True}])),
    ("GET", "/api/task", _filters([{"id": "type", "value": "up\u0000load"}])),
    ("GET", "/api/asset", _filters([{"id": "name", "value": 7}])),
    ("GET", "/api/asset", _filters([{"id": "playbackId", "value": {"gt": 3}}])),
    ("GET", "/api/task", _filters({"id": "type"})),
    ("GET", "/api/task", {"params": {"filters": "[" * 20_000}}),
    ("GET", "/api/task", {"params": {"filters": '[{"id": "type", "value": NaN}]'}}),
    ("GET", "/api/task", {"params": {"order": "createdAt-maybe"}}),
    ("GET", "/api/task", {"params": {"order": "params-true"}}),
    ("GET", "/api/task", {"params": {"projectId": "x"}}),
    ("GET", "/api/task", {"params": {"limit": "\u0000"}}),
    # Odd ids: a NUL, a newline, a very long one, bytes that are not UTF-8.
    ("GET", "/api/task/%00", {}),
    ("GET", "/api/task/abc%0A", {}),
    ("GET", "/api/task/abc%0D%0Ax", {}),
    ("GET", "/api/asset/%0A", {}),
    ("GET", "/api/asset/" + "a" * 5000, {}),
    ("GET", "/api/asset/%FF%FE", {}),
    ("DELETE", "/api/asset/%00", {}),
    ("PATCH", "/api/asset/%0A", {"json": {"name": "x"}}),
    ("GET", "/api/webhook/%00/log/%00", {}),
    ("POST", "/api/webhook/{webhook}/log/nope/resend", {}),
    ("POST", "/api/task/%00/retry", {}),
    ("POST", "/api/task/nope/cancel", {}),
    ("GET", "/api/nothing/here", {}),
    # Bodies: not JSON, not an object, NUL, non-finite and out-of-range numbers, deep nesting.
    ("POST", "/api/asset/upload/url", _raw("{not json")),
    ("POST", "/api/asset/upload/url", _raw("[1, 2]")),
    ("POST", "/api/asset/upload/url", _raw('"a string"')),
    ("POST", "/api/asset/upload/url", _raw('{"name": "a\\u0000b", "url": "https://x.example/v"}')),
    ("POST", "/api/asset/upload/url", _raw('{"name": "a", "url": "https://x.example/v\\u0000"}')),
    ("POST", "/api/asset/upload/url", _raw('{"na\\u0000me": "a", "url": "https://x.example/v"}')),
    ("POST", "/api/asset/request-upload", _raw('{"name": "a", "targetSegmentSizeSecs": 1e400}')),
    ("POST", "/api/asset/request-upload", _raw('{"name": "a", "targetSegmentSizeSecs": NaN}')),
    (
        "POST",
        "/api/asset/request-upload",
        _raw('{"name": "a", "targetSegmentSizeSecs": -Infinity}'),
    ),
    ("POST", "/api/asset/request-upload", {"json": {"name": "a", "targetSegmentSizeSecs": 4e107}}),
    (
        "POST",
        "/api/asset/request-upload",
        _raw('{"name": "a", "profiles": [{"bitrate": 1' + "0" * 40 + "}]}"),
    ),
    ("POST", "/api/asset/request-upload", _raw("[" * 100_000 + "]" * 100_000)),
    ("POST", "/api/asset/request-upload", _raw('{"name": {"a": ' * 40 + "1" + "}" * 41)),
    ("POST", "/api/asset/request-upload", {"json": {"name": "n" * 501}}),
    ("POST", "/api/asset/request-upload", {"json": {"name": "a", "creatorId": "c" * 9000}}),
    ("POST", "/api/asset/request-upload", {"json": {"name": "a", "creatorId": {"value": "x"}}}),
    ("POST", "/api/asset/request-upload", {"json": {"name": "a", "storage": {"ipfs": {"x": 1}}}}),
    ("POST", "/api/asset/request-upload", {"json": {"name": "a", "staticMp4": "yes"}}),
    ("POST", "/api/asset/request-upload", {"json": {"name": "a", "profiles": []}}),
    (
        "POST",
        "/api/asset/request-upload",
        {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
    ),
    ("POST", "/api/asset/upload/url", {"json": {"name": "a", "url": "ipfs://"}}),
    ("POST", "/api/asset/upload/url", {"json": {"name": "a", "url": "ar://../../etc"}}),
    ("POST", "/api/asset/upload/url", {"json": {"name": "a", "url": "file:///etc/passwd"}}),
    ("POST", "/api/clip", {"json": {"playbackId": "nope", "startTime": 1e308}}),
    ("POST", "/api/clip", {"json": {"playbackId": "{playback}", "startTime": 0, "endTime": 1e308}}),
    ("POST", "/api/clip", {"json": {"playbackId": "{playback}", "startTime": -1}}),
    ("POST", "/api/webhook", {"json": {"name": "h"}}),
    (
        "POST",
        "/api/webhook",
        {"json": {"name": "h", "url": "https://h.example/x", "events": ["x"]}},
    ),
    ("PUT", "/api/webhook/{webhook}", {"json": {"url": "https://h.example/x"}}),
    ("PATCH", "/api/asset/{asset}", {"json": {"creatorId": {"value": "x"}}}),
    ("PATCH", "/api/asset/{asset}", {"json": {"storage": {"ipfs": {"spec": {}, "junk": 1}}}}),
    ("PATCH", "/api/asset/{asset}", {"json": {"name": "n" * 501}}),
    (
        "PATCH",
        "/api/asset/{asset}",
        {"json": {"playbackPolicy": {"type": "jwt", "refreshInterval": -1}}},
    ),
    (
        "POST",
        "/api/asset/{asset}/export",
        {"json": {"custom": {"url": "https://t.example/\u0000"}}},
    ),
    ("POST", "/api/data/export", {"json": {"content": "text"}}),
    ("POST", "/api/transcode", {"json": {"input": {"url": "https://x.example/v"}}}),
    (
        "POST",
        "/api/transcode",
        {
            "json": {
                "input": {"url": "https://x.example/v"},
                "storage": {"type": "s3"},
                "outputs": {},
                "targetSegmentSizeSecs": 1e300,
            }
        },
    ),
    # Uploads: forged tokens and impossible lengths.
    ("PUT", "/api/asset/upload/direct", {"params": {"token": "x.y.z"}, "content": b"x"}),
    ("POST", "/api/asset/upload/tus", {"params": {"token": "\u0000"}}),
    (
        "POST",
        "/api/asset/upload/tus",
        {"params": {"token": "{token}"}, "headers": {"Upload-Length": "9" * 40}},
    ),
    ("HEAD", "/api/asset/upload/tus/{asset}", {"params": {"token": "nope"}}),
    # Signing keys and playback info.
    ("GET", "/api/playback/%00", {}),
    ("GET", "/api/playback/nope%0A", {}),
    ("POST", "/api/access-control/signing-key", {"json": {"name": "k", "junk": 1}}),
    ("PATCH", "/api/access-control/signing-key/nope", {"json": {"disabled": True}}),
    ("PATCH", "/api/access-control/signing-key/{key}", {"json": {"disabled": "yes"}}),
    ("DELETE", "/api/access-control/signing-key/%00", {}),
    # Headers.
    (
        "POST",
        "/api/webhook",
        {
            "json": {"name": "h", "url": "https://h.example/x"},
            "headers": {"Idempotency-Key": "k" * 300},
        },
    ),
    ("GET", "/api/task", {"headers": {"Authorization": "Basic abc"}}),
    ("GET", "/api/task", {"headers": {"Authorization": "Bearer " + "k" * 10_000}}),
]


#: Odd values that have a meaning: Studio reads a limit it cannot use as the default, and an
#: event id that is no row id resumes from the start.  These must not fail, 2xx or 4xx.
TOLERATED: list[Case] = [
    ("GET", "/api/task", {"params": {"limit": "99999999999999999999999"}}),
    ("GET", "/api/asset", {"params": {"limit": "-5"}}),
    ("GET", "/api/task/{task}/events", {"headers": {"Last-Event-ID": "9" * 30}}),
    ("GET", "/api/webhook/{webhook}/log", {"params": {"limit": "9" * 30}}),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[processes.Server]:
    settings: dict[str, str] = {}
    if request.param == "postgres":
        settings["database_url"] = request.getfixturevalue("pg_url")
    with processes.serve(tmp_path, **settings) as running:
        yield running
        log = running.proc.log()
        assert "Traceback" not in log, log[-5000:]


def test_no_bad_request_answers_5xx(server: processes.Server) -> None:
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.key}"},
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=30,
    ) as client:
        created = client.post("/api/asset/request-upload", json={"name": "target"}).json()
        hook = client.post("/api/webhook", json={"name": "h", "url": "https://h.example/"}).json()
        key = client.post("/api/access-control/signing-key").json()
        names = {
            "asset": created["asset"]["id"],
            "playback": created["asset"]["playbackId"],
            "task": created["task"]["id"],
            "token": created["tusEndpoint"].split("token=")[1],
            "webhook": hook["id"],
            "key": key["id"],
        }
        failures = []
        cases = [(case, False) for case in CORPUS] + [(case, True) for case in TOLERATED]
        for (method, path, arguments), tolerated in cases:
            arguments = json.loads(json.dumps(arguments, default=lambda b: b.decode("latin-1")))
            if "content" in arguments:
                arguments["content"] = arguments["content"].encode("latin-1")
            for name, value in names.items():
                path = path.replace("{" + name + "}", value)
                if "json" in arguments:
                    arguments["json"] = json.loads(
                        json.dumps(arguments["json"]).replace("{" + name + "}", value)
                    )
                if "params" in arguments:
                    arguments["params"] = {
                        k: v.replace("{" + name + "}", value)
                        for k, v in arguments["params"].items()
                    }
            response = client.request(method, path, **arguments)
            shown = f"{method} {path[:80]} {str(arguments)[:160]} -> {response.status_code}"
            if response.status_code >= 500 or not (tolerated or response.status_code >= 400):
                failures.append(f"{shown} {response.text[:200]}")
                continue
            if method != "HEAD" and response.status_code >= 400:
                body = response.json()
                if not (
                    isinstance(body, dict)
                    and list(body) == ["errors"]
                    and body["errors"]
                    and all(isinstance(m, str) and m for m in body["errors"])
                ):
                    failures.append(f"{shown}: not the dialect's error body: {body}")
            if response.headers.get("connection", "").lower() == "close":
                failures.append(f"{shown}: the connection was closed")
            after = client.get("/api/task", params={"limit": 1})
            if after.status_code != 200:
                failures.append(f"{shown}: the next request answered {after.status_code}")
        assert not failures, "\n".join(failures)
        print(f"{len(cases)} bad requests, none answered 5xx")
