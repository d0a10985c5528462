"""RenderClient against real server processes serving the real tiny trained shot: retries across a
restart, concurrency, broker, CURVE."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
from server_fixtures import SLOW_BACKEND, BrokerProcess, ServerProcess, free_port, shot_models_dir  # noqa: F401

from host_plugin.client import RenderClient, RequestTimeout, ServerError
from host_plugin.protocol import decode_array, encode_array
from render_server.auth import generate_keypair


def test_timeout_then_retry_across_restart(shot_models_dir):  # noqa: F811
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    first = ServerProcess(shot_models_dir, bind=addr)
    client = RenderClient(addr, timeout=1.0, retries=0)
    assert client.ping()["pong"]
    worker_a = client.info()["worker"]
    first.stop()
    t0 = time.perf_counter()
    with pytest.raises(RequestTimeout, match="no reply to 'ping' after 1 tries"):
        client.ping()
    assert 0.9 < time.perf_counter() - t0 < 5.0

    # restart the server on the same port while a request is retrying: the lazy pirate reconnects
    client.retries = 8
    restarted: list[ServerProcess] = []
    threading.Timer(1.5, lambda: restarted.append(ServerProcess(shot_models_dir, bind=addr))).start()
    try:
        info = client.info()
        assert info["worker"] != worker_a and client.reconnects >= 1
        assert decode_array(client.request("labels", model="alpha", frame=1001)["labels"], "l").shape == (32, 32)
    finally:
        time.sleep(2.0)
        for proc in restarted:
            proc.stop()
        client.close()


def test_eight_clients_fifty_requests_each(shot_models_dir):  # noqa: F811
    server = ServerProcess(shot_models_dir, "--workers", "2")
    errors: list[str] = []

    def one_client(k: int) -> None:
        c = RenderClient(server.address, timeout=30, retries=0)
        try:
            model, frames = ("alpha", range(1001, 1006)) if k % 2 == 0 else ("beta", range(1010, 1014))
            frames = list(frames)
            reqs = []
            for j in range(50):
                if j % 5 == 4:
                    reqs.append(("ping", {}))
                else:
                    reqs.append(("labels", {"model": model, "frame": frames[j % len(frames)], "tag": f"{k}-{j}"}))
            for j, reply in enumerate(c.pipeline(reqs, in_flight=6)):
                op, fields = reqs[j]
                if op == "ping":
                    ok = reply.get("pong") is True
                else:
                    labels = decode_array(reply["labels"], "labels")
                    ok = labels.shape == (32, 32) and reply["id"].startswith(c._prefix)
                if not ok:
                    errors.append(f"client {k} request {j}: wrong reply {reply.get('id')}")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"client {k}: {exc}")
        finally:
            c.close()

    threads = [threading.Thread(target=one_client, args=(k,)) for k in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:5]
        c = RenderClient(server.address, timeout=10, retries=0)
        assert set(c.info()["loaded"]) == {"alpha", "beta"}
        c.close()
    finally:
        server.stop()


def test_lru_cache_evicts_by_count(shot_models_dir):  # noqa: F811
    server = ServerProcess(shot_models_dir, "--max-models", "1")
    c = RenderClient(server.address, timeout=10, retries=0)
    try:
        c.load("alpha")
        c.load("beta")
        assert c.info()["loaded"] == ["beta"]
        assert c.labels("alpha", frame=1001).shape == (32, 32)  # reloads transparently
        assert c.info()["loaded"] == ["alpha"]
    finally:
        c.close()
        server.stop()


def test_plate_cache_is_one_budget_for_the_server(shot_models_dir):  # noqa: F811
    """--plate-cache-mb bounds the detail pass's plate rows of all loaded shots together, and info says what
    it holds: renders of two shots under a budget smaller than one frame keep only the two latest entries."""
    server = ServerProcess(shot_models_dir, "--plate-cache-mb", "0.01")
    c = RenderClient(server.address, timeout=30, retries=0)
    try:
        assert c.info()["plate_cache_bytes"] == 0 and c.info()["plate_cache_max_bytes"] == int(0.01 * 2**20)
        sizes = []
        for model in ("alpha", "beta"):
            for frame in (1001, 1003, 1005):
                c.render_frame(model, frame, fmt="raw")
                sizes.append(c.info()["plate_cache_bytes"])
        assert 0 < sizes[0] < sizes[1]  # one frame's rows, then two
        assert max(sizes) == sizes[1]  # never more than the two latest entries, across both shots
    finally:
        c.close()
        server.stop()


def test_a_bad_plate_cache_budget_is_refused_by_name(shot_models_dir):  # noqa: F811
    with pytest.raises(RuntimeError, match="plate cache budget -1.0 MiB"):
        ServerProcess(shot_models_dir, "--plate-cache-mb", "-1")


def test_sigterm_answers_in_flight_requests(shot_models_dir):  # noqa: F811
    server = ServerProcess(shot_models_dir, "--grace", "0.3", backend=SLOW_BACKEND)
    c = RenderClient(server.address, timeout=15, retries=0)
    c.load("slow")
    window = encode_array(np.zeros((3, 32, 32), np.uint8))
    rid = c.submit("render", model="slow", window=window, format="raw")  # 1.5 s render
    time.sleep(0.4)
    server.proc.send_signal(signal.SIGTERM)
    with pytest.raises(ServerError) as err:
        c.result(rid)
    assert err.value.code == "shutting_down"
    assert server.proc.wait(20) == 0
    c.close()


def test_broker_with_two_workers(shot_models_dir):  # noqa: F811
    broker = BrokerProcess()
    workers = [ServerProcess(shot_models_dir, connect=broker.backend) for _ in range(2)]
    clients = [RenderClient(broker.frontend, timeout=20, retries=0) for _ in range(3)]
    try:
        seen: set[str] = set()
        for _ in range(4):
            ids = [(c, c.submit("labels", model="alpha", frame=1002)) for c in clients for _ in range(3)]
            for c, rid in ids:
                reply = c.result(rid)
                assert reply["id"] == rid
                np.testing.assert_array_equal(decode_array(reply["labels"], "l"), _ref_labels(shot_models_dir, 1002))
            seen |= {c.info()["worker"] for c in clients}
        assert len(seen) == 2  # both workers served
    finally:
        for c in clients:
            c.close()
        for w in workers:
            w.stop()
        broker.stop()


def _ref_labels(models, frame):
    from vq_models.runtime import ShotModel

    return ShotModel.load(models / "alpha").label_map(frame)


@pytest.mark.skipif(not __import__("zmq").has("curve"), reason="libzmq without CURVE")
def test_curve_refuses_unauthenticated_clients(shot_models_dir, tmp_path):  # noqa: F811
    allowed = tmp_path / "allowed"
    server_pub, server_sec = generate_keypair(tmp_path / "server", "server")
    client_pub, client_sec = generate_keypair(allowed, "artist")
    _, stranger_sec = generate_keypair(tmp_path / "others", "stranger")
    server = ServerProcess(shot_models_dir, "--curve-secret", str(server_sec), "--curve-clients", str(allowed))
    try:
        good = RenderClient(server.address, timeout=10, retries=0, server_key=server_pub, client_secret=client_sec)
        assert good.ping()["pong"] is True
        plain = RenderClient(server.address, timeout=1.0, retries=0)
        with pytest.raises(RequestTimeout):
            plain.ping()
        stranger = RenderClient(server.address, timeout=1.0, retries=0, server_key=server_pub, client_secret=stranger_sec)
        with pytest.raises(RequestTimeout):
            stranger.ping()
        assert good.labels("alpha", frame=1001).shape == (32, 32)
        for c in (good, plain, stranger):
            c.close()
    finally:
        server.stop()
    assert client_pub.read_text().count("public-key") == 1
