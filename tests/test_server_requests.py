"""Every request type against a real server process on loopback, plus structured errors."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from server_fixtures import backend_factory, server, shot_models_dir  # noqa: F401

from host_plugin.client import RenderClient, ServerError
from render_server.exr import decode_exr_bytes
from render_server.protocol import decode_array, encode_array


@pytest.fixture
def client(server):  # noqa: F811
    c = RenderClient(server.address, timeout=10, retries=0)
    yield c
    c.close()


def test_ping_info_list(client):
    assert client.ping()["pong"] is True
    info = client.info()
    assert info["protocol"] == 1 and info["device"] == "cpu" and info["workers"] == 2
    names = {m["name"] for m in client.list_models()}
    assert {"alpha", "beta", "slow", "broken"} <= names


def test_load_unload_and_memory(client):
    desc = client.load("alpha")
    assert desc["num_codes"] == 16 and desc["frames"][0] == 1001 and desc["label_size"] == 16
    info = client.info()
    assert "alpha" in info["loaded"] and info["memory_bytes"] >= 1 << 20
    assert client.unload("alpha") is True
    assert "alpha" not in client.info()["loaded"]
    assert client.unload("alpha") is False


def test_labels_from_frame_and_image(client, backend_factory, shot_models_dir):  # noqa: F811
    ref = backend_factory(shot_models_dir / "alpha")
    labels = client.labels("alpha", frame=1003)
    np.testing.assert_array_equal(labels, ref.label_map(1003))
    img = np.random.default_rng(0).uniform(0, 1, (40, 56, 3)).astype(np.float32)
    np.testing.assert_array_equal(client.labels("alpha", image=img), ref.labels_from_image(img))


def test_render_frame_exr_matches_in_process(client, backend_factory, shot_models_dir):  # noqa: F811
    ref = backend_factory(shot_models_dir / "beta")
    program = {"version": 1, "edits": [{"op": "replace", "code": 3, "to": 5, "value": 1}]}
    reply = client.render_frame("beta", 2, program=program, feather=2.0)
    img = decode_exr_bytes(reply["exr"])
    expect = ref.render_frame(2, program, feather=2.0)
    # EXR header carries the plate's data window (not the display window) and the plate colour space
    assert img.data_window == (4, 2, 30, 24) and img.display_window == (0, 0, 40, 30)
    assert img.channels == ("R", "G", "B", "A") and reply["colorspace"] == "lin_rec709"
    np.testing.assert_allclose(img.pixels, expect.rgba, atol=1e-3, rtol=1e-3)  # half float
    np.testing.assert_array_equal(decode_array(reply["changed"], "changed").astype(bool), expect.changed)
    assert expect.changed.any()


def test_render_raw_and_uploaded_labels(client, backend_factory, shot_models_dir):  # noqa: F811
    ref = backend_factory(shot_models_dir / "alpha")
    labels = (ref.label_map(1002) % 7).astype(np.uint8)
    reply = client.render_frame("alpha", 1002, labels=labels, fmt="raw", mode="edit-only", feather=0.0)
    rgba = decode_array(reply["rgba"], "rgba")
    np.testing.assert_array_equal(rgba, ref.render_frame(1002, None, feather=0.0, mode="edit-only", labels=labels).rgba)


def test_render_window(client, backend_factory, shot_models_dir):  # noqa: F811
    ref = backend_factory(shot_models_dir / "alpha")
    window = np.stack([ref.label_map(f) for f in (1001, 1002, 1003)])
    rgb = decode_array(client.render_window("alpha", window)["rgb"], "rgb")
    np.testing.assert_array_equal(rgb, ref.render_window(window))
    img = decode_exr_bytes(client.render_window("alpha", window, fmt="exr")["exr"])
    np.testing.assert_allclose(img.pixels, rgb, atol=1e-3)


def test_exemplar_png_and_prior(client):
    png = client.exemplar("alpha", 1001)
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (32, 32, 3) and img.std() > 0
    assert "face" in client.prior("alpha")["segments"]
    new = {"version": 1, "num_codes": 16, "segments": {"pupils": [1, 2]}}
    assert client.prior("alpha", new)["segments"] == {"pupils": [1, 2]}
    with pytest.raises(ServerError) as err:
        client.prior("alpha", {"version": 1, "num_codes": 16, "segments": {"pupils": [99]}})
    assert err.value.code == "bad_prior" and "99" in err.value.server_message
    assert client.prior("alpha")["segments"] == {"pupils": [1, 2]}  # a rejected prior leaves the old one
    # programs may name the model's own segments once the prior has them
    prog = {"version": 1, "edits": [{"op": "replace", "segment": "pupils", "to": 3, "value": 1}]}
    assert client.render_frame("alpha", 1001, program=prog)["kind"] == "frame"
    with pytest.raises(ServerError) as err:
        client.render_frame("alpha", 1001, program={"version": 1, "edits": [{"op": "replace", "segment": "nostrils", "to": 3, "value": 1}]})
    assert err.value.code == "bad_program" and "nostrils" in err.value.server_message


@pytest.mark.parametrize(
    ("op", "fields", "code"),
    [
        ("render", {"model": "nope", "frame": 1}, "no_model"),
        ("render", {"model": "../etc", "frame": 1}, "bad_request"),
        ("load", {"model": "broken"}, "no_model"),
        ("render", {"model": "alpha", "frame": "1001"}, "bad_request"),
        ("render", {"model": "alpha", "frame": 7}, "bad_frame"),
        ("render", {"model": "alpha", "frame": 1001, "mode": "wild"}, "bad_request"),
        ("render", {"model": "alpha", "frame": 1001, "feather": -1.0}, "bad_request"),
        ("render", {"model": "alpha", "frame": 1001, "program": [1]}, "bad_program"),
        ("render", {"model": "alpha", "frame": 1001, "labels": encode_array(np.full((16, 16), 16, np.uint8))}, "bad_labels"),
        ("render", {"model": "alpha", "frame": 1001, "labels": encode_array(np.zeros((8, 16), np.uint8))}, "bad_labels"),
        ("render", {"model": "alpha", "window": {"dtype": "uint8", "shape": [3, 16, 16], "data": b"\0" * 10}}, "bad_request"),
        ("labels", {"model": "alpha", "image": encode_array(np.full((4, 4, 3), np.nan, np.float32))}, "bad_request"),
        ("teleport", {}, "unknown_op"),
    ],
)
def test_structured_errors(client, op, fields, code):
    with pytest.raises(ServerError) as err:
        client.request(op, **fields)
    assert err.value.code == code
    assert "\n" not in str(err.value)
    assert client.ping()["pong"] is True  # the server survived


def test_oversized_message_is_answered(client):
    big = b"\0" * (5 * 2**20)  # over the fixture's --max-message-mb 4
    with pytest.raises(ServerError) as err:
        client.request("render", model="alpha", frame=1001, junk=big)
    assert err.value.code == "too_large"


def test_ping_not_blocked_by_long_request(server):  # noqa: F811
    slow = RenderClient(server.address, timeout=20, retries=0)
    fast = RenderClient(server.address, timeout=5, retries=0)
    window = np.zeros((3, 16, 16), np.uint8)
    rid = slow.submit("render", model="slow", window=encode_array(window), format="raw")
    time.sleep(0.2)
    t0 = time.perf_counter()
    fast.ping()
    assert time.perf_counter() - t0 < 0.5  # slow model sleeps 1.5 s per render
    assert decode_array(slow.result(rid)["rgb"], "rgb").shape == (32, 32, 3)
    slow.close()
    fast.close()
