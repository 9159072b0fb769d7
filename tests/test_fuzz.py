"""Schema-driven fuzzing: schemathesis sends every endpoint of `/openapi.json` what its schema allows and what
it does not; no request may be answered with a 5xx. Run by `make fuzz` (not `make test`: ~13 min on 2 cores)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN, RedisTarget, Server, new_shop, server_env

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(3600)]

#: The run must send at least this many requests (LIVEMAP_FUZZ_REQUESTS to change it).
REQUESTS = int(os.environ.get("LIVEMAP_FUZZ_REQUESTS", "20000"))
#: Test cases per operation: 500 over the document's 45 operations sent 17,944 requests (coverage cases
#: included; some operations' schemas allow fewer distinct cases), so this leaves a margin over REQUESTS.
_EXAMPLES = max(10, REQUESTS // 32)
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def _config(key: str, driver_token: str, tracking_id: str, tracking_token: str, store_id: str) -> str:
    """Each audience's credential on its own paths, and ids that exist, so requests get past 401 and 404."""
    return f"""
headers = {{ Authorization = "Bearer {key}" }}
[[operations]]
include-path = "/api/stores"
headers = {{ Authorization = "Bearer {ADMIN}" }}
[[operations]]
include-path-regex = "^/(api/driver(/|$)|ingest/)"
headers = {{ Authorization = "Bearer {driver_token}" }}
[[operations]]
include-path-regex = "^/(api/|ws/)?track/"
headers = {{ Authorization = "Bearer {tracking_token}" }}
[parameters]
tracking_id = "{tracking_id}"
driver_id = "fz1"
order_id = "1"
store = "{store_id}"
"""


#: The operations each schemathesis process takes, about even in generation work (orders and settings have
#: the largest schemas): orders, stores and dispatchers; and the rest (drivers, customers, pages, ingest...).
_SPLIT = "^/api/(orders|stores?|dispatchers)(/|$)"
_HALVES = {"orders": ["--include-path-regex", _SPLIT], "rest": ["--exclude-path-regex", _SPLIT]}


async def _schemathesis(config: Path, server: Server, report: Path, half: str) -> int:
    """One `st run` over half of the operations; its exit code (its output goes to `report`)."""
    st = Path(sys.executable).with_name("st")
    args = ["--config-file", str(config), "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error"]
    args += ["--max-examples", str(_EXAMPLES), "--continue-on-failure", "--no-color", *_HALVES[half]]
    with report.open("w") as out:
        proc = await asyncio.create_subprocess_exec(st, *args, stdout=out, stderr=asyncio.subprocess.STDOUT)
        return await proc.wait()


async def test_fuzzing_every_endpoint_gets_no_server_error(redis_target: RedisTarget, tmp_path: Path) -> None:
    """At least REQUESTS schema-driven requests over every endpoint, none answered with a 5xx."""
    server = Server(server_env(redis_target, tmp_path / "data"), "fuzz")
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            shop = await new_shop(http, server)
            token = await shop.driver("fz1")
            order = await shop.order("1")
        config = tmp_path / "schemathesis.toml"
        config.write_text(_config(shop.key, token, order["tracking_id"], order["tracking_token"], shop.id))
        # schemathesis spends a core generating cases (its workers are threads): two processes, each with
        # half of the operations, keep both cores busy.
        runs = [_schemathesis(config, server, tmp_path / f"schemathesis-{half}.txt", half) for half in _HALVES]
        codes = await asyncio.gather(*runs)
    finally:
        server.stop()
    access = [m for line in server.output if (m := _ACCESS.search(line))]
    errors = [f"{m['status']} {m['method']} {m['path'].split('?')[0]}" for m in access if m["status"] >= "500"]
    statuses = Counter(m["status"] for m in access)
    print(f"fuzz: {len(access)} requests, by status {dict(sorted(statuses.items()))}")
    assert not errors, f"{len(errors)} server errors, e.g. {errors[:5]}"
    for half, code in zip(_HALVES, codes, strict=True):
        assert code == 0, (tmp_path / f"schemathesis-{half}.txt").read_text()[-4000:]
    assert len(access) >= REQUESTS, f"only {len(access)} requests were sent"
