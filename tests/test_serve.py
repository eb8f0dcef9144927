"""The routing server over loopback: a stub OpenAI-compatible upstream and the router server, both real HTTP
servers on 127.0.0.1 (ephemeral ports), driven by an HTTP client."""
import asyncio
import contextlib
import json
import socket

import aiohttp
import numpy as np
import pytest
from aiohttp import web

import cost
import serve
from routers.pretrained import PretrainedRouter, save_untrained_router
from test_pretrained_router import CANDIDATES, save_tiny_bert
from utils.io import DataError

PROMPTS = ["sort a list of numbers", "parse this string and count its words", "print the tree", "hi"]
TIMEOUT_S = 0.5
PRICES = {"A": cost.Price(1.0, 1.0), "B": cost.Price(1.0, 10.0)}  # B's answers cost 10x more


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


async def start(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoints(stub_port: int, priced: bool = True) -> dict[str, serve.Endpoint]:
    stub = f"http://127.0.0.1:{stub_port}/v1"
    return {
        "A": serve.Endpoint("A", stub, "model-a", "secret-a", PRICES["A"] if priced else None, None),
        "B": serve.Endpoint("B", stub, "model-b", None, PRICES["B"] if priced else None, None),
        "Down": serve.Endpoint("Down", f"http://127.0.0.1:{closed_port()}/v1", "model-down", None, None, None),
    }


@contextlib.asynccontextmanager
async def serving(router, priced: bool = True):
    """(client of the router server, the stub, the RoutingServer)"""
    stub = StubCandidates()
    stub_runner, stub_port = await start(stub.app())
    server = serve.RoutingServer(router, serve.ServeConfig(endpoints(stub_port, priced), timeout_s=TIMEOUT_S))
    runner, port = await start(server.app())
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
            yield client, stub, server
    finally:
        await runner.cleanup()
        await stub_runner.cleanup()


async def post(client, path: str, body=None, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    async with client.post(path, data=data, headers={"Content-Type": "application/json"}) as response:
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
        async with serving(router) as (client, stub, server):
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
        async with serving(router) as (client, _, _):
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
        async with serving(router) as (client, stub, server):
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
        async with serving(router) as (client, _, _):
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
        async with serving(router) as (client, _, _):
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
        async with serving(router) as (client, stub, _):
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            got_status, _, answer = await post(client, "/v1/chat/completions", raw=raw)
            assert got_status == status and message in error_of(answer)["message"]
            assert error_of(answer)["type"] == "invalid_request_error" and stub.requests == []

    asyncio.run(scenario())


def test_wrong_paths_methods_sizes_and_missing_prices_get_json_errors(router):
    async def scenario():
        async with serving(router) as (client, _, _):
            async with client.get("/v1/chat/completions") as response:
                assert response.status == 405 and error_of(await response.json())["code"] == "method_not_allowed"
            async with client.get("/v2/nothing") as response:
                assert response.status == 404 and error_of(await response.json())["code"] == "not_found"
            status, _, body = await post(client, "/v1/chat/completions",
                                         chat("x" * (serve.MAX_BODY_BYTES + 1)))
            assert status == 413 and error_of(body)["type"] == "invalid_request_error"
            status, _, body = await post(client, "/v1/route", {"model": "router-lookahead"})
            assert status == 400 and "Give 'messages'" in error_of(body)["message"]
        async with serving(router, priced=False) as (client, _, _):
            status, _, body = await post(client, "/v1/chat/completions", chat("hi", willingness_to_pay=2))
            assert status == 400 and "needs the candidates' prices" in error_of(body)["message"]

    asyncio.run(scenario())


def test_models_health_and_batching_under_concurrency(router):
    expected = router.decide(PROMPTS * 10).chosen()

    async def scenario():
        async with serving(router) as (client, _, server):
            async with client.get("/v1/models") as response:
                ids = [model["id"] for model in (await response.json())["data"]]
            assert ids == ["router-lookahead", "A", "B", "Down"]
            answers = await asyncio.gather(*(post(client, "/v1/chat/completions", chat(prompt))
                                             for prompt in PROMPTS * 10))
            assert [headers["X-Lookahead-Candidate"] for _, headers, _ in answers] == expected
            assert all(status == 200 for status, _, _ in answers)
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
    assert config.endpoints["A"] == serve.Endpoint("A", "http://127.0.0.1:9/v1", "A", "k", cost.Price(1, 1), 50.0)
    assert config.endpoints["B"].model == "upstream-b" and config.endpoints["B"].headers() == {}

    # The router's saved policy, with the config's prices; B's typical output comes from the calibration.
    saved = cost.RoutingPolicy(CANDIDATES, willingness_to_pay=3.0, prices=[cost.Price(1, 1), cost.Price(1, 10)],
                               typical_output_tokens=[70.0, 80.0])
    router.policy = saved
    try:
        policy = serve.serving_policy(router, config)
        assert (policy.willingness_to_pay, policy.typical_output_tokens) == (3.0, [50.0, 80.0])
        config.willingness_to_pay = 0.5  # the config's lambda wins
        assert serve.serving_policy(router, config).willingness_to_pay == 0.5
    finally:
        router.policy = cost.RoutingPolicy(CANDIDATES)
    del config.endpoints["B"]
    with pytest.raises(DataError, match=r"no entry for the router's candidate\(s\) \['B'\]"):
        serve.serving_policy(router, config)

    path.write_text("candidates:\n  - {name: A, base_url: 'ftp://x'}\n")
    with pytest.raises(DataError, match="'base_url' must be an http"):
        serve.ServeConfig.from_file(path)
    path.write_text("router_model: A\ncandidates:\n  - {name: A, base_url: 'http://x/v1'}\n")
    with pytest.raises(DataError, match="'router_model' must be a name that no candidate has"):
        serve.ServeConfig.from_file(path)
