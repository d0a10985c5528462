"""Fuzz: ≥ 10,000 malformed or hostile messages, each answered; the server (serving the real tiny trained
shot) still renders correctly after."""

from __future__ import annotations

import random

import msgpack
import numpy as np
import zmq
from server_fixtures import backend_factory, server, shot_models_dir  # noqa: F401

from host_plugin.client import RenderClient
from host_plugin.protocol import ERROR_CODES, encode_array, encode_request
from vq_models.io.images import decode_image_bytes

N_MESSAGES = 10_000


def _hostile(rng: random.Random, i: int) -> bytes:
    kind = i % 12
    good_labels = encode_array(np.zeros((32, 32), np.uint8))
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    if kind == 1:
        return msgpack.packb(rng.choice([1, -5, 3.5, "render", [1, 2, 3], None, True, b"\x00\x01"]))
    if kind == 2:
        return msgpack.packb({"id": rng.choice([None, 1.5, [1], {"a": 1}, True, "x" * 500]), "op": "ping"})
    if kind == 3:
        return encode_request(i, rng.choice(["", "PING", "render ", "__init__", "eval", "x" * 300]))
    if kind == 4:  # wrong field types
        return encode_request(i, "render", model="alpha", frame=rng.choice(["1001", 1001.5, [1001], None, True, 2**40, -1]))
    if kind == 5:  # labels out of range or wrong shape / dtype / size
        bad = rng.choice([
            encode_array(np.full((32, 32), rng.randint(8, 255), np.uint8)),
            encode_array(np.zeros((rng.randint(1, 31), 32), np.uint8)),
            {"dtype": "float64", "shape": [32, 32], "data": b"\0" * 8192},
            {"dtype": "uint8", "shape": [32, 32], "data": b"\0" * rng.randint(0, 1023)},
            {"dtype": "uint8", "shape": [-32, 32], "data": b""},
            {"dtype": "uint8", "shape": [1 << 20, 1 << 20], "data": b""},
            "labels",
        ])
        return encode_request(i, "render", model="alpha", frame=1001, labels=bad)
    if kind == 6:  # truncated valid request
        full = encode_request(i, "render", model="alpha", frame=1001, labels=good_labels)
        return full[: rng.randint(1, len(full) - 1)]
    if kind == 7:  # missing / hostile model names
        return encode_request(i, rng.choice(["load", "labels", "render", "exemplar", "prior"]),
                              model=rng.choice(["", "..", "../../etc/passwd", "nope", "a/b", "broken", 7, None]), frame=1001)
    if kind == 8:  # bit flips in a valid request
        data = bytearray(encode_request(i, "labels", model="alpha", frame=1001))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == 9:  # bad programs and options
        return encode_request(i, "render", model="alpha", frame=1001, program=rng.choice([
            {"version": 2, "edits": []}, {"version": 1, "edits": [{"op": "explode"}]}, {"version": 1, "edits": "all"},
            {"version": 1, "edits": [{"op": "eye_open", "value": 7}]}, [1, 2], "rm -rf /"]),
            mode=rng.choice(["identity", "edit-only", "x"]), feather=rng.choice([1.0, -3.0, float("nan"), "8"]))
    if kind == 10:  # deep nesting / wrong version / images with NaN
        return rng.choice([
            b"\x91" * 5000 + b"\xc0",
            encode_request(i, "ping") .replace(b"\xa1v\x01", b"\xa1v\x07"),
            encode_request(i, "labels", model="alpha", image=encode_array(np.full((4, 4, 3), np.inf, np.float32))),
            encode_request(i, "prior", model="alpha", set={"version": 1, "num_codes": 8, "segments": {"Bad Name": [1]}}),
        ])
    return msgpack.packb({"v": 1, "id": i, "op": "render", "model": "alpha", "frame": 1001,
                          "window": encode_array(np.full((3, 32, 32), 200, np.uint8))})


def test_fuzz_then_render(server, shot_models_dir, backend_factory):  # noqa: F811
    rng = random.Random(1234)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(server.address)
    sent = answered = 0
    codes: dict[str, int] = {}
    batch = 500
    oversized = [b"\x82\xa1v\x01\xa2id\xcd\x01\x00" + b"\0" * (4 * 2**20 + 10)] * 3
    messages = oversized + [_hostile(rng, i) for i in range(N_MESSAGES)]
    for start in range(0, len(messages), batch):
        chunk = messages[start : start + batch]
        for m in chunk:
            sock.send(m)
        sent += len(chunk)
        while answered < sent:
            assert sock.poll(30_000), f"no reply after {answered} of {sent} messages"
            reply = msgpack.unpackb(sock.recv_multipart()[-1])
            assert isinstance(reply, dict) and "ok" in reply
            if not reply["ok"]:
                assert reply["error"]["code"] in ERROR_CODES and "\n" not in reply["error"]["message"]
                codes[reply["error"]["code"]] = codes.get(reply["error"]["code"], 0) + 1
            answered += 1
    sock.close()
    assert answered == sent >= N_MESSAGES
    assert codes.get("too_large", 0) >= 3 and codes.get("bad_labels", 0) > 100 and codes.get("bad_message", 0) > 100
    assert codes.get("internal", 0) == 0, codes

    # still alive and still correct
    c = RenderClient(server.address, timeout=10, retries=0)
    try:
        reply = c.render_frame("alpha", 1004, feather=2.0)
        expect = backend_factory(shot_models_dir / "alpha").render_frame(1004, None, feather=2.0)
        assert expect.alpha.max() > 0.5
        np.testing.assert_allclose(decode_image_bytes(reply["exr"]).full_frame(), expect.rgba, atol=2e-3, rtol=2e-3)
        assert "alpha" in c.info()["loaded"]
    finally:
        c.close()
