"""No single request can starve the others: embeddings are bounded, and `/healthz` answers while the largest are in
flight.

A 700 KB embeddings request with 100,000 inputs used to take 109 s, peak the server at 8.3 GB and keep `/healthz`
from answering for about 90 s. This gateway has the default body limit (8 MiB), so that request reaches the route.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import openai
import orjson
import pytest

from farebox.app import create_app
from farebox.settings import Settings

if TYPE_CHECKING:
    from tests.e2e.conftest import Gateway, ServerThread

MASTER = "fbx_master_bounds-e2e-0123456789"
HEALTHZ_WITHIN_SECONDS = 0.1


@dataclass(frozen=True)
class Roomy:
    """A farebox with the default settings (the default mock models, an 8 MiB body limit) and a key on it."""

    url: str
    secret: str


@pytest.fixture(scope="module")
def roomy(
    tmp_path_factory: pytest.TempPathFactory, port_factory: Callable[[], int], server_thread: type[ServerThread]
) -> Iterator[Roomy]:
    directory = tmp_path_factory.mktemp("roomy")
    port = port_factory()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        patch.delenv("FAREBOX_CONFIG", raising=False)
        for name in Settings.model_fields:
            patch.delenv(f"FAREBOX_{name.upper()}", raising=False)
        app = create_app(Settings(database_url=f"sqlite:///{directory / 'ledger.db'}", port=port), master_key=MASTER)
    url = f"http://127.0.0.1:{port}"
    with server_thread(app, port):
        admin = {"authorization": f"Bearer {MASTER}"}
        account = httpx.post(f"{url}/api/admin/accounts", json={"name": "roomy"}, headers=admin).json()
        key = httpx.post(
            f"{url}/api/admin/virtual-keys", json={"account_id": account["id"], "name": "k"}, headers=admin
        )
        yield Roomy(url, key.json()["key"])


@dataclass
class HealthProbe:
    """`GET /healthz` from a client of its own, over and over, each answer's wait kept."""

    url: str
    waits: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            client.get("/healthz")  # the connection is open before the first measured probe
            while not self._stop.is_set():
                started = time.perf_counter()
                answer = client.get("/healthz")
                self.waits.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    self.failures.append(answer.text)
                time.sleep(0.005)

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        while not self.waits:
            time.sleep(0.001)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass(frozen=True)
class Answer:
    status: int
    size: int
    """Bytes received, headers included."""
    start: bytes
    """The first bytes received (a small answer whole)."""


def _post(url: str, secret: str, body: dict[str, Any]) -> Answer:
    """POST an embeddings request on a plain socket and count its answer's bytes, keeping only the first ones.

    A plain socket and one `orjson.dumps`, so that sending 700 KB and reading 68 MB cost this process (which also
    runs the gateway, and shares its interpreter lock) next to nothing: an SDK would transform 100,000 inputs
    and parse 2048 vectors in Python while the probe measures.
    """
    payload = orjson.dumps(body)
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST /v1/embeddings HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {secret}\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(head.encode() + payload)
        start = b""
        while b"\r\n\r\n" not in start or len(start) < 4096:
            chunk = connection.recv(65536)
            if not chunk:
                break
            start += chunk
        size = len(start)
        while chunk := connection.recv(1 << 20):
            size += len(chunk)
    return Answer(int(start.split(b" ", 2)[1]), size, start)


@pytest.fixture
def server_like_collector() -> Iterator[None]:
    """The collector as `farebox serve` sets it: what was loaded before serving frozen out of full collections.

    This process also holds pytest's and every SDK's objects, which a gateway process does not; a full
    collection walking them would be this harness's pause, not the gateway's.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("server_like_collector")
def test_healthz_answers_while_the_largest_embeddings_requests_are_refused_or_served(roomy: Roomy) -> None:
    _post(roomy.url, roomy.secret, {"model": "text-embedding-3-small", "input": "warm"})  # builds the vocabulary, once
    oversized = {"model": "text-embedding-3-small", "input": ["a"] * 100_000}  # ~700 KB, as in the report
    largest = {"model": "text-embedding-3-small", "input": [f"text {index}" for index in range(2048)]}
    with HealthProbe(roomy.url) as probe:
        started = len(probe.waits)
        refused = _post(roomy.url, roomy.secret, oversized)
        served = _post(roomy.url, roomy.secret, largest)  # 2048 vectors of 1536 values: ~68 MB
        during = probe.waits[started:]
    error = orjson.loads(refused.start.partition(b"\r\n\r\n")[2])["error"]
    assert refused.status == 400 and error["code"] == "array_above_max_length", error
    assert "Expected an array with maximum length 2048, but got an array with length 100000" in error["message"]
    assert served.status == 200 and served.size > 60_000_000
    assert probe.failures == []
    assert len(during) >= 5, "the probe did not run while the requests were in flight"
    assert max(during) < HEALTHZ_WITHIN_SECONDS, f"/healthz waited {max(during) * 1000:.0f} ms"


def test_an_input_over_its_token_bound_is_refused_before_it_is_forwarded(gateway: Gateway) -> None:
    secret, key = gateway.new_key()
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)
    with pytest.raises(openai.BadRequestError, match=r"Invalid 'input\[1\]': maximum context length is 8192 tokens"):
        client.embeddings.create(model="text-embedding-3-small", input=["fine", " hello" * 8193])
    with pytest.raises(openai.BadRequestError, match="array too long"):
        client.embeddings.create(model="text-embedding-3-small", input=[[1]] * 2049)
    assert gateway.events_of(key["id"]) == []  # refused before anything was reserved or recorded


def test_the_tokens_of_a_whole_request_are_bounded(roomy: Roomy) -> None:
    client = openai.OpenAI(base_url=f"{roomy.url}/v1", api_key=roomy.secret, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="Requested 301056 tokens, max 300000 tokens per request"):
        client.embeddings.create(model="text-embedding-3-small", input=[[7] * 8192] * 36 + [[7] * 6144])
