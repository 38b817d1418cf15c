"""HTTP: the add-job endpoint against a trivial FastAPI endpoint on the same server settings, with `wrk`.

Both servers are one uvicorn process on 127.0.0.1 with the settings of `jobkeeper api` (serve_api:
proxy_headers off, no server header, no access log, lifespan on). The jobkeeper one is the real
`jobkeeper api` command: bearer JWT (HS256) verified on every request, the tenant's transaction with
row-level security, the per-principal rate limiter (its limits raised so that it never refuses: the check
still runs), payload validation, the idempotency check, the insert. The trivial one parses a JSON body
into a dict and answers 201 with a small JSON object. `wrk` (Debian's package) runs on the same 2 cores,
loopback only, for a bounded duration; non-2xx answers are counted and reported.

    .venv/bin/python bench/http_api.py --url postgresql://postgres@127.0.0.1:5432/jk_bench [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Results, Sample, emit, log  # noqa: E402

JOBKEEPER = Path(sys.executable).parent / "jobkeeper"
PATH = "/api/v1/queue/jobs"
BATCH = 100

TRIVIAL = """
import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.post("{path}", status_code=201)
async def add(body: dict) -> dict:
    return {{"id": "00000000-0000-0000-0000-000000000000", "status": "pending"}}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", proxy_headers=False,
            server_header=False, access_log=False, lifespan="on")
"""

LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - http://127.0.0.1 only
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.2)


def token(secret: str, role: str) -> str:
    import jwt

    from jobkeeper.types import DEV_TENANT_ID

    now = int(time.time())
    claims = {
        "sub": "bench",
        "aud": "bench",
        "iss": "bench",
        "iat": now,
        "exp": now + 3600,
        "tenant_id": str(DEV_TENANT_ID),
        "role": role,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class Http:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args
        self.results: Results = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="jk-http-"))
        self.secret = secrets.token_urlsafe(48)

    def wrk(self, target: str, body: str, bearer: str | None) -> Sample:
        script = self.tmp / f"post-{time.time_ns()}.lua"
        auth = f'wrk.headers["Authorization"] = "Bearer {bearer}"' if bearer else ""
        script.write_text(LUA.format(body=json.dumps(body), auth=auth))
        command = [self.args.wrk, "-t", "1", "-c", str(self.args.connections), "-d", f"{self.args.seconds}s"]
        command += ["-s", str(script), target]
        done = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=self.args.seconds + 60
        )
        rps = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
        total = re.search(r"(\d+) requests in", done.stdout)
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
        latency = re.search(r"Latency\s+([\d.]+\w+)", done.stdout)
        return {
            "requests_per_s": float(rps.group(1)) if rps else None,
            "requests": int(total.group(1)) if total else None,
            "non_2xx": int(bad.group(1)) if bad else 0,
            "mean_latency": latency.group(1) if latency else None,
            "connections": self.args.connections,
            "seconds": self.args.seconds,
        }

    def api_env(self, port: int) -> dict[str, str]:
        return dict(
            os.environ,
            DATABASE_URL=self.url,
            JOBKEEPER_JWT_SECRET=self.secret,
            JOBKEEPER_JWT_AUDIENCE="bench",
            JOBKEEPER_JWT_ISSUER="bench",
            JOBKEEPER_API_RATE_PER_SECOND="100000000",
            JOBKEEPER_API_RATE_BURST="100000000",
            JOBKEEPER_LOG_LEVEL="WARNING",
            JOBKEEPER_HOST="127.0.0.1",
            JOBKEEPER_PORT=str(port),
        )

    def measure(self, name: str, once: Any) -> None:
        samples = []
        for run in range(self.args.runs):
            log(f"http {name} run {run + 1}/{self.args.runs}")
            try:
                sample = once()
            except Exception as exc:
                log(f"  failed: {exc!r}")
                sample = {"error": repr(exc)}
            log(f"  {sample.get('requests_per_s', sample.get('error'))} requests/s")
            samples.append(sample)
        self.results[name] = samples

    def truncate(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("TRUNCATE jobkeeper.jobs, jobkeeper.idempotency_keys, jobkeeper.rate_limits")

    def run(self) -> None:
        from jobkeeper.store import migrate

        migrate.upgrade(self.url)
        self.truncate()
        one = json.dumps({"type": "bench-noop", "queue": "money", "data": {"n": 1}})
        batch = json.dumps(
            {"jobs": [{"type": "bench-noop", "queue": "money", "data": {"n": i}} for i in range(BATCH)]}
        )

        port = free_port()
        trivial_path = self.tmp / "trivial.py"
        trivial_path.write_text(TRIVIAL.format(path=PATH))
        server = subprocess.Popen([sys.executable, str(trivial_path), str(port)])
        try:
            wait_http(f"http://127.0.0.1:{port}/openapi.json")
            self.measure("http_trivial", lambda: self.wrk(f"http://127.0.0.1:{port}{PATH}", one, None))
        finally:
            server.terminate()
            server.wait(30)

        port = free_port()
        log_file = open(self.tmp / "api.log", "wb")  # noqa: SIM115
        api = subprocess.Popen(
            [str(JOBKEEPER), "api", "--port", str(port)],
            env=self.api_env(port),
            stdout=log_file,
            stderr=log_file,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            user = token(self.secret, "user")
            admin = token(self.secret, "venue_admin")
            target = f"http://127.0.0.1:{port}{PATH}"
            self.measure("http_add_job", lambda: self.wrk(target, one, user))
            self.measure("http_batch", lambda: self.wrk(target + "/batch", batch, admin))
            for sample in self.results["http_batch"]:
                if sample.get("requests_per_s"):
                    sample["jobs_per_s"] = sample["requests_per_s"] * BATCH
        finally:
            api.terminate()
            api.wait(30)
            self.truncate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    args.seconds = 3 if args.quick else 10
    http = Http(args.url, args)
    started = time.time()
    try:
        http.run()
    finally:
        emit(
            http.results,
            {
                "system": "http",
                "started": started,
                "seconds": time.time() - started,
                "settings": {
                    "server": "one uvicorn process each, serve_api's settings",
                    "wrk": f"wrk -t 1 -c {args.connections} -d {args.seconds}s, POST JSON, loopback",
                    "batch": BATCH,
                    "rate_limiter": "on, limits raised to 1e8/s (never refuses)",
                },
                "logs": str(http.tmp),
            },
        )


if __name__ == "__main__":
    main()
