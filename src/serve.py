"""OpenAI-compatible routing server: routes each chat request to a candidate LLM and forwards it there.

    LOOKAHEAD_API_KEY=<key> python src/serve.py --router output/quality/mask_concat_minilm/fold_0 \\
        --config candidates.yaml [--host 127.0.0.1] [--port 8000] [--device cpu] [--torch_threads 1] \\
        [--precision auto] [--read_timeout_s 30]

Endpoints
    POST /v1/chat/completions  OpenAI chat completions, streamed (SSE) or not. ``model`` = the router model
                               name (``router_model`` in the config, default ``router-lookahead``) routes the
                               request; a candidate's name sends it to that candidate directly (bypass: forwarded
                               as it is, whatever its messages, since nothing is routed). The candidate's answer
                               comes back as it sent it, with the headers ``X-Lookahead-Candidate`` (who answered)
                               and ``X-Lookahead-Routing-Ms`` (time from receiving the request to forwarding it); a
                               non-streamed answer also carries ``"routed_candidate"``. An optional
                               ``"willingness_to_pay"`` (lambda >= 0) sets this request's cost trade-off; it is not
                               forwarded.
    POST /v1/route             the routing alone, for ``{"messages": [...]}`` or ``{"prompt": "..."}``: the
                               candidate, and per candidate the router's score, quality estimate and expected cost.
    GET  /v1/models            the router model and the candidates.
    GET  /health               status, stage, candidates, policy and how many prompts / batches were routed (no
                               key needed, for load balancers' probes; nothing about the host's files).

Clients: with API keys set (``--api_key KEY``, repeatable, or the environment variable ``LOOKAHEAD_API_KEY``
holding one key or several separated by commas; the variable keeps keys out of the process list), every request
but ``/health`` needs ``Authorization: Bearer <key>``, as OpenAI's API does; keys are compared in constant time
(SHA-256 digests, ``hmac.compare_digest``) and a missing or wrong key gets 401 in OpenAI's error shape. Without a
key the server listens only on a loopback address (127.0.0.1, ::1, localhost): any other ``--host`` is refused
unless ``--allow_unauthenticated_remote_access`` says that anyone who reaches the port may spend the candidates'
keys. A client has ``--read_timeout_s`` (default 30 s) to send a request's headers (counted from the connection,
or from the previous answer on a kept-alive connection, which is also closed after that long idle) and as long
again for its body; a stalled client gets 408 and its connection is closed.

Request limits: bodies up to 16 MiB, UTF-8; JSON nested more than 64 arrays / objects deep (checked on the raw
bytes, before parsing) and JSON with NaN, Infinity or a number beyond float range (e.g. 1e999) are refused (400).
Per candidate, the config's ``max_tokens_cap`` and ``n_cap`` bound what the candidate is asked for: a request
whose ``max_tokens`` / ``max_completion_tokens`` or ``n`` is above the cap gets 400 naming the cap (it is not
clamped: a silently shortened answer or fewer choices than asked would surprise the client); a request without
``max_tokens`` / ``max_completion_tokens`` is forwarded with ``max_tokens`` = the cap. A routed request is checked
against the smallest caps of the router's candidates (any of them may be chosen), so whether it is accepted does
not depend on the routing.

Routing reads the text of the last user message (routers are trained on single prompts; content given as a list
of parts is read as its text parts), cut to the router's length before tokenisation
(``routers.pretrained``: a prompt of megabytes costs what its first few thousand characters cost). Requests that
arrive together are routed together (``RouteBatcher``): the router runs on one worker thread, and what queued
while it ran forms the next batch, so nothing waits at low load and batches fill up at high load. On CPU the
router uses ``--torch_threads`` threads (default 1): the server's own work needs a core too, and torch's intra-op
threads slow down many-fold when they outnumber the free cores (measured: one tiny-router forward went from 6 ms
to 315 ms with 2 threads on a busy 2-core machine). Raise it on a machine with idle cores. ``--precision``
(``auto``: bf16 on CPUs with AVX512-BF16 / AMX, else fp32; see ``routers.pretrained``) sets the router's dtype.

The policy (``routers.policy.RoutingPolicy``, whose ``decide`` is the routing decision ``PretrainedRouter.decide``
makes too): the config's ``willingness_to_pay`` when set, else the policy calibrated next to the router
(``routing_policy.json``, ``python src/calibrate.py``), else the best quality estimate. Expected costs use the
config's prices and each candidate's typical output tokens (the config's ``typical_output_tokens``, else the
calibration's measurement, else ``routers.policy.DEFAULT_TYPICAL_OUTPUT_TOKENS``), capped by the request's
max_tokens.

Config (YAML; ``candidates.example.yaml`` documents every field): ``router_model``, ``timeout_s`` (the longest
wait for the candidate's next bytes: connection, headers, each streamed chunk; default 60),
``willingness_to_pay``, and per candidate ``name``, ``base_url`` (OpenAI-compatible, e.g.
``http://127.0.0.1:8001/v1``), ``model`` (its name upstream; default: name), ``api_key_env`` (optional: the
environment variable holding its API key, sent as a Bearer token), ``input_price_per_million``,
``output_price_per_million`` (USD), ``typical_output_tokens`` (optional), ``max_tokens_cap`` (optional, an
integer >= 1; default: no cap, the candidate's own limit applies) and ``n_cap`` (an integer >= 1; default 1).
Every router candidate needs an entry; extra entries are candidates reachable by name only.

Errors are OpenAI-style JSON, ``{"error": {"message", "type", "param", "code"}}``: 400 malformed JSON or fields,
401 missing or wrong API key, 404 unknown model or path, 405 wrong method, 408 request not received within
``--read_timeout_s``, 413 body over 16 MiB. Upstream failures: a candidate's 400, 413, 422 or 429 keeps its
status and message, its other failures give 502 ``upstream_error``, an unreachable candidate 502
``upstream_unreachable``, no bytes within timeout_s 504 ``upstream_timeout``. A streamed answer that breaks
after it started ends with one SSE event ``data: {"error": {...}}``.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiohttp
import numpy as np
import torch
from aiohttp import web

from candidates import Price, load_config, nonnegative_number, prices_from_config
from routers.policy import DEFAULT_TYPICAL_OUTPUT_TOKENS, RoutingDecision, RoutingPolicy, estimate_tokens
from routers.pretrained import PRECISIONS, PretrainedRouter
from utils.io import DataError

logger = logging.getLogger("serve")

ROUTER_MODEL = "router-lookahead"
API_KEY_ENV = "LOOKAHEAD_API_KEY"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_READ_TIMEOUT_S = 30.0
DEFAULT_N_CAP = 1
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_UPSTREAM_CONNECTIONS = 1024
MAX_ROUTING_BATCH = 64
PASSED_THROUGH_STATUSES = (400, 413, 422, 429)  # the client's to fix (or to retry later): keep the status


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

class ApiError(Exception):
    """An error answered as OpenAI does: ``{"error": {"message", "type", "param", "code"}}`` with ``status``;
    ``headers`` are added to the answer, and ``close`` closes the connection once it is sent."""

    def __init__(self, status: int, message: str, error_type: str | None = None, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None, close: bool = False):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message,
                               "type": error_type or ("invalid_request_error" if status < 500 else "server_error"),
                               "param": param, "code": code}}
        self.headers = headers
        self.close = close

    def response(self) -> web.Response:
        return web.json_response(self.body, status=self.status, headers=self.headers)


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every error becomes an OpenAI-style JSON body, aiohttp's own (unknown path, wrong method, body too large)
    included."""
    try:
        return await handler(request)
    except ApiError as error:
        response = error.response()
        if error.close:  # send it, then drop the connection at once (no lingering read of a stalled body)
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
        return response
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return ApiError(error.status, f"{error.reason}: {request.method} {request.path}",
                        code=error.reason.lower().replace(" ", "_")).response()
    except Exception as error:  # a bug: answer 500 rather than drop the connection
        logger.exception("%s %s failed", request.method, request.path)
        return ApiError(500, f"internal error: {type(error).__name__}: {error}").response()


class ApiKeys:
    """The keys clients authenticate with, kept as SHA-256 digests and compared in constant time."""

    def __init__(self, keys: list[str]):
        self.digests = [hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest() for key in keys]

    def __bool__(self) -> bool:
        return bool(self.digests)

    def accepts(self, presented: str) -> bool:
        """Whether ``presented`` is one of the keys (every key is compared, so the time says nothing)."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        matches = [hmac.compare_digest(digest, known) for known in self.digests]
        return any(matches)


def api_keys(flag_keys: list[str] | None, environment: dict[str, str]) -> ApiKeys:
    """The client keys of ``--api_key`` (repeatable) and of ``$LOOKAHEAD_API_KEY`` (comma-separated); ValueError
    for an empty one."""
    keys = list(flag_keys or [])
    if API_KEY_ENV in environment:
        keys += [key.strip() for key in environment[API_KEY_ENV].split(",")]
    if any(not key for key in keys):
        raise ValueError(f"An API key is empty (--api_key '' or an empty entry in ${API_KEY_ENV}); give non-empty "
                         f"keys, or unset ${API_KEY_ENV} to serve without keys on loopback.")
    return ApiKeys(keys)


def authentication(keys: ApiKeys):
    """Middleware: every path but /health needs ``Authorization: Bearer <key>`` when ``keys`` are set; checked
    before the body is read."""

    @web.middleware
    async def authenticate(request: web.Request, handler):
        if not keys or request.path == "/health":
            return await handler(request)
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="lookahead-routing"'}
        if scheme.lower() != "bearer" or not presented.strip():
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization "
                                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                           headers=challenge)
        if not keys.accepts(presented.strip()):
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key", headers=challenge)
        return await handler(request)

    return authenticate


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address (False when it does not resolve)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False
    return bool(addresses) and all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def upstream_status_error(endpoint: "Endpoint", status: int, text: str) -> ApiError:
    """The error answered when candidate ``endpoint`` answered ``status`` with body ``text``."""
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text[:500]
    status_out = status if status in PASSED_THROUGH_STATUSES else 502
    return ApiError(status_out, f"candidate {endpoint.name!r} answered HTTP {status}: {message}",
                    error_type="upstream_error", code=f"upstream_http_{status}")


def upstream_failure(endpoint: "Endpoint", error: BaseException, timeout_s: float) -> ApiError:
    """The error answered when the exchange with candidate ``endpoint`` failed with ``error``."""
    if isinstance(error, asyncio.TimeoutError):
        return ApiError(504, f"candidate {endpoint.name!r} sent nothing for {timeout_s:g} s", "upstream_timeout",
                        code="upstream_timeout")
    if isinstance(error, aiohttp.ClientConnectorError):
        return ApiError(502, f"candidate {endpoint.name!r} at {endpoint.base_url} is unreachable: {error}",
                        "upstream_error", code="upstream_unreachable")
    return ApiError(502, f"candidate {endpoint.name!r} failed: {type(error).__name__}: {error}", "upstream_error",
                    code="upstream_error")


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------

@dataclass
class Endpoint:
    """One candidate's OpenAI-compatible endpoint and price."""

    name: str
    base_url: str
    model: str
    api_key: str | None = field(repr=False)  # never printed
    price: Price | None
    typical_output_tokens: float | None
    max_tokens_cap: int | None = None  # None: no cap of ours (the candidate's own limit applies)
    n_cap: int = DEFAULT_N_CAP

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@dataclass
class ServeConfig:
    endpoints: dict[str, Endpoint]
    router_model: str = ROUTER_MODEL
    timeout_s: float = DEFAULT_TIMEOUT_S
    willingness_to_pay: float | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> "ServeConfig":
        """Read the candidates config (see the module docstring); API keys are read from the environment now."""
        config = load_config(path)
        endpoints = {}
        for entry in config["candidates"]:
            name = entry["name"]
            base_url = entry.get("base_url")
            if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
                raise DataError(f"{path}: candidate {name!r}: field 'base_url' must be an http(s) URL of an "
                                f"OpenAI-compatible API (e.g. http://127.0.0.1:8001/v1), got {base_url!r}.")
            model = entry.get("model", name)
            if not isinstance(model, str) or not model:
                raise DataError(f"{path}: candidate {name!r}: field 'model' must be the upstream's model name.")
            api_key_env = entry.get("api_key_env")
            if api_key_env is not None and not os.environ.get(str(api_key_env)):
                raise DataError(f"{path}: candidate {name!r}: field 'api_key_env' names ${api_key_env}, which is not "
                                f"set. Export it, or remove api_key_env for an endpoint without a key.")
            priced = "input_price_per_million" in entry or "output_price_per_million" in entry
            endpoints[name] = Endpoint(
                name, base_url.rstrip("/"), model, os.environ[str(api_key_env)] if api_key_env else None,
                prices_from_config(config, [name], path)[0] if priced else None,
                nonnegative_number(entry, "typical_output_tokens", path),
                positive_integer(entry, "max_tokens_cap", path, None),
                positive_integer(entry, "n_cap", path, DEFAULT_N_CAP))
        router_model = config.get("router_model", ROUTER_MODEL)
        if not isinstance(router_model, str) or not router_model or router_model in endpoints:
            raise DataError(f"{path}: field 'router_model' must be a name that no candidate has, got {router_model!r}.")
        timeout_s = nonnegative_number(config, "timeout_s", path, DEFAULT_TIMEOUT_S)
        if timeout_s == 0:
            raise DataError(f"{path}: field 'timeout_s' must be > 0 (seconds).")
        return cls(endpoints, router_model, timeout_s, nonnegative_number(config, "willingness_to_pay", path))


def positive_integer(entry: dict, field: str, path: str | Path, default: int | None) -> int | None:
    """A candidate's ``entry[field]`` as an integer >= 1 (``default`` when absent); DataError otherwise."""
    value = entry.get(field, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DataError(f"{path}: candidate {entry['name']!r}: field {field!r} must be an integer >= 1, got "
                        f"{value!r}.")
    return value


def serving_policy(router: PretrainedRouter, config: ServeConfig) -> RoutingPolicy:
    """The server's policy for ``router`` (see the module docstring)."""
    missing = [name for name in router.candidates if name not in config.endpoints]
    if missing:
        raise DataError(f"The config has no entry for the router's candidate(s) {missing}; add them under "
                        f"`candidates:` (the router chooses among {router.candidates}).")
    endpoints = [config.endpoints[name] for name in router.candidates]
    saved = router.policy
    prices = [e.price for e in endpoints]
    if None in prices:
        prices = saved.prices
    elif saved.prices is not None and saved.prices != prices:
        logger.warning("%s was calibrated with other prices than the config's; recalibrate (python src/calibrate.py) "
                       "for the config's prices to mean the calibrated budget", router.folder)
    measured = saved.typical_output_tokens or [DEFAULT_TYPICAL_OUTPUT_TOKENS] * len(endpoints)
    typical = [e.typical_output_tokens if e.typical_output_tokens is not None else measured[j]
               for j, e in enumerate(endpoints)]
    if config.willingness_to_pay is not None:
        return RoutingPolicy(router.candidates, willingness_to_pay=config.willingness_to_pay, prices=prices,
                             typical_output_tokens=typical)
    return dataclasses.replace(saved, prices=prices, typical_output_tokens=typical)


# --------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------

@dataclass
class ChatRequest:
    body: dict
    model: str
    stream: bool
    max_output_tokens: int | None      # max_completion_tokens, else max_tokens
    n: int                             # choices asked for
    willingness_to_pay: float | None


JSON_BRACKETS = frozenset(b'[]{}"')
NOT_JSON_BRACKETS = bytes(code for code in range(256) if code not in JSON_BRACKETS)
DEPTH_CHUNK = 1 << 20


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in the UTF-8 JSON text ``raw``, in linear time and without
    recursion: escaped backslashes and escaped quotes are dropped, then every bracket outside a string (after an
    even number of quotes) counts. Exact for valid JSON; for invalid JSON, never below the depth a parser reaches
    before the error."""
    kept = raw.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, NOT_JSON_BRACKETS)
    codes = np.frombuffer(kept, dtype=np.uint8)
    quotes = codes == ord('"')
    brackets = codes[~quotes & ~np.logical_xor.accumulate(quotes)]
    depth = deepest = 0
    for start in range(0, len(brackets), DEPTH_CHUNK):  # chunks bound the memory of the running sum
        chunk = brackets[start:start + DEPTH_CHUNK]
        running = depth + np.cumsum(np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1))
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
    return deepest


def refuse_constant(name: str):
    raise ValueError(f"{name} is not a number in JSON")


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is beyond the range of a double")
    return value


def parse_json_object(raw: bytes) -> dict:
    """The JSON object in the request body ``raw``: UTF-8, at most ``MAX_JSON_DEPTH`` deep, finite numbers only
    (400 otherwise)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"The request body is not UTF-8 ({error}).") from None
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ApiError(400, f"The request body nests arrays and objects {depth} deep; at most {MAX_JSON_DEPTH} "
                            f"levels are accepted.")
    try:
        body = json.loads(text, parse_constant=refuse_constant, parse_float=finite_float)
    except ValueError as error:
        raise ApiError(400, f"The request body is not valid JSON ({error}).") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"The request body must be a JSON object, got {type(body).__name__}.")
    return body


def message_text(content, index: int) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content
                         if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str))
    raise ApiError(400, f"messages[{index}].content must be a string or a list of content parts.",
                   param=f"messages[{index}].content")


def optional_number(body: dict, field: str, kind: type, minimum: float):
    value = body.get(field)
    if value is None:
        return None
    valid = not isinstance(value, bool) and isinstance(value, (int, float) if kind is float else int)
    if valid and kind is float:
        try:
            value = float(value)
        except OverflowError:  # an integer beyond float range
            valid = False
    if not valid or value < minimum:
        raise ApiError(400, f"{field!r} must be {'a number' if kind is float else 'an integer'} >= {minimum}, "
                            f"got {str(value)[:60]}.", param=field)
    return kind(value)


def parse_messages(body: dict) -> tuple[str, float]:
    """(the last user message's text, the estimated input tokens of all messages)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {\"role\", \"content\"} objects.", param="messages")
    texts, prompt = [], None
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ApiError(400, f"messages[{index}] must be an object with a string 'role'.",
                           param=f"messages[{index}]")
        texts.append(message_text(message.get("content"), index))
        if message["role"] == "user":
            prompt = texts[-1]
    if prompt is None:
        raise ApiError(400, "'messages' has no user message to route on (name a candidate as 'model' to send it "
                            "there without routing).", param="messages")
    return prompt, sum(estimate_tokens(text) for text in texts)


def parse_chat_request(body: dict) -> ChatRequest:
    """The fields every chat request is checked for (a routed one's messages are read by ``parse_messages``)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' must be a non-empty string: the router model or a candidate's name.",
                       param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, f"'stream' must be true or false, got {stream!r}.", param="stream")
    max_completion_tokens = optional_number(body, "max_completion_tokens", int, 1)
    max_tokens = optional_number(body, "max_tokens", int, 1)
    return ChatRequest(body, model, stream, max_completion_tokens or max_tokens,
                       optional_number(body, "n", int, 1) or 1, optional_number(body, "willingness_to_pay", float, 0))


def check_caps(chat: ChatRequest, endpoints: list[Endpoint], routed: bool) -> None:
    """400 when ``chat`` asks for more tokens or choices than the caps of ``endpoints`` allow (the candidate
    named, or every candidate the router may choose when ``routed``)."""
    def above(field: str, endpoint: Endpoint, cap: int) -> str:
        if routed:
            return (f"{cap}, the smallest {field} among the router's candidates (candidate {endpoint.name!r}: any of "
                    f"them may be chosen); ask for at most {cap}, or name a candidate as 'model' for its own cap")
        return f"{cap}, the {field} of candidate {endpoint.name!r}"

    capped = [e for e in endpoints if e.max_tokens_cap is not None]
    if capped:
        smallest = min(capped, key=lambda e: e.max_tokens_cap)
        for field in ("max_completion_tokens", "max_tokens"):
            value = chat.body.get(field)
            if value is not None and value > smallest.max_tokens_cap:
                raise ApiError(400, f"{field!r} is {value}, above "
                                    f"{above('max_tokens_cap', smallest, smallest.max_tokens_cap)}.",
                               param=field, code="above_cap")
    smallest = min(endpoints, key=lambda e: e.n_cap)
    if chat.n > smallest.n_cap:
        raise ApiError(400, f"'n' is {chat.n}, above {above('n_cap', smallest, smallest.n_cap)}.", param="n",
                       code="above_cap")


def upstream_payload(chat: ChatRequest, endpoint: Endpoint) -> dict:
    """The request as ``endpoint`` gets it: its model name, without ``willingness_to_pay``, and with
    ``max_tokens`` = its cap when the request sets no limit."""
    payload = {key: value for key, value in chat.body.items() if key != "willingness_to_pay"}
    payload["model"] = endpoint.model
    if endpoint.max_tokens_cap is not None and chat.max_output_tokens is None:
        payload.pop("max_completion_tokens", None)  # absent or null
        payload["max_tokens"] = endpoint.max_tokens_cap
    return payload


# --------------------------------------------------------------------------------------------------
# Routing and forwarding
# --------------------------------------------------------------------------------------------------

class RouteBatcher:
    """Routes prompts in batches on one worker thread: each batch takes what queued while the last one ran."""

    def __init__(self, route: Callable[[list[str]], np.ndarray], max_batch: int = MAX_ROUTING_BATCH):
        self.route = route
        self.max_batch = max_batch
        self.queue: asyncio.Queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router")
        self.worker: asyncio.Task | None = None
        self.prompts = 0
        self.batches = 0

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        self.worker.cancel()
        await asyncio.gather(self.worker, return_exceptions=True)
        self.executor.shutdown(wait=True)

    async def scores(self, prompt: str) -> np.ndarray:
        """The router's k scores for ``prompt``."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((prompt, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                scores = await loop.run_in_executor(self.executor, self.route, [prompt for prompt, _ in batch])
            except Exception as error:  # answered to each waiting request (a 500), the worker goes on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.prompts += len(batch)
            self.batches += 1
            for (_, future), row in zip(batch, scores):
                if not future.done():  # a request whose client left is cancelled
                    future.set_result(row)


class RoutingServer:
    """The server's state (router, config, policy, batcher, upstream session, client keys) and its handlers.
    ``runner_options()`` are the aiohttp server settings it needs (the header timeout)."""

    def __init__(self, router: PretrainedRouter, config: ServeConfig, api_keys: ApiKeys | None = None,
                 read_timeout_s: float = DEFAULT_READ_TIMEOUT_S):
        self.router = router
        self.config = config
        self.policy = serving_policy(router, config)
        self.router_endpoints = [config.endpoints[name] for name in router.candidates]
        self.batcher = RouteBatcher(router.route)
        self.session: aiohttp.ClientSession | None = None
        self.api_keys = api_keys or ApiKeys([])
        self.read_timeout_s = read_timeout_s

    def runner_options(self) -> dict:
        """aiohttp server settings: a client must send a request's headers within ``read_timeout_s`` of connecting
        or of the previous answer (aiohttp's keep-alive timer, which partial headers do not reset)."""
        return {"keepalive_timeout": self.read_timeout_s}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[json_errors, authentication(self.api_keys)],
                              client_max_size=MAX_BODY_BYTES)
        app.on_startup.append(self.start)
        app.on_cleanup.append(self.stop)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/v1/route", self.route)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        return app

    async def start(self, app: web.Application) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.timeout_s, sock_read=self.config.timeout_s)
        self.session = aiohttp.ClientSession(timeout=timeout,
                                             connector=aiohttp.TCPConnector(limit=MAX_UPSTREAM_CONNECTIONS))
        self.batcher.start()

    async def stop(self, app: web.Application) -> None:
        await self.batcher.stop()
        await self.session.close()

    async def decide(self, prompt: str, input_tokens: float, max_output_tokens: int | None,
                     willingness_to_pay: float | None) -> RoutingDecision:
        """The routing of one prompt (batched with the prompts that arrive with it)."""
        policy = self.policy
        if willingness_to_pay is not None:
            try:
                policy = dataclasses.replace(policy, rule="willingness_to_pay", willingness_to_pay=willingness_to_pay)
            except DataError as error:
                raise ApiError(400, f"'willingness_to_pay' cannot be used here: {error}",
                               param="willingness_to_pay") from None
        scores = (await self.batcher.scores(prompt))[None]
        return policy.decide(scores, self.router.score_kind, [input_tokens], max_output_tokens)

    async def read_json_object(self, request: web.Request) -> dict:
        """The request's JSON object (``parse_json_object``); 408 and the connection closed when the body has not
        arrived within ``read_timeout_s``."""
        try:
            raw = await asyncio.wait_for(request.read(), self.read_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(408, f"The request body did not arrive within {self.read_timeout_s:g} s.",
                           code="request_timeout", close=True) from None
        return parse_json_object(raw)

    def endpoint_for(self, model: str) -> Endpoint | None:
        """The candidate named ``model`` (bypass), None for the router model; 404 for anything else."""
        if model == self.config.router_model:
            return None
        if model in self.config.endpoints:
            return self.config.endpoints[model]
        raise ApiError(404, f"The model {model!r} does not exist here: use {self.config.router_model!r} (routed) or "
                            f"a candidate: {', '.join(self.config.endpoints)}.", code="model_not_found", param="model")

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        chat = parse_chat_request(await self.read_json_object(request))
        endpoint = self.endpoint_for(chat.model)
        if endpoint is None:
            prompt, input_tokens = parse_messages(chat.body)
            check_caps(chat, self.router_endpoints, routed=True)
            decision = await self.decide(prompt, input_tokens, chat.max_output_tokens, chat.willingness_to_pay)
            endpoint = self.config.endpoints[decision.chosen()[0]]
        else:
            check_caps(chat, [endpoint], routed=False)
        payload = upstream_payload(chat, endpoint)
        headers = {"X-Lookahead-Candidate": endpoint.name,
                   "X-Lookahead-Routing-Ms": f"{(time.perf_counter() - started) * 1000:.3f}"}
        try:
            async with self.session.post(f"{endpoint.base_url}/chat/completions", json=payload,
                                         headers=endpoint.headers()) as upstream:
                if upstream.status != 200:
                    raise upstream_status_error(endpoint, upstream.status, await upstream.text())
                if chat.stream:
                    return await self.relay_stream(request, upstream, endpoint, headers)
                answer = json.loads(await upstream.read())
        except (asyncio.TimeoutError, aiohttp.ClientError) as error:
            raise upstream_failure(endpoint, error, self.config.timeout_s) from None
        except ValueError:
            raise ApiError(502, f"candidate {endpoint.name!r} answered something that is not JSON.",
                           "upstream_error", code="upstream_invalid_json") from None
        if isinstance(answer, dict):
            answer["routed_candidate"] = endpoint.name
        return web.json_response(answer, headers=headers)

    async def relay_stream(self, request: web.Request, upstream: aiohttp.ClientResponse, endpoint: Endpoint,
                           headers: dict[str, str]) -> web.StreamResponse:
        """Pass the candidate's SSE stream through as it comes; a failure after the start ends it with an error
        event."""
        response = web.StreamResponse(headers={
            **headers, "Content-Type": upstream.headers.get("Content-Type", "text/event-stream"),
            "Cache-Control": "no-cache"})
        await response.prepare(request)
        try:
            while True:
                try:
                    chunk = await upstream.content.readany()
                except (asyncio.TimeoutError, aiohttp.ClientError) as error:
                    body = upstream_failure(endpoint, error, self.config.timeout_s).body
                    await response.write(b"data: " + json.dumps(body).encode() + b"\n\n")
                    break
                if not chunk:
                    break
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            logger.info("client left during a stream from %s", endpoint.name)  # closing upstream stops it too
        return response

    async def route(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        body = await self.read_json_object(request)
        if isinstance(body.get("prompt"), str):
            prompt, input_tokens = body["prompt"], estimate_tokens(body["prompt"])
        elif "messages" in body:
            prompt, input_tokens = parse_messages(body)
        else:
            raise ApiError(400, "Give 'messages' (a chat) or 'prompt' (a string) to route.", param="messages")
        decision = await self.decide(prompt, input_tokens, optional_number(body, "max_tokens", int, 1),
                                     optional_number(body, "willingness_to_pay", float, 0))
        return web.json_response({
            "candidate": decision.chosen()[0], "candidates": self.router.candidates,
            "scores": decision.scores[0].tolist(), "quality": decision.quality[0].tolist(),
            "expected_costs": decision.costs[0].tolist(), "routing_ms": (time.perf_counter() - started) * 1000})

    async def models(self, request: web.Request) -> web.Response:
        data = [{"id": self.config.router_model, "object": "model", "owned_by": "lookahead-routing"}]
        data += [{"id": name, "object": "model", "owned_by": "candidate"} for name in self.config.endpoints]
        return web.json_response({"object": "list", "data": data})

    async def health(self, request: web.Request) -> web.Response:
        policy = {key: value for key, value in self.policy.to_json().items() if key not in ("prices", "calibration")}
        return web.json_response({
            "status": "ok", "stage": self.router.stage, "precision": self.router.precision,
            "router_model": self.config.router_model, "candidates": self.router.candidates, "policy": policy,
            "routed_prompts": self.batcher.prompts, "routing_batches": self.batcher.batches})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible server that routes each request to a candidate.")
    parser.add_argument("--router", required=True, help="A trained router folder (its config.json names the stage).")
    parser.add_argument("--config", required=True, help="Candidates config (see candidates.example.yaml).")
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
    parser.add_argument("--api_key", action="append",
                        help=f"A key clients must send as 'Authorization: Bearer <key>' (repeatable); prefer "
                             f"${API_KEY_ENV} (comma-separated keys), which other users cannot read in the process "
                             f"list.")
    parser.add_argument("--allow_unauthenticated_remote_access", action="store_true",
                        help="Listen on a non-loopback --host without API keys: anyone who reaches the port can "
                             "spend the candidates' API keys.")
    parser.add_argument("--read_timeout_s", type=float, default=DEFAULT_READ_TIMEOUT_S,
                        help=f"Seconds a client has to send a request's headers, and again its body (default "
                             f"{DEFAULT_READ_TIMEOUT_S:g}).")
    parser.add_argument("--device", default="cpu", help="Where the router runs: cpu (default) or cuda.")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="Router dtype: auto (default: bf16 on CPUs with AVX512-BF16 / AMX, else fp32), bf16 "
                             "or fp32.")
    parser.add_argument("--torch_threads", type=int, default=1, help="Torch CPU threads for the router (default 1).")
    args = parser.parse_args(argv)
    try:
        keys = api_keys(args.api_key, os.environ)
    except ValueError as error:
        parser.error(str(error))
    if not keys and not args.allow_unauthenticated_remote_access and not is_loopback(args.host):
        parser.error(f"--host {args.host} is not a loopback address and no API key is set: anyone who reaches the "
                     f"port could spend the candidates' API keys. Set ${API_KEY_ENV} (or --api_key), or pass "
                     f"--allow_unauthenticated_remote_access if that is intended.")
    if not args.read_timeout_s > 0:
        parser.error(f"--read_timeout_s must be > 0 (seconds), got {args.read_timeout_s:g}.")
    torch.set_num_threads(args.torch_threads)
    config = ServeConfig.from_file(args.config)
    router = PretrainedRouter.from_pretrained(args.router, device=args.device, precision=args.precision)
    server = RoutingServer(router, config, keys, args.read_timeout_s)
    uncapped = [name for name, endpoint in config.endpoints.items() if endpoint.max_tokens_cap is None]
    if uncapped:
        logger.warning("no max_tokens_cap for %s: a request may ask them for as many tokens as they allow",
                       ", ".join(uncapped))
    logger.info("routing %s (%s) over %s as model %r; %s; policy %s", args.router, router.precision,
                ", ".join(router.candidates), config.router_model,
                "API keys required" if keys else "no API keys (loopback only)" if is_loopback(args.host)
                else "no API keys, remote access allowed",
                {k: v for k, v in server.policy.to_json().items() if k != "calibration"})
    web.run_app(server.app(), host=args.host, port=args.port, access_log=None, **server.runner_options())


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
