"""Every request type against a real server process on loopback serving the real tiny trained shot, plus
structured errors. References come from the same model loaded in this process."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest
from server_fixtures import SLOW_BACKEND, ServerProcess, backend_factory, server, shot_models_dir  # noqa: F401

from host_plugin.client import RenderClient, ServerError
from host_plugin.protocol import decode_array, encode_array
from vq_models.io.images import decode_image_bytes

HALF = dict(atol=2e-3, rtol=2e-3)  # the EXR payload is half float


@pytest.fixture(scope="module")
def ref(shot_models_dir, backend_factory):  # noqa: F811
    """The ``beta`` model loaded in this process (nobody changes beta's prior)."""
    return backend_factory(shot_models_dir / "beta")


@pytest.fixture
def client(server):  # noqa: F811
    c = RenderClient(server.address, timeout=30, retries=0)
    yield c
    c.close()


def _replace_program(ref, frame: int) -> dict:
    """Replace the most common face code at ``frame`` by another code: a real, visible label edit."""
    labels = ref.label_map(frame)
    counts = np.bincount(labels[labels > 0].ravel(), minlength=ref.num_codes)
    code = int(np.argmax(counts))
    to = (code % (ref.num_codes - 1)) + 1
    return {"version": 1, "edits": [{"op": "replace", "code": code, "to": to, "value": 1}]}


def test_ping_info_list(client):
    assert client.ping()["pong"] is True
    info = client.info()
    assert info["protocol"] == 1 and info["device"] == "cpu" and info["workers"] == 2
    names = {m["name"] for m in client.list_models()}
    assert {"alpha", "beta", "slow", "broken"} <= names


def test_load_unload_and_memory(client, ref):
    desc = client.load("beta")
    assert desc["num_codes"] == ref.num_codes and desc["frames"] == ref.frames
    assert desc["label_size"] == ref.label_size and desc["render_size"] == ref.render_size
    assert desc["plate"]["display_window"] == ref.plate_info["display_window"]
    info = client.info()
    assert "beta" in info["loaded"] and info["memory_bytes"] >= ref.memory_bytes() > 0
    assert client.unload("beta") is True
    assert "beta" not in client.info()["loaded"]
    assert client.unload("beta") is False


def test_labels_from_frame_and_image(client, ref):
    frame = ref.frames[2]
    labels = client.labels("beta", frame=frame)
    assert labels.shape == (ref.label_size, ref.label_size) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, ref.label_map(frame))
    crop = ref.shot.aligned(frame).astype(np.float32)  # an uploaded frame, crop-sized sRGB
    # the tiny preset's Stage I reads the ROI (region tap): the image is labelled with its frame's
    from_image = client.labels("beta", frame=frame, image=crop)
    np.testing.assert_array_equal(from_image, ref.labels_from_image(crop, frame))
    assert len(np.unique(from_image)) > 1  # a real segmentation, not a constant map
    # without the frame such a model cannot know the ROI: a clear bad_request, the server lives on
    with pytest.raises(ServerError, match="ROI mask") as err:
        client.labels("beta", image=crop)
    assert err.value.code == "bad_request"
    assert client.labels("beta", frame=frame).shape == labels.shape


def test_render_frame_exr_matches_in_process(client, ref):
    frame = ref.frames[3]
    program = _replace_program(ref, frame)
    reply = client.render_frame("beta", frame, program=program, feather=2.0, mode="edit-only")
    img = decode_image_bytes(reply["exr"])
    expect = ref.render_frame(frame, program, feather=2.0, mode="edit-only")
    dw = tuple(ref.plate_info["display_window"])
    # the EXR's data window is the render's bounding box inside the plate's display window
    box = expect.alpha_box()
    assert img.data_window == box == tuple(reply["data_window"]) and box[2] * box[3] < dw[2] * dw[3]
    assert img.display_window == dw and tuple(reply["display_window"]) == dw
    assert tuple(img.channels) == ("R", "G", "B", "A") and reply["colorspace"] == "lin_rec709"
    np.testing.assert_allclose(img.full_frame(), expect.rgba, **HALF)
    np.testing.assert_array_equal(decode_array(reply["changed"], "changed").astype(bool), expect.changed)
    assert expect.changed.any() and expect.alpha.max() > 0.5


def test_render_raw_and_uploaded_labels(client, ref):
    frame = ref.frames[1]
    labels = ref.label_map(frame).copy()
    labels[10:16, 12:20] = (labels[10:16, 12:20] + 3) % ref.num_codes
    reply = client.render_frame("beta", frame, labels=labels, fmt="raw", mode="edit-only", feather=0.0)
    rgba = decode_array(reply["rgba"], "rgba")
    expect = ref.render_frame(frame, None, feather=0.0, mode="edit-only", labels=labels)
    assert tuple(reply["data_window"]) == expect.alpha_box()
    window = np.stack([ref.label_map(ref.frames[0]), labels, ref.label_map(ref.frames[2])])
    np.testing.assert_array_equal(expect.crop, ref.render_window(window))  # (L, L) = the centre of the window
    np.testing.assert_allclose(rgba, expect.rgba_image().pixels, atol=1e-5)
    changed = decode_array(reply["changed"], "changed").astype(bool)
    assert changed.any() and not changed[:10].any() and 0 < (expect.alpha > 0).mean() < 0.5


@pytest.mark.parametrize("fmt", ["half", "raw"])
def test_raw_payloads_are_the_premultiplied_box_exactly(client, ref, fmt):
    """``half``/``raw`` replies hold ``rgba_image()``'s pixels rounded once to the payload's dtype, bit for bit,
    inline and by /dev/shm; a shm payload is mapped read-only in place and its file is gone once decoded."""
    frame = ref.frames[4]
    expect = ref.render_frame(frame, None, feather=8.0)
    want = expect.rgba_image().pixels.astype(np.float16 if fmt == "half" else np.float32)
    for shm in (False, True):
        reply = client.render_frame("beta", frame, feather=8.0, fmt=fmt, shm=shm)
        assert tuple(reply["data_window"]) == expect.alpha_box()
        assert ("shm" in reply["rgba"]) == shm and reply["encode_ms"] >= 0.0
        path = reply["rgba"].get("shm")
        rgba = decode_array(reply["rgba"], "rgba", shm=shm)
        assert rgba.dtype == want.dtype and rgba.tobytes() == want.tobytes()
        if shm:
            assert not rgba.flags.writeable and not os.path.exists(path)


def test_shm_payload_files_are_checked_before_use(tmp_path):
    """A payload file that is empty or of the wrong size is a BAD_REQUEST (and is deleted), never a crash."""
    from host_plugin.protocol import SHM_DIR, SHM_PREFIX, ProtocolError, encode_array_shm

    field = encode_array_shm(np.ones((4, 5, 4), np.float16))
    with open(field["shm"], "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(ProtocolError, match="10 bytes"):
        decode_array(field, "rgba", shm=True)
    assert not os.path.exists(field["shm"])
    empty = os.path.join(SHM_DIR, f"{SHM_PREFIX}test-{os.getpid()}.bin")
    open(empty, "wb").close()
    with pytest.raises(ProtocolError, match="empty"):
        decode_array({"dtype": "float16", "shape": [1], "shm": empty}, "rgba", shm=True)
    assert not os.path.exists(empty)


def test_frame_arrays_are_released_after_the_reply_is_sent(shot_models_dir, backend_factory):  # noqa: F811
    """A render's plate-sized arrays are dropped by the I/O thread once the reply is on the socket (not before
    it, not never): the server in this process, a finaliser on each FrameRender records how many replies had
    been sent when it ran."""
    import threading
    import weakref

    from render_server.models import ModelCache
    from render_server.server import RenderServer

    sent_at_release: list[int] = []
    holder: dict[str, RenderServer] = {}

    def loader(path, device):
        model = backend_factory(path)
        render = model.render_frame

        def tracked(*args, **kwargs):
            fr = render(*args, **kwargs)
            weakref.finalize(fr, lambda: sent_at_release.append(holder["server"].requests_served))
            return fr

        model.render_frame = tracked
        return model

    srv = RenderServer(ModelCache(shot_models_dir, loader), bind="tcp://127.0.0.1:*", workers=1)
    holder["server"] = srv
    ready = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, args=(lambda _endpoint: ready.set(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    c = RenderClient(srv.endpoint, timeout=30, retries=0)
    try:
        for n in (1, 2):
            c.render_frame("beta", 1003, feather=8.0, fmt="half", shm=c.same_host)
            deadline = time.monotonic() + 5
            while len(sent_at_release) < n and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sent_at_release[-1] == n, sent_at_release  # after its own reply, every time
        assert srv._release == {}
    finally:
        c.close()
        srv.stop()
        thread.join(10)


def test_render_window(client, ref):
    window = np.stack([ref.label_map(f) for f in ref.frames[:3]])
    rgb = decode_array(client.render_window("beta", window)["rgb"], "rgb")
    assert rgb.shape == (ref.render_size, ref.render_size, 3)
    np.testing.assert_allclose(rgb, ref.render_window(window), atol=1e-5)
    img = decode_image_bytes(client.render_window("beta", window, fmt="exr")["exr"])
    np.testing.assert_allclose(img.pixels, rgb, **HALF)


def test_exemplar_png_and_prior(client, ref):
    png = client.exemplar("alpha", ref.frames[0])
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    expect = cv2.imdecode(np.frombuffer(ref.exemplar_png(ref.frames[0]), np.uint8), cv2.IMREAD_COLOR)
    assert img.ndim == 3 and img.std() > 0
    np.testing.assert_array_equal(img, expect)
    K = ref.num_codes
    assert set(client.prior("alpha")["segments"]) == set(ref.get_prior()["segments"])
    new = {"version": 1, "num_codes": K, "segments": {"pupils": [1, 2]}}
    assert client.prior("alpha", new)["segments"] == {"pupils": [1, 2]}
    with pytest.raises(ServerError) as err:
        client.prior("alpha", {"version": 1, "num_codes": K, "segments": {"pupils": [99]}})
    assert err.value.code == "bad_prior" and "99" in err.value.server_message
    assert client.prior("alpha")["segments"] == {"pupils": [1, 2]}  # a rejected prior leaves the old one
    # programs may name the model's own segments once the prior has them
    prog = {"version": 1, "edits": [{"op": "replace", "segment": "pupils", "to": 3, "value": 1}]}
    assert client.render_frame("alpha", ref.frames[0], program=prog)["kind"] == "frame"
    with pytest.raises(ServerError) as err:
        client.render_frame("alpha", ref.frames[0], program={
            "version": 1, "edits": [{"op": "replace", "segment": "nostrils", "to": 3, "value": 1}]})
    assert err.value.code == "bad_program" and "nostrils" in err.value.server_message


@pytest.mark.parametrize(
    ("op", "fields", "code"),
    [
        ("render", {"model": "nope", "frame": 1}, "no_model"),
        ("render", {"model": "../etc", "frame": 1}, "bad_request"),
        ("load", {"model": "broken"}, "no_model"),
        ("render", {"model": "beta", "frame": "1001"}, "bad_request"),
        ("render", {"model": "beta", "frame": 7}, "bad_frame"),
        ("render", {"model": "beta", "frame": 1001, "mode": "wild"}, "bad_request"),
        ("render", {"model": "beta", "frame": 1001, "feather": -1.0}, "bad_request"),
        ("render", {"model": "beta", "frame": 1001, "program": [1]}, "bad_program"),
        ("render", {"model": "beta", "frame": 1001, "labels": encode_array(np.full((32, 32), 200, np.uint8))}, "bad_labels"),
        ("render", {"model": "beta", "frame": 1001, "labels": encode_array(np.zeros((8, 32), np.uint8))}, "bad_labels"),
        ("render", {"model": "beta", "window": {"dtype": "uint8", "shape": [3, 32, 32], "data": b"\0" * 10}}, "bad_request"),
        ("labels", {"model": "beta", "image": encode_array(np.full((4, 4, 3), np.nan, np.float32))}, "bad_request"),
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
        client.request("render", model="beta", frame=1001, junk=big)
    assert err.value.code == "too_large"


def test_ping_not_blocked_by_long_request(shot_models_dir, ref):  # noqa: F811
    proc = ServerProcess(shot_models_dir, "--workers", "2", backend=SLOW_BACKEND)
    slow = RenderClient(proc.address, timeout=30, retries=0)
    fast = RenderClient(proc.address, timeout=5, retries=0)
    try:
        slow.load("slow")
        window = np.stack([ref.label_map(f) for f in ref.frames[:3]])
        rid = slow.submit("render", model="slow", window=encode_array(window), format="raw")
        time.sleep(0.2)
        t0 = time.perf_counter()
        fast.ping()
        assert time.perf_counter() - t0 < 0.5  # the slow model sleeps 1.5 s per render
        rgb = decode_array(slow.result(rid)["rgb"], "rgb")
        np.testing.assert_allclose(rgb, ref.render_window(window), atol=1e-5)
    finally:
        slow.close()
        fast.close()
        proc.stop()
