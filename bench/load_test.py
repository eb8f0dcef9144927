"""Load test of the routing server on loopback: N concurrent clients for a fixed time against stub candidates.

    python bench/load_test.py [--router DIR | --backbone NAME] [--clients 200] [--duration_s 30] \\
        [--upstream_delay_ms 20] [--auth on|off] [--large_prompt_mb 15] [--server_args "--precision fp32"]

Three processes on 127.0.0.1: a stub OpenAI-compatible upstream answering every candidate after
``--upstream_delay_ms`` (streamed answers in three chunks), the real server (``python src/serve.py``, the config
candidates.example.yaml with every base_url pointed at the stub) and this client. The router: ``--router`` (a
trained router folder), else an untrained Lookahead-MLM router (the paper's five candidates, the same computation
as a trained one) on ``--backbone``; the default backbone, a 2-layer BERT of width 64 with MiniLM's tokenizer,
keeps the model's share of the time small so that the figures measure the server (pass
``--backbone packaged:all-minilm-l6-v2`` for the paper-size encoder).

Each client sends requests back to back until the time is up (or ``--max_requests`` are sent in all): 85% routed,
10% routed and streamed, 5% sent to a candidate by name; prompts come from a fixed list of varied lengths. With
``--auth on`` (the default) the server requires an API key (``$LOOKAHEAD_API_KEY``, a fresh random one) and every
client sends it. ``--large_prompt_mb X`` adds one ``/v1/route`` request with a prompt of X MiB, sent a third of the
way into the run, and reports its latency and the routing overhead of the small requests that overlapped it. The
run stops by itself: the clients stop at the deadline, requests time out after ``--request_timeout_s``, and the
server and stub are terminated. Printed (and written to ``--out`` as JSON): requests/s, latency and routing
overhead percentiles (the server's X-Lookahead-Routing-Ms: receipt of a request to its forwarding, i.e. parsing,
queueing for the router and routing), the server's mean routing batch, its resident memory (before the load,
peak, after) and the errors (target: none).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import torch
import yaml
from aiohttp import web
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from data import PAPER_CANDIDATES  # noqa: E402
from model.backbones import resolve_backbone  # noqa: E402
from trainers import save_untrained_router  # noqa: E402

TOPICS = ["sort a list of integers", "explain recursion", "parse a CSV file", "write a haiku about autumn",
          "prove that the square root of 2 is irrational", "summarise the causes of World War I",
          "compute the derivative of x^3 sin x", "merge two sorted linked lists", "plan a three-day trip to Kyoto",
          "translate 'good morning' into French, German and Japanese"]
PROMPTS = [f"Please {topic}." + " Give details and reasons." * (i % 7) for i, topic in enumerate(TOPICS * 3)]


# --------------------------------------------------------------------------------------------------
# Stub upstream (its own process)
# --------------------------------------------------------------------------------------------------

def run_stub(port: int, delay_s: float) -> None:
    """An OpenAI-compatible stub for every candidate: answers after ``delay_s`` (streamed: three chunks)."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        await asyncio.sleep(delay_s)
        if not body.get("stream"):
            return web.json_response({"object": "chat.completion", "model": body["model"], "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "stub answer"}, "finish_reason": "stop"}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in ("stub", " streamed", " answer"):
            chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": word}}]}
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024)


def untrained_router(folder: Path, backbone: str | None) -> str:
    """An untrained mask_concat router over the paper's candidates on ``backbone`` (default: a small BERT)."""
    if backbone is None:
        tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
        torch.manual_seed(0)
        BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=128)).save_pretrained(folder / "backbone")
        tokenizer.save_pretrained(folder / "backbone")
        backbone = str(folder / "backbone")
    return str(save_untrained_router(folder / "router", "mask_concat", backbone, PAPER_CANDIDATES,
                                     max_length=455))  # a 128-token prompt and 5 blocks of 64 slots


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------------

def request_body(rng: random.Random) -> dict:
    draw = rng.random()
    model = rng.choice(PAPER_CANDIDATES) if draw < 0.05 else "router-lookahead"
    return {"model": model, "messages": [{"role": "user", "content": rng.choice(PROMPTS)}], "max_tokens": 256,
            "stream": 0.05 <= draw < 0.15}


async def one_request(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    started = time.perf_counter()
    async with session.post(url, json=body) as response:
        payload = await response.read()
        result = {"status": response.status, "routed": body["model"] == "router-lookahead", "stream": body["stream"],
                  "routing_ms": float(response.headers.get("X-Lookahead-Routing-Ms", "nan"))}
    if result["status"] == 200:
        complete = payload.rstrip().endswith(b"data: [DONE]") if body["stream"] else b'"choices"' in payload
        result["status"] = 200 if complete else "incomplete answer"
    else:  # the kind of error: the status and the OpenAI error code
        try:
            result["status"] = f"{result['status']} {json.loads(payload)['error']['code']}"
        except (ValueError, KeyError, TypeError):
            pass
    result["latency_ms"] = (time.perf_counter() - started) * 1000
    result["started"] = started
    return result


async def client(session, url: str, deadline: float, max_requests: int, seed: int, results: list[dict]) -> None:
    """Send requests back to back until ``deadline`` or ``max_requests``."""
    rng = random.Random(seed)
    for _ in range(max_requests):
        if time.perf_counter() >= deadline:
            return
        try:
            results.append(await one_request(session, url, request_body(rng)))
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            results.append({"status": f"{type(error).__name__}: {error}", "routed": False, "stream": False,
                            "routing_ms": float("nan"), "latency_ms": float("nan"), "started": time.perf_counter()})


async def large_request(session, port: int, megabytes: float, delay_s: float) -> dict:
    """One /v1/route request with a prompt of ``megabytes`` MiB, sent after ``delay_s``."""
    await asyncio.sleep(delay_s)
    prompt = ("Please summarise this text, which repeats. " * (int(megabytes * 2 ** 20) // 43 + 1))[
        :int(megabytes * 2 ** 20)]
    started = time.perf_counter()
    async with session.post(f"http://127.0.0.1:{port}/v1/route", json={"prompt": prompt}) as response:
        await response.read()
        return {"status": response.status, "started": started, "latency_ms": (time.perf_counter() - started) * 1000}


def resident_mib(pid: int) -> float:
    """The resident memory of process ``pid`` (VmRSS), MiB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


async def sample_memory(pid: int, samples: list[float]) -> None:
    while True:
        samples.append(resident_mib(pid))
        await asyncio.sleep(0.25)


async def load(port: int, clients: int, duration_s: float, max_requests: int, timeout_s: float, api_key: str | None,
               large_prompt_mb: float, server_pid: int) -> tuple[list, float, dict | None, list[float]]:
    """(small requests' results, elapsed s, the large request's result, the server's RSS samples in MiB)"""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    results: list[dict] = []
    memory: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients + 1)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s),
                                     headers=headers) as session:
        sampler = asyncio.get_running_loop().create_task(sample_memory(server_pid, memory))
        started = time.perf_counter()
        large = (asyncio.get_running_loop().create_task(large_request(session, port, large_prompt_mb, duration_s / 3))
                 if large_prompt_mb else None)
        await asyncio.gather(*(client(session, url, started + duration_s, max_requests // clients, seed, results)
                               for seed in range(clients)))
        elapsed = time.perf_counter() - started
        large_result = await large if large else None
        sampler.cancel()
        return results, elapsed, large_result, memory


async def wait_until_healthy(port: int, server: subprocess.Popen, limit_s: float) -> dict:
    deadline = time.perf_counter() + limit_s
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with code {server.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return await response.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit(f"the server was not healthy within {limit_s:.0f} s")


async def health(port: int) -> dict:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/health") as response:
        return await response.json()


# --------------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------------

def percentiles(values) -> dict:
    values = np.array([v for v in values if np.isfinite(v)])
    if len(values) == 0:
        return {}
    return {"p50": float(np.percentile(values, 50)), "p90": float(np.percentile(values, 90)),
            "p99": float(np.percentile(values, 99)), "max": float(values.max())}


def summarise(results: list[dict], elapsed_s: float, server_health: dict, settings: dict, large: dict | None,
              memory: list[float], memory_before: float, memory_after: float) -> dict:
    errors: dict[str, int] = {}
    for result in results:
        if result["status"] != 200:
            errors[str(result["status"])] = errors.get(str(result["status"]), 0) + 1
    routed = [r for r in results if r["routed"] and r["status"] == 200]
    during_large = {}
    if large is not None:
        end = large["started"] + large["latency_ms"] / 1000
        overlapping = [r for r in routed
                       if r["started"] < end and r["started"] + r["latency_ms"] / 1000 > large["started"]]
        during_large = {"large_prompt_status": large["status"], "large_prompt_latency_ms": large["latency_ms"],
                        "routing_overhead_during_large_ms": percentiles(r["routing_ms"] for r in overlapping),
                        "requests_during_large": len(overlapping)}
    return {
        **settings,
        "requests": len(results),
        "elapsed_s": elapsed_s,
        "requests_per_s": len(results) / elapsed_s,
        "errors": sum(errors.values()),
        "errors_by_kind": errors,
        "latency_ms": percentiles(r["latency_ms"] for r in results if r["status"] == 200),
        "routing_overhead_ms": percentiles(r["routing_ms"] for r in routed),
        "bypass_overhead_ms": percentiles(r["routing_ms"] for r in results
                                          if not r["routed"] and r["status"] == 200),
        "streamed_requests": sum(r["stream"] for r in results),
        "mean_routing_batch": server_health["routed_prompts"] / max(1, server_health["routing_batches"]),
        "server_rss_mib": {"before": memory_before, "peak": max(memory, default=memory_before), "after": memory_after},
        **during_large,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Load test of the routing server on loopback.")
    parser.add_argument("--router", help="A trained router folder (default: an untrained router on --backbone).")
    parser.add_argument("--backbone", help="Backbone of the untrained router (default: a 2-layer BERT, width 64).")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration_s", type=float, default=30.0)
    parser.add_argument("--max_requests", type=int, default=200_000, help="Cap on the requests sent in all.")
    parser.add_argument("--upstream_delay_ms", type=float, default=20.0)
    parser.add_argument("--request_timeout_s", type=float, default=30.0)
    parser.add_argument("--auth", choices=("on", "off"), default="on",
                        help="Require an API key at the server, sent by every client (default on).")
    parser.add_argument("--large_prompt_mb", type=float, default=0,
                        help="Also send one /v1/route request with a prompt of this many MiB (default: none).")
    parser.add_argument("--server_args", default="", help="Extra arguments for serve.py, e.g. '--precision fp32'.")
    parser.add_argument("--out", help="Write the summary JSON here too.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="load_test.") as scratch:
        scratch = Path(scratch)
        router = args.router or untrained_router(scratch, args.backbone)
        stub_port, server_port = free_port(), free_port()
        config = yaml.safe_load((REPO / "candidates.example.yaml").read_text())
        for entry in config["candidates"]:
            entry["base_url"] = f"http://127.0.0.1:{stub_port}/v1"
        config["timeout_s"] = args.request_timeout_s
        (scratch / "candidates.yaml").write_text(yaml.safe_dump(config))

        stub = multiprocessing.get_context("spawn").Process(target=run_stub,
                                                            args=(stub_port, args.upstream_delay_ms / 1000))
        stub.start()
        log = open(scratch / "server.log", "w")
        api_key = secrets.token_urlsafe(32) if args.auth == "on" else None
        environment = {key: value for key, value in os.environ.items() if key != "LOOKAHEAD_API_KEY"}
        if api_key:
            environment["LOOKAHEAD_API_KEY"] = api_key
        server = subprocess.Popen([sys.executable, str(REPO / "src" / "serve.py"), "--router", router, "--config",
                                   str(scratch / "candidates.yaml"), "--port", str(server_port),
                                   *shlex.split(args.server_args)],
                                  stdout=log, stderr=subprocess.STDOUT, env=environment)
        try:
            asyncio.run(wait_until_healthy(server_port, server, limit_s=180))
            print(f"load: {args.clients} clients for {args.duration_s:g} s against {router}", flush=True)
            memory_before = resident_mib(server.pid)
            results, elapsed, large, memory = asyncio.run(load(
                server_port, args.clients, args.duration_s, args.max_requests, args.request_timeout_s, api_key,
                args.large_prompt_mb, server.pid))
            summary = summarise(results, elapsed, asyncio.run(health(server_port)), {
                "router": args.router or f"untrained mask_concat on {args.backbone or 'a 2-layer BERT'}",
                "clients": args.clients, "duration_s": args.duration_s, "auth": args.auth,
                "server_args": args.server_args, "large_prompt_mb": args.large_prompt_mb,
                "upstream_delay_ms": args.upstream_delay_ms, "cpus": os.cpu_count()},
                large, memory, memory_before, resident_mib(server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
            stub.terminate()
            stub.join(timeout=30)
            log.close()
            if server.returncode not in (0, -15):
                print((scratch / "server.log").read_text()[-3000:], file=sys.stderr)
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
