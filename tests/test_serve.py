"""The routing server over loopback: a stub OpenAI-compatible upstream and the router server, both real HTTP
servers on 127.0.0.1 (ephemeral ports), driven by an HTTP client."""
import asyncio
import contextlib
import json
import socket
import time

import aiohttp
import numpy as np
import pytest
from aiohttp import web

import candidates
import serve
from routers import policy as routing_policy
from routers.pretrained import PretrainedRouter
from trainers import save_untrained_router
from test_pretrained_router import CANDIDATES, save_tiny_bert
from utils.io import DataError

PROMPTS = ["sort a list of numbers", "parse this string and count its words", "print the tree", "hi"]
TIMEOUT_S = 0.5  # the upstream timeout of the test that makes the stub hang
UPSTREAM_TIMEOUT_S = 30.0  # every other test's: one event loop runs client, server and stub, slow on a loaded CPU
PRICES = {"A": candidates.Price(1.0, 1.0), "B": candidates.Price(1.0, 10.0)}  # B's answers cost 10x more


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    root = tmp_path_factory.mktemp("router")
    folder = save_untrained_router(root / "sc", "sc", save_tiny_bert(root / "bert"), CANDIDATES, max_length=18)
    return PretrainedRouter.from_pretrained(folder)


def sse(payload) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


class StubCandidates:
    """An OpenAI-compatible upstream for every candidate; the last user message picks the behaviour: "fail <status>"
    answers that status, "hang" sends nothing for 5 s, "break" streams one chunk and then nothing; anything else
    is answered "echo: <upstream model> <message>" (streamed: one chunk per word, then [DONE])."""

    def __init__(self):
        self.requests = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def chat(self, request):
        body = await request.json()
        self.requests.append((request.headers.get("Authorization"), body))
        text = body["messages"][-1]["content"]
        if text.startswith("fail "):
            status = int(text.split()[1])
            return web.json_response({"error": {"message": f"stub failure {status}", "type": "stub"}}, status=status)
        if text == "hang":
            await asyncio.sleep(5)
        words = ["echo:", body["model"], text]
        if not body.get("stream"):
            return web.json_response({"object": "chat.completion", "model": body["model"], "choices": [
                {"index": 0, "message": {"role": "assistant", "content": " ".join(words)}, "finish_reason": "stop"}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in words:
            await response.write(sse({"object": "chat.completion.chunk", "choices": [{"delta": {"content": word}}]}))
            if text == "break":
                await asyncio.sleep(5)
        await response.write(b"data: [DONE]\n\n")
        return response


async def start(app: web.Application, **options) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, shutdown_timeout=0.2, **options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoints(stub_port: int, priced: bool = True, caps: dict | None = None) -> dict[str, serve.Endpoint]:
    """Candidates A and B (router candidates) and Down (reachable by name only) on the stub; ``caps`` maps a name to
    its (max_tokens_cap, n_cap)."""
    stub = f"http://127.0.0.1:{stub_port}/v1"
    caps = caps or {}
    return {
        "A": serve.Endpoint("A", stub, "model-a", "secret-a", PRICES["A"] if priced else None, None,
                            *caps.get("A", (None, 1))),
        "B": serve.Endpoint("B", stub, "model-b", None, PRICES["B"] if priced else None, None,
                            *caps.get("B", (None, 1))),
        "Down": serve.Endpoint("Down", f"http://127.0.0.1:{closed_port()}/v1", "model-down", None, None, None),
    }


@contextlib.asynccontextmanager
async def serving(router, priced: bool = True, keys: list[str] | None = None, caps: dict | None = None,
                  read_timeout_s: float = serve.DEFAULT_READ_TIMEOUT_S, timeout_s: float = UPSTREAM_TIMEOUT_S):
    """(client of the router server, the stub, the RoutingServer, its port). ``timeout_s``: the upstream timeout
    (a CI run got a 504 among 40 simultaneous requests with 0.5 s)."""
    stub = StubCandidates()
    stub_runner, stub_port = await start(stub.app())
    server = serve.RoutingServer(router, serve.ServeConfig(endpoints(stub_port, priced, caps), timeout_s=timeout_s),
                                 serve.ApiKeys(keys or []), read_timeout_s)
    runner, port = await start(server.app(), **server.runner_options())
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
            yield client, stub, server, port
    finally:
        await runner.cleanup()
        await stub_runner.cleanup()


async def post(client, path: str, body=None, raw: bytes | None = None, headers: dict | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    async with client.post(path, data=data, headers=headers) as response:
        return response.status, response.headers, await response.json(content_type=None)


def chat(prompt: str, model: str = "router-lookahead", **fields) -> dict:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}]
    return {"model": model, "messages": messages, **fields}


def error_of(body: dict) -> dict:
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_routes_each_request_and_forwards_it_to_the_chosen_candidate(router):
    expected = router.decide(PROMPTS).chosen()

    async def scenario():
        async with serving(router) as (client, stub, server, _):
            for prompt, candidate in zip(PROMPTS, expected):
                status, headers, body = await post(client, "/v1/chat/completions", chat(prompt, temperature=0))
                assert status == 200 and headers["X-Lookahead-Candidate"] == candidate
                assert float(headers["X-Lookahead-Routing-Ms"]) >= 0
                upstream_model = {"A": "model-a", "B": "model-b"}[candidate]
                assert body["routed_candidate"] == candidate
                assert body["choices"][0]["message"]["content"] == f"echo: {upstream_model} {prompt}"
                authorization, forwarded = stub.requests[-1]
                assert forwarded == {**chat(prompt, temperature=0), "model": upstream_model}
                assert authorization == ("Bearer secret-a" if candidate == "A" else None)
            assert (server.batcher.prompts, server.batcher.batches) == (4, 4)

            # A high willingness to pay sends everything to the cheaper A; it is not forwarded.
            for prompt in PROMPTS:
                status, headers, _ = await post(client, "/v1/chat/completions",
                                                chat(prompt, willingness_to_pay=1e6))
                assert status == 200 and headers["X-Lookahead-Candidate"] == "A"
                assert "willingness_to_pay" not in stub.requests[-1][1]

    asyncio.run(scenario())


def test_route_endpoint_gives_scores_quality_and_expected_costs(router):
    prompt = PROMPTS[1]
    scores = router.route([prompt])[0]
    tokens = len(prompt) / 4

    async def scenario():
        async with serving(router) as (client, _, _, _):
            status, _, body = await post(client, "/v1/route", {"prompt": prompt})
            assert status == 200 and body["candidates"] == CANDIDATES
            np.testing.assert_allclose(body["scores"], scores, atol=1e-5)
            np.testing.assert_allclose(body["quality"], 1 / (1 + np.exp(-scores)), atol=1e-5)
            # typical output: 500 tokens (the default); A at $1/M in and out, B at $1/M in and $10/M out
            np.testing.assert_allclose(body["expected_costs"], [(tokens + 500) / 1000, (tokens + 5000) / 1000])
            assert body["candidate"] == CANDIDATES[int(np.argmax(scores))]
            status, _, body = await post(client, "/v1/route", {**chat(prompt), "max_tokens": 100,
                                                                 "willingness_to_pay": 1e6})
            tokens_with_system = tokens + len("be brief") / 4  # every message is sent, so every one is paid for
            np.testing.assert_allclose(body["expected_costs"],
                                       [(tokens_with_system + 100) / 1000, (tokens_with_system + 1000) / 1000])
            assert body["candidate"] == "A"

    asyncio.run(scenario())


def test_a_candidate_name_bypasses_the_router(router):
    async def scenario():
        async with serving(router) as (client, stub, server, _):
            status, headers, body = await post(client, "/v1/chat/completions", chat("anything", model="B"))
            assert status == 200 and headers["X-Lookahead-Candidate"] == "B" and body["routed_candidate"] == "B"
            assert stub.requests[-1][1]["model"] == "model-b"
            assert server.batcher.prompts == 0

    asyncio.run(scenario())


async def read_stream(client, body: dict):
    async with client.post("/v1/chat/completions", json=body) as response:
        return response.status, response.headers, (await response.read()).decode()


def test_streaming_passes_the_events_through(router):
    expected = router.decide([PROMPTS[0]]).chosen()[0]

    async def scenario():
        async with serving(router) as (client, _, _, _):
            for body, candidate in ((chat(PROMPTS[0], stream=True), expected),
                                    (chat(PROMPTS[0], model="A", stream=True), "A")):
                status, headers, text = await read_stream(client, body)
                assert status == 200 and headers["X-Lookahead-Candidate"] == candidate
                assert headers["Content-Type"].startswith("text/event-stream")
                events = [line[len("data: "):] for line in text.split("\n\n") if line]
                assert events[-1] == "[DONE]"
                words = [json.loads(event)["choices"][0]["delta"]["content"] for event in events[:-1]]
                assert words == ["echo:", {"A": "model-a", "B": "model-b"}[candidate], PROMPTS[0]]

    asyncio.run(scenario())


def test_upstream_errors_and_timeouts_become_openai_errors(router):
    async def scenario():
        async with serving(router, timeout_s=TIMEOUT_S) as (client, _, _, _):
            status, _, body = await post(client, "/v1/chat/completions", chat("fail 500", model="A"))
            error = error_of(body)
            assert status == 502 and (error["type"], error["code"]) == ("upstream_error", "upstream_http_500")
            assert "'A'" in error["message"] and "stub failure 500" in error["message"]
            status, _, body = await post(client, "/v1/chat/completions", chat("fail 429"))
            assert status == 429 and "stub failure 429" in error_of(body)["message"]
            status, _, body = await post(client, "/v1/chat/completions", chat("fail 400", model="B", stream=True))
            assert status == 400 and error_of(body)["code"] == "upstream_http_400"
            status, _, body = await post(client, "/v1/chat/completions", chat("hang", model="A"))
            assert status == 504 and error_of(body)["type"] == "upstream_timeout"
            assert f"nothing for {TIMEOUT_S:g} s" in error_of(body)["message"]
            status, _, body = await post(client, "/v1/chat/completions", chat("hi", model="Down"))
            assert status == 502 and error_of(body)["code"] == "upstream_unreachable"

            # A stream that stops after its first chunk ends with an error event.
            status, _, text = await read_stream(client, chat("break", model="A", stream=True))
            events = [line[len("data: "):] for line in text.split("\n\n") if line]
            assert status == 200 and json.loads(events[0])["choices"][0]["delta"]["content"] == "echo:"
            assert error_of(json.loads(events[-1]))["type"] == "upstream_timeout" and len(events) == 2

    asyncio.run(scenario())


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    ({"messages": [{"role": "user", "content": "hi"}]}, 400, "'model' must be a non-empty string"),
    ({"model": "router-lookahead", "messages": "hi"}, 400, "'messages' must be a non-empty list"),
    ({"model": "router-lookahead", "messages": [{"content": "hi"}]}, 400, "messages[0] must be an object"),
    ({"model": "router-lookahead", "messages": [{"role": "system", "content": "x"}]}, 400, "no user message"),
    ({"model": "router-lookahead", "messages": [{"role": "user", "content": 3}]}, 400, "content must be a string"),
    (chat("hi", stream="yes"), 400, "'stream' must be true or false"),
    (chat("hi", willingness_to_pay=-1), 400, "'willingness_to_pay' must be a number >= 0"),
    (chat("hi", max_tokens=0), 400, "'max_tokens' must be an integer >= 1"),
    (chat("hi", model="gpt-9"), 404, "'gpt-9' does not exist"),
])
def test_malformed_chat_requests_get_4xx_json(router, body, status, message):
    async def scenario():
        async with serving(router) as (client, stub, _, _):
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            got_status, _, answer = await post(client, "/v1/chat/completions", raw=raw)
            assert got_status == status and message in error_of(answer)["message"]
            assert error_of(answer)["type"] == "invalid_request_error" and stub.requests == []

    asyncio.run(scenario())


def test_wrong_paths_methods_sizes_and_missing_prices_get_json_errors(router):
    async def scenario():
        async with serving(router) as (client, _, _, _):
            async with client.get("/v1/chat/completions") as response:
                assert response.status == 405 and error_of(await response.json())["code"] == "method_not_allowed"
            async with client.get("/v2/nothing") as response:
                assert response.status == 404 and error_of(await response.json())["code"] == "not_found"
            status, _, body = await post(client, "/v1/chat/completions",
                                         chat("x" * (serve.MAX_BODY_BYTES + 1)))
            assert status == 413 and error_of(body)["type"] == "invalid_request_error"
            status, _, body = await post(client, "/v1/route", {"model": "router-lookahead"})
            assert status == 400 and "Give 'messages'" in error_of(body)["message"]
        async with serving(router, priced=False) as (client, _, _, _):
            status, _, body = await post(client, "/v1/chat/completions", chat("hi", willingness_to_pay=2))
            assert status == 400 and "needs the candidates' prices" in error_of(body)["message"]

    asyncio.run(scenario())


def test_models_health_and_batching_under_concurrency(router):
    expected = router.decide(PROMPTS * 10).chosen()

    async def scenario():
        async with serving(router) as (client, _, server, _):
            async with client.get("/v1/models") as response:
                ids = [model["id"] for model in (await response.json())["data"]]
            assert ids == ["router-lookahead", "A", "B", "Down"]
            answers = await asyncio.gather(*(post(client, "/v1/chat/completions", chat(prompt))
                                             for prompt in PROMPTS * 10))
            assert [status for status, _, _ in answers] == [200] * len(answers), answers
            assert [headers["X-Lookahead-Candidate"] for _, headers, _ in answers] == expected
            async with client.get("/health") as response:
                health = await response.json()
            assert health["status"] == "ok" and health["candidates"] == CANDIDATES and health["stage"] == "sc"
            assert health["policy"]["rule"] == "willingness_to_pay" and health["policy"]["willingness_to_pay"] == 0
            assert health["routed_prompts"] == 40 and health["routing_batches"] < 40  # queued requests were batched

    asyncio.run(scenario())


def test_config_file_and_serving_policy(router, tmp_path, monkeypatch):
    path = tmp_path / "candidates.yaml"
    path.write_text("router_model: my-router\ntimeout_s: 5\ncandidates:\n"
                    "  - {name: A, base_url: 'http://127.0.0.1:9/v1/', api_key_env: A_KEY,\n"
                    "     input_price_per_million: 1, output_price_per_million: 1, typical_output_tokens: 50}\n"
                    "  - {name: B, base_url: 'http://127.0.0.1:9/v1', model: upstream-b,\n"
                    "     input_price_per_million: 1, output_price_per_million: 10}\n")
    with pytest.raises(DataError, match=r"\$A_KEY, which is not set"):
        serve.ServeConfig.from_file(path)
    monkeypatch.setenv("A_KEY", "k")
    config = serve.ServeConfig.from_file(path)
    assert (config.router_model, config.timeout_s, config.willingness_to_pay) == ("my-router", 5.0, None)
    assert config.endpoints["A"] == serve.Endpoint("A", "http://127.0.0.1:9/v1", "A", "k", candidates.Price(1, 1), 50.0)
    assert config.endpoints["B"].model == "upstream-b" and config.endpoints["B"].headers() == {}

    # The router's saved policy, with the config's prices; B's typical output comes from the calibration.
    saved = routing_policy.RoutingPolicy(CANDIDATES, willingness_to_pay=3.0,
                                         prices=[candidates.Price(1, 1), candidates.Price(1, 10)],
                                         typical_output_tokens=[70.0, 80.0])
    router.policy = saved
    try:
        policy = serve.serving_policy(router, config)
        assert (policy.willingness_to_pay, policy.typical_output_tokens) == (3.0, [50.0, 80.0])
        config.willingness_to_pay = 0.5  # the config's lambda wins
        assert serve.serving_policy(router, config).willingness_to_pay == 0.5
    finally:
        router.policy = routing_policy.RoutingPolicy(CANDIDATES)
    del config.endpoints["B"]
    with pytest.raises(DataError, match=r"no entry for the router's candidate\(s\) \['B'\]"):
        serve.serving_policy(router, config)

    path.write_text("candidates:\n  - {name: A, base_url: 'ftp://x'}\n")
    with pytest.raises(DataError, match="'base_url' must be an http"):
        serve.ServeConfig.from_file(path)
    path.write_text("router_model: A\ncandidates:\n  - {name: A, base_url: 'http://x/v1'}\n")
    with pytest.raises(DataError, match="'router_model' must be a name that no candidate has"):
        serve.ServeConfig.from_file(path)


# --------------------------------------------------------------------------------------------------
# Hardening: client keys, bind address, caps, input limits, read timeouts (issue 12)
# --------------------------------------------------------------------------------------------------

KEYS = ["key-one", "key-two"]


def test_api_keys_are_required_on_every_path_but_health(router):
    async def scenario():
        async with serving(router, keys=KEYS) as (client, stub, _, _):
            for headers, code in (({}, None), ({"Authorization": "Bearer wrong"}, "invalid_api_key"),
                                  ({"Authorization": "Basic key-one"}, None), ({"Authorization": "Bearer "}, None),
                                  ({"Authorization": "key-one"}, None)):
                status, answer_headers, body = await post(client, "/v1/chat/completions", chat("hi", model="A"),
                                                          headers=headers)
                error = error_of(body)
                assert (status, error["type"], error["code"]) == (401, "invalid_request_error", code), headers
                assert answer_headers["WWW-Authenticate"].startswith("Bearer")
            for method, path in (("GET", "/v1/models"), ("POST", "/v1/route"), ("GET", "/v2/nothing")):
                async with client.request(method, path) as response:
                    assert response.status == 401, path
            assert stub.requests == []  # nothing reached a candidate

            async with client.get("/health") as response:  # probes need no key
                assert response.status == 200
            for key in KEYS:
                status, headers, body = await post(client, "/v1/chat/completions", chat("hi", model="A"),
                                                   headers={"Authorization": f"bearer {key}"})
                assert status == 200 and body["routed_candidate"] == "A"
                # The candidate gets its own key from the config, never the client's.
                assert stub.requests[-1][0] == "Bearer secret-a"
        async with serving(router) as (client, _, _, _):  # no keys set: open (the server is then loopback-only)
            status, _, _ = await post(client, "/v1/chat/completions", chat("hi", model="A"))
            assert status == 200

    asyncio.run(scenario())


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    compared = []
    original = serve.hmac.compare_digest

    def spy(a, b):
        compared.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(serve.hmac, "compare_digest", spy)
    keys = serve.ApiKeys(["short", "a much longer key"])
    assert keys.accepts("short") and keys.accepts("a much longer key")
    assert not keys.accepts("shor") and not keys.accepts("") and not keys.accepts("short ")
    # every key is compared every time, as equal-length digests (no early exit, no length leak)
    assert compared == [(32, 32)] * 2 * 5


def test_api_keys_come_from_the_flag_and_the_environment():
    assert serve.api_keys(None, {}).digests == []
    keys = serve.api_keys(["from-flag"], {serve.API_KEY_ENV: "env-1, env-2"})
    assert all(keys.accepts(key) for key in ("from-flag", "env-1", "env-2")) and not keys.accepts("env-1, env-2")
    for flags, environment in (([""], {}), (None, {serve.API_KEY_ENV: ""}), (None, {serve.API_KEY_ENV: "a,,b"})):
        with pytest.raises(ValueError, match="An API key is empty"):
            serve.api_keys(flags, environment)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
                                            ("10.1.2.3", False), ("192.168.0.1", False)])
def test_loopback_addresses(host, loopback):
    assert serve.is_loopback(host) is loopback


def test_a_public_address_without_a_key_is_refused_unless_explicitly_allowed(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(serve.API_KEY_ENV, raising=False)
    missing = ["--router", str(tmp_path / "no-router"), "--config", str(tmp_path / "no-config.yaml")]
    with pytest.raises(SystemExit) as exit_info:
        serve.main(missing + ["--host", "0.0.0.0"])
    assert exit_info.value.code == 2
    assert "--host 0.0.0.0 is not a loopback address and no API key is set" in capsys.readouterr().err
    # The check passes (and the next one, the missing config, fails) with a key, with the flag, or on loopback.
    for extra, environment in ((["--host", "0.0.0.0", "--allow_unauthenticated_remote_access"], None),
                               (["--host", "0.0.0.0", "--api_key", "k"], None),
                               (["--host", "0.0.0.0"], "k"), (["--host", "127.0.0.1"], None), ([], None)):
        if environment:
            monkeypatch.setenv(serve.API_KEY_ENV, environment)
        with pytest.raises(DataError, match="candidates config not found"):
            serve.main(missing + extra)
        monkeypatch.delenv(serve.API_KEY_ENV, raising=False)
    with pytest.raises(SystemExit):
        serve.main(missing + ["--read_timeout_s", "0"])


CAPS = {"A": (100, 2), "B": (50, 1)}


def test_caps_on_max_tokens_and_n_per_candidate(router):
    chosen = router.decide(["hi"]).chosen()[0]

    async def scenario():
        async with serving(router, caps=CAPS) as (client, stub, _, _):
            # Named candidate A: its own caps (100 tokens, 2 choices).
            for fields, field in (({"max_tokens": 101}, "max_tokens"), ({"max_completion_tokens": 1_000_000},
                                                                         "max_completion_tokens"), ({"n": 3}, "n")):
                status, _, body = await post(client, "/v1/chat/completions", chat("hi", model="A", **fields))
                error = error_of(body)
                assert (status, error["param"], error["code"]) == (400, field, "above_cap")
                assert "of candidate 'A'" in error["message"]
            assert stub.requests == []
            status, _, _ = await post(client, "/v1/chat/completions", chat("hi", model="A", max_tokens=100, n=2))
            assert status == 200 and (stub.requests[-1][1]["max_tokens"], stub.requests[-1][1]["n"]) == (100, 2)
            # No limit asked: the upstream is asked for the cap.
            status, _, _ = await post(client, "/v1/chat/completions", chat("hi", model="A"))
            assert status == 200 and stub.requests[-1][1]["max_tokens"] == 100
            status, _, _ = await post(client, "/v1/chat/completions", chat("hi", model="B", max_completion_tokens=None))
            assert status == 200 and stub.requests[-1][1]["max_tokens"] == 50
            assert "max_completion_tokens" not in stub.requests[-1][1]
            # Routed: the smallest caps of the router's candidates A and B (50 tokens, 1 choice), whoever is chosen.
            sent = len(stub.requests)
            for fields, field in (({"max_tokens": 51}, "max_tokens"), ({"n": 2}, "n")):
                status, _, body = await post(client, "/v1/chat/completions", chat("hi", **fields))
                assert status == 400 and error_of(body)["param"] == field
                assert "smallest" in error_of(body)["message"] and "'B'" in error_of(body)["message"]
            assert len(stub.requests) == sent
            status, headers, _ = await post(client, "/v1/chat/completions", chat("hi", max_tokens=50))
            assert status == 200 and stub.requests[-1][1]["max_tokens"] == 50
            status, headers, _ = await post(client, "/v1/chat/completions", chat("hi"))
            assert status == 200 and headers["X-Lookahead-Candidate"] == chosen
            assert stub.requests[-1][1]["max_tokens"] == CAPS[chosen][0]
        async with serving(router) as (client, stub, _, _):  # no caps: n defaults to 1, tokens uncapped
            status, _, _ = await post(client, "/v1/chat/completions", chat("hi", model="A", n=2))
            assert status == 400
            status, _, _ = await post(client, "/v1/chat/completions", chat("hi", model="A", max_tokens=10 ** 6))
            assert status == 200 and stub.requests[-1][1]["max_tokens"] == 10 ** 6

    asyncio.run(scenario())


def test_config_caps(tmp_path):
    path = tmp_path / "candidates.yaml"
    path.write_text("candidates:\n  - {name: A, base_url: 'http://x/v1', max_tokens_cap: 4096, n_cap: 4}\n"
                    "  - {name: B, base_url: 'http://x/v1'}\n")
    config = serve.ServeConfig.from_file(path)
    assert (config.endpoints["A"].max_tokens_cap, config.endpoints["A"].n_cap) == (4096, 4)
    assert (config.endpoints["B"].max_tokens_cap, config.endpoints["B"].n_cap) == (None, 1)
    for bad in ("max_tokens_cap: 0", "n_cap: 2.5", "max_tokens_cap: true", "n_cap: '3'"):
        path.write_text(f"candidates:\n  - {{name: A, base_url: 'http://x/v1', {bad}}}\n")
        with pytest.raises(DataError, match=rf"candidate 'A': field '{bad.split(':')[0]}' must be an integer >= 1"):
            serve.ServeConfig.from_file(path)


@pytest.mark.parametrize("raw, message", [
    (b'{"model": "A", "messages": [], "willingness_to_pay": NaN}', "NaN is not a number in JSON"),
    (b'{"model": "A", "messages": [], "willingness_to_pay": Infinity}', "Infinity is not a number in JSON"),
    (b'{"model": "A", "messages": [], "willingness_to_pay": -Infinity}', "-Infinity is not a number in JSON"),
    (b'{"model": "A", "messages": [], "willingness_to_pay": 1e999}', "1e999 is beyond the range of a double"),
    (b'{"model": "A", "messages": [], "temperature": -1E+400}', "-1E+400 is beyond the range of a double"),
    (b'{"model": "router-lookahead", "messages": [{"role": "user", "content": "hi"}], "willingness_to_pay": 1'
     + b"0" * 400 + b"}", "'willingness_to_pay' must be a number >= 0"),
    (b'{"model": "A", "messages": []}\xff', "not UTF-8"),
    (b"[" * 200_000 + b"]" * 200_000, "nests arrays and objects 200000 deep; at most 64"),
    (b'{"model": "A", "messages": [{"role": "user", "content": "hi"}], "metadata": ' + b"[" * 64 + b"]" * 64 + b"}",
     "65 deep"),
])
def test_non_finite_numbers_and_deep_nesting_get_400(router, raw, message):
    async def scenario():
        async with serving(router) as (client, stub, _, _):
            for path in ("/v1/chat/completions", "/v1/route"):
                status, _, body = await post(client, path, raw=raw)
                assert status == 400 and message in error_of(body)["message"], (path, body)
            assert stub.requests == []

    asyncio.run(scenario())


def reference_depth(value) -> int:
    """Nesting depth of a parsed JSON value, by definition (a scalar is 0 deep)."""
    if isinstance(value, dict):
        return 1 + max(map(reference_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(reference_depth, value), default=0)
    return 0


def test_json_depth_matches_the_definition_on_tricky_strings():
    rng = np.random.default_rng(0)
    pieces = ['[', ']', '{', '}', '"', '\\', '\\"', '\\\\', 'a', ' ', '\u00e9', '\n']

    def value(depth: int):
        kind = rng.integers(4) if depth < 6 else 3
        if kind == 0:
            return [value(depth + 1) for _ in range(rng.integers(3))]
        if kind == 1:
            return {"".join(rng.choice(pieces, 3)): value(depth + 1) for _ in range(rng.integers(3))}
        return "".join(rng.choice(pieces, rng.integers(6))) if kind == 3 else 1.5

    for _ in range(300):
        document = value(0)
        for text in (json.dumps(document), json.dumps(document, ensure_ascii=False, indent=1)):
            assert serve.json_depth(text.encode()) == reference_depth(document), text
    assert serve.json_depth(b'{"a": "[[[\\"[[", "b": [[]]}') == 3
    assert serve.json_depth(b'"\\\\" [[') == 2  # an escaped backslash does not escape the closing quote


def test_a_system_only_request_naming_a_candidate_is_forwarded_as_it_is(router):
    body = {"model": "A", "messages": [{"role": "system", "content": "you are terse"}], "temperature": 0.5}

    async def scenario():
        async with serving(router) as (client, stub, server, _):
            status, headers, answer = await post(client, "/v1/chat/completions", body)
            assert status == 200 and headers["X-Lookahead-Candidate"] == "A"
            assert stub.requests[-1][1] == {**body, "model": "model-a"}
            assert server.batcher.prompts == 0
            status, _, answer = await post(client, "/v1/chat/completions", {**body, "model": "router-lookahead"})
            assert status == 400 and "no user message" in error_of(answer)["message"]

    asyncio.run(scenario())


def test_content_given_as_parts_is_routed_on_its_text(router):
    text = "sort a list of numbers"
    assert not np.allclose(router.route([text]), router.route([""]))  # so routing on "" would be told apart
    parts = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
             {"type": "text", "text": "sort a list"}, {"type": "text", "text": "of numbers"}]
    expected = router.route(["sort a list\nof numbers"])[0]

    async def scenario():
        async with serving(router) as (client, _, _, _):
            status, _, body = await post(client, "/v1/route", {"messages": [{"role": "user", "content": parts}]})
            assert status == 200
            np.testing.assert_allclose(body["scores"], expected, atol=1e-6)
            assert not np.allclose(body["scores"], router.route([""])[0])

    asyncio.run(scenario())


def test_a_huge_prompt_is_cut_to_the_router_length_before_tokenisation(router):
    huge = "count the words of this sentence " * 500_000  # 16.5 million characters (15.7 MiB)
    seen = []
    tokenize = router.collator.tokenize

    def spy(texts, *args, **kwargs):
        seen.extend(len(text) for text in texts)
        return tokenize(texts, *args, **kwargs)

    router.collator.tokenize = spy
    try:
        expected = router.route([huge[:router.prompt_chars]])[0]
        seen.clear()

        async def scenario():
            async with serving(router) as (client, _, _, _):
                status, _, body = await post(client, "/v1/route", {"prompt": huge[:15 * 2 ** 20]})
                assert status == 200
                np.testing.assert_allclose(body["scores"], expected, atol=1e-6)

        asyncio.run(scenario())
    finally:
        router.collator.tokenize = tokenize
    assert seen == [router.prompt_chars] == [16 * 32]  # 16 prompt tokens (max_length 18 - [CLS], [SEP]) x 32


async def stalled_exchange(port: int, sent: bytes, limit_s: float) -> tuple[bytes, float]:
    """Send ``sent`` on a raw connection and then nothing: what the server answers until it closes the connection,
    and after how long (reading stops after ``limit_s``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    writer.write(sent)
    await writer.drain()
    received = b""
    try:
        async with asyncio_timeout(limit_s):
            while chunk := await reader.read(65536):
                received += chunk
    finally:
        writer.close()
    return received, time.perf_counter() - started


def asyncio_timeout(seconds: float):
    return asyncio.timeout(seconds) if hasattr(asyncio, "timeout") else _wait_for_timeout(seconds)


@contextlib.asynccontextmanager
async def _wait_for_timeout(seconds: float):  # Python 3.10
    task = asyncio.current_task()
    handle = asyncio.get_running_loop().call_later(seconds, task.cancel)
    try:
        yield
    except asyncio.CancelledError:
        raise asyncio.TimeoutError from None
    finally:
        handle.cancel()


def test_clients_stalling_mid_body_or_mid_headers_are_dropped(router):
    headers = (b"POST /v1/route HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer key-one\r\n")

    async def scenario():
        async with serving(router, keys=KEYS, read_timeout_s=0.5) as (_, _, _, port):
            # Mid-body: 12 of 100 bytes, then nothing -> 408, and the connection is closed.
            received, seconds = await stalled_exchange(port, headers + b"Content-Length: 100\r\n\r\n" + b'{"prompt": ',
                                                       limit_s=10)
            assert received.startswith(b"HTTP/1.1 408 ") and b'"request_timeout"' in received
            assert seconds < 5
            # Mid-headers: the connection is closed without an answer.
            received, seconds = await stalled_exchange(port, headers[:40], limit_s=10)
            assert received == b"" and seconds < 5
            # An idle connection that never sends anything is closed too.
            received, seconds = await stalled_exchange(port, b"", limit_s=10)
            assert received == b"" and seconds < 5

    asyncio.run(scenario())


def test_health_shows_no_filesystem_path(router):
    async def scenario():
        async with serving(router) as (client, _, _, _):
            async with client.get("/health") as response:
                text = await response.text()
            assert response.status == 200 and json.loads(text)["status"] == "ok"
            assert str(router.folder) not in text and "/" not in text  # no path, not even a relative one

    asyncio.run(scenario())
