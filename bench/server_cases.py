"""The routing server's hostile-client cases of issue 12 §2, run against one or more checkouts (before / after).

    python bench/server_cases.py --repo /path/to/old/checkout --repo /path/to/new/checkout [--json out.json]

For each checkout this starts its own ``src/serve.py`` (the checkout's interpreter path is this one's) on
127.0.0.1 with a tiny untrained router built by that checkout's code (``save_untrained_router`` on
``tests/test_pretrained_router.save_tiny_bert``, as tests/test_serve.py builds it) and a stub OpenAI-compatible
upstream in this process (also on 127.0.0.1) that records every request it gets and the ``Authorization``
header it came with. Candidate A's upstream key (``$EV_UPSTREAM_KEY``) is what a caller must not get to spend
anonymously; A is also the dearer candidate (A 1/10, B 1/1 USD per million input/output tokens): a policy that
picks the first candidate when every net value is NaN picks the dearest.
Both candidates have ``max_tokens_cap: 4096`` in the config (a checkout that predates caps ignores the field).

A checkout whose ``serve.py`` knows ``--api_key`` is run with a key in ``$LOOKAHEAD_API_KEY`` twice: with the
client sending ``Authorization: Bearer <key>`` and without it; older checkouts once, without a key. The case
"--host 0.0.0.0 without a key" starts a second server (no key) and only asks whether it binds (it answers on
127.0.0.1) or refuses (exits non-zero); it is stopped at once. Everything else is loopback only.

Every case is bounded: HTTP requests time out after ``REQUEST_TIMEOUT_S`` (the 15 MB prompt after
``BIG_TIMEOUT_S``), a stalled connection is watched for at most ``STALL_CAP_S`` seconds, a server has
``START_TIMEOUT_S`` to come up. Prints one markdown table, a row per case and a column per checkout and mode.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

UPSTREAM_KEY = "upstream-secret-0123456789"
CLIENT_KEY = "client-key-abcdef"
START_TIMEOUT_S = 480.0
REQUEST_TIMEOUT_S = 60.0
BIG_TIMEOUT_S = 240.0
STALL_CAP_S = 120.0
BIG_PROMPT_BYTES = 15 * 1000 * 1000
PYTHON = sys.executable

BUILD_ROUTER = """
import json, sys
from pathlib import Path
repo, root = Path(sys.argv[1]), Path(sys.argv[2])
sys.path[:0] = [str(repo / "src"), str(repo / "tests")]
try:  # where training builds an untrained router now; older checkouts kept it with the trained-router API
    from trainers import save_untrained_router
except ImportError:
    from routers.pretrained import save_untrained_router
from test_pretrained_router import CANDIDATES, save_tiny_bert
folder = save_untrained_router(root / "sc", "sc", save_tiny_bert(root / "bert"), CANDIDATES, max_length=18)
print(json.dumps({"folder": str(folder), "candidates": list(CANDIDATES)}))
"""


# --------------------------------------------------------------------------------------------------
# The stub upstream
# --------------------------------------------------------------------------------------------------

class Upstream:
    """OpenAI-compatible chat completions for every candidate; records (Authorization header, body)."""

    def __init__(self):
        self.requests: list[tuple[str | None, dict]] = []

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.headers.get("Authorization"), body))
        return web.json_response({"object": "chat.completion", "model": body.get("model"), "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]})

    async def start(self) -> tuple[web.AppRunner, int]:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        runner = web.AppRunner(app, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]


# --------------------------------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def knows_api_keys(repo: Path) -> bool:
    return "--api_key" in (repo / "src" / "serve.py").read_text()


def build_router(repo: Path, root: Path) -> dict:
    done = subprocess.run(["nice", "-n", "10", PYTHON, "-c", BUILD_ROUTER, str(repo), str(root)], cwd=repo,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"building the router with {repo} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_config(path: Path, candidates: list[str], upstream_port: int) -> Path:
    prices = {0: (1.0, 10.0), 1: (1.0, 1.0)}
    lines = ["router_model: router-lookahead", "timeout_s: 10", "candidates:"]
    for index, name in enumerate(candidates):
        price_in, price_out = prices.get(index, (1.0, 1.0))
        lines += [f"  - name: {name}", f"    base_url: http://127.0.0.1:{upstream_port}/v1", f"    model: model-{name}",
                  f"    input_price_per_million: {price_in}", f"    output_price_per_million: {price_out}",
                  "    max_tokens_cap: 4096"]
        if index == 0:
            lines.append("    api_key_env: EV_UPSTREAM_KEY")
    path.write_text("\n".join(lines) + "\n")
    return path


class Server:
    """One ``src/serve.py`` process of a checkout."""

    def __init__(self, repo: Path, router: str, config: Path, log: Path, host: str = "127.0.0.1",
                 server_key: str | None = None):
        self.port = free_port()
        env = {**os.environ, "EV_UPSTREAM_KEY": UPSTREAM_KEY, "PYTHONPATH": str(repo / "src")}
        env.pop("LOOKAHEAD_API_KEY", None)
        if server_key:
            env["LOOKAHEAD_API_KEY"] = server_key
        self.log = log
        self.process = subprocess.Popen(
            ["nice", "-n", "10", PYTHON, "src/serve.py", "--router", router, "--config", str(config),
             "--host", host, "--port", str(self.port)], cwd=repo, env=env, stdout=log.open("wb"),
            stderr=subprocess.STDOUT)

    async def wait_up(self) -> str:
        """'up' once it answers HTTP on 127.0.0.1, else 'exited <rc>' / 'no answer'."""
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return f"exited {self.process.returncode}"
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/v1/models",
                                           timeout=aiohttp.ClientTimeout(total=2)):
                        return "up"
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    await asyncio.sleep(0.5)
        return "no answer"

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --------------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------------

async def request(session, method: str, url: str, raw: bytes | None = None, headers: dict | None = None,
                  timeout: float = REQUEST_TIMEOUT_S) -> tuple[int | str, dict, str]:
    """(status or the client's exception name, response headers, body text)."""
    try:
        async with session.request(method, url, data=raw, headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            return response.status, dict(response.headers), await response.text()
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        return type(error).__name__, {}, ""


def chat_body(model: str, **fields) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "sort a list"}], **fields}).encode()


def error_code(text: str) -> str:
    try:
        error = json.loads(text).get("error") or {}
        return error.get("code") or error.get("type") or ""
    except (ValueError, AttributeError):
        return ""


async def stall(port: int, sent: bytes) -> str:
    """Send ``sent`` on a fresh connection and stall: seconds until the server closes it (and the status it sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    await writer.drain()
    started, received = time.monotonic(), b""
    try:
        while True:
            left = STALL_CAP_S - (time.monotonic() - started)
            if left <= 0:
                return f"still open after {STALL_CAP_S:.0f} s"
            try:
                chunk = await asyncio.wait_for(reader.read(65536), left)
            except asyncio.TimeoutError:
                return f"still open after {STALL_CAP_S:.0f} s"
            except ConnectionError:
                chunk = b""
            if not chunk:
                status = re.match(rb"HTTP/1\.[01] (\d+)", received)
                return (f"closed after {time.monotonic() - started:.1f} s"
                        + (f" (sent {status.group(1).decode()})" if status else " (no response)"))
            received += chunk
    finally:
        writer.close()


async def big_prompt(session, base: str, server: Server, auth: dict) -> tuple[str, str]:
    """The 15 MB prompt on /v1/route while small /v1/route requests run one after another: (the small requests'
    median latency before -> their worst while it ran, and the big one's status and time), (server RSS)."""
    small = json.dumps({"prompt": "hi"}).encode()
    headers = {"Content-Type": "application/json", **auth}

    async def timed_small() -> float:
        started = time.perf_counter()
        await request(session, "POST", f"{base}/v1/route", small, headers)
        return time.perf_counter() - started

    baseline = [await timed_small() for _ in range(10)]
    rss_before = server.rss_mb()
    peak = [rss_before]
    done = asyncio.Event()

    async def sample_rss():
        while not done.is_set():
            peak.append(server.rss_mb())
            await asyncio.sleep(0.1)

    async def small_loop(latencies: list[float]):
        while not done.is_set():
            latencies.append(await timed_small())

    raw = json.dumps({"prompt": "word " * (BIG_PROMPT_BYTES // 5)}).encode()
    latencies: list[float] = []
    sampler = asyncio.create_task(sample_rss())
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    big = asyncio.create_task(request(session, "POST", f"{base}/v1/route", raw, headers, BIG_TIMEOUT_S))
    await asyncio.sleep(0.05)
    smalls = asyncio.create_task(small_loop(latencies))
    status, _, text = await big
    big_s = time.perf_counter() - started
    done.set()
    await smalls
    await asyncio.sleep(3)
    rss_after = server.rss_mb()
    await sampler
    worst = max(latencies) if latencies else float("nan")
    code = error_code(text)
    timing = (f"big: {status}{' ' + code if code else ''} in {big_s:.1f} s; small: "
              f"{statistics.median(baseline) * 1000:.0f} ms -> worst {worst * 1000:.0f} ms ({len(latencies)} during)")
    memory = (f"{rss_before:.0f} MB -> peak {max(peak):.0f} -> {rss_after:.0f} MB 3 s later "
              f"(+{rss_after - rss_before:.0f})")
    return timing, memory


async def run_cases(repo: Path, router: dict, config: Path, work: Path, server_key: str | None,
                    client_key: str | None, upstream: Upstream) -> dict[str, str]:
    results: dict[str, str] = {}
    server = Server(repo, router["folder"], config, work / f"serve-{bool(server_key)}-{bool(client_key)}.log",
                    server_key=server_key)
    try:
        state = await server.wait_up()
        if state != "up":
            return {"server start": f"{state}: {server.log.read_text()[-300:]}"}
        base = f"http://127.0.0.1:{server.port}"
        auth = {"Authorization": f"Bearer {client_key}"} if client_key else {}
        headers = {"Content-Type": "application/json", **auth}
        a, b = router["candidates"][:2]
        async with aiohttp.ClientSession() as session:
            def upstream_saw(since: int) -> str:
                seen = upstream.requests[since:]
                if not seen:
                    return "upstream not called"
                keyed = sum(header == f"Bearer {UPSTREAM_KEY}" for header, _ in seen)
                return f"upstream called, {'with' if keyed else 'without'} the configured key"

            async def post(path: str, raw: bytes, timeout: float = REQUEST_TIMEOUT_S):
                return await request(session, "POST", base + path, raw, headers, timeout)

            since = len(upstream.requests)
            status, _, text = await post("/v1/chat/completions", chat_body(a))
            results["chat naming candidate A"] = (f"{status} {error_code(text)}; "
                                                  f"{upstream_saw(since)}").replace(" ;", ";")

            since = len(upstream.requests)
            status, _, text = await post("/v1/chat/completions", chat_body(a, n=64, max_tokens=1_000_000))
            forwarded = upstream.requests[since:]
            sent = (f"forwarded n={forwarded[0][1].get('n')}, max_tokens={forwarded[0][1].get('max_tokens')}"
                    if forwarded else "not forwarded")
            results["n=64, max_tokens=1000000 naming A"] = f"{status} {error_code(text)}; {sent}".replace(" ;", ";")

            since = len(upstream.requests)
            status, _, text = await post("/v1/chat/completions", chat_body(a, max_tokens=100))
            forwarded = upstream.requests[since:]
            results["max_tokens=100 naming A (within the cap)"] = (
                f"{status}; " + (f"forwarded max_tokens={forwarded[0][1].get('max_tokens')}" if forwarded
                                 else "not forwarded"))

            since = len(upstream.requests)
            status, response_headers, text = await post("/v1/chat/completions", chat_body("router-lookahead"))
            results["routed chat (model router-lookahead)"] = (
                f"{status} {error_code(text)}; candidate {response_headers.get('X-Lookahead-Candidate', '-')}; "
                f"{upstream_saw(since)}").replace(" ;", ";")

            status, _, text = await request(session, "GET", base + "/health", headers=auth)
            paths = [p for p in (router["folder"], str(work), tempfile.gettempdir() + "/") if p in text]
            results["/health"] = (f"{status}; filesystem path shown: {'yes (' + paths[0] + ')' if paths else 'no'}; "
                                  f"fields: {', '.join(sorted(json.loads(text))) if status == 200 else '-'}")

            for label, literal in (("0", "0"), ("1e6", "1e6"), ("NaN", "NaN"), ("Infinity", "Infinity"),
                                   ("1e999", "1e999")):
                raw = b'{"prompt": "sort a list", "willingness_to_pay": ' + literal.encode() + b"}"
                status, _, text = await post("/v1/route", raw)
                chosen = json.loads(text).get("candidate") if status == 200 else None
                results[f"willingness_to_pay {label} on /v1/route"] = (
                    f"{status} {error_code(text)}" + (f"; chose {chosen}" if chosen else "")).strip()

            raw = b'{"prompt": "hi", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
            status, _, text = await post("/v1/route", raw)
            results["JSON nested 200,000 deep on /v1/route"] = f"{status} {error_code(text)}".strip()

            since = len(upstream.requests)
            raw = json.dumps({"model": a, "messages": [{"role": "system", "content": "be brief"}]}).encode()
            status, _, text = await post("/v1/chat/completions", raw)
            forwarded = upstream.requests[since:]
            results["system message only, naming A"] = (
                f"{status} {error_code(text)}; ".replace(" ;", ";")
                + (f"forwarded with messages={forwarded[0][1].get('messages')}" if forwarded else "not forwarded"))

            timing, memory = await big_prompt(session, base, server, auth)
            results["15 MB prompt on /v1/route: time"] = timing
            results["15 MB prompt on /v1/route: server RSS"] = memory

            auth_line = f"Authorization: Bearer {client_key}\r\n".encode() if client_key else b""
            head = (b"POST /v1/route HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + auth_line
                    + b"Content-Length: 1000\r\n\r\n")
            mid_body, mid_headers = await asyncio.gather(
                stall(server.port, head + b'{"prompt": "h'),
                stall(server.port, b"POST /v1/route HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
            results["client stalls mid-body"] = mid_body
            results["client stalls mid-headers"] = mid_headers
    finally:
        server.stop()
    return results


async def bind_all_interfaces(repo: Path, router: dict, config: Path, work: Path) -> str:
    """--host 0.0.0.0 without a key: does it bind (answer on 127.0.0.1) or refuse?"""
    server = Server(repo, router["folder"], config, work / "serve-0.0.0.0.log", host="0.0.0.0")
    try:
        state = await server.wait_up()
    finally:
        server.stop()
    if state == "up":
        return "binds (served on 0.0.0.0; stopped at once)"
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    return f"refuses ({state}): {lines[-1][:110] if lines else ''}"


async def checkout_columns(repo: Path, upstream: Upstream, upstream_port: int, work: Path) -> dict[str, dict]:
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    router = build_router(repo, work)
    config = write_config(work / "candidates.yaml", router["candidates"], upstream_port)
    modes = ([("key set, client sends it", CLIENT_KEY, CLIENT_KEY), ("key set, client sends none", CLIENT_KEY, None)]
             if knows_api_keys(repo) else [("no keys exist", None, None)])
    binding = await bind_all_interfaces(repo, router, config, work)
    columns = {}
    for label, server_key, client_key in modes:
        started = time.monotonic()
        results = await run_cases(repo, router, config, work, server_key, client_key, upstream)
        results["--host 0.0.0.0 without a key"] = binding
        print(f"{commit} ({label}): {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        columns[f"{commit} ({label})"] = results
    return columns


async def main_async(repos: list[Path], json_path: Path | None) -> None:
    upstream = Upstream()
    runner, upstream_port = await upstream.start()
    columns: dict[str, dict] = {}
    try:
        for repo in repos:
            with tempfile.TemporaryDirectory(prefix="server-cases-") as work:
                columns.update(await checkout_columns(repo.resolve(), upstream, upstream_port, Path(work)))
    finally:
        await runner.cleanup()
    rows = list(dict.fromkeys(case for results in columns.values() for case in results))
    print("| case | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for case in rows:
        cells = [columns[column].get(case, "-").replace("|", "/") for column in columns]
        print(f"| {case} | " + " | ".join(cells) + " |")
    if json_path:
        json_path.write_text(json.dumps(columns, indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", action="append", required=True, type=Path,
                        help="A checkout whose src/serve.py to run (repeat: one column set per checkout).")
    parser.add_argument("--json", type=Path, help="Also write the results here (JSON: column -> case -> result).")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.repo, args.json))


if __name__ == "__main__":
    main()
