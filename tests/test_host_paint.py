"""Painting labels and segment edits from the host, through a real server on the real tiny trained shot.

A paint matte (the host's ``paint`` input, plate space) with ``paint_segment`` repaints label pixels; the
segment-edit table becomes low-level ops. References come from the same model loaded in this process.
"""

from __future__ import annotations

import numpy as np
import pytest
from server_fixtures import backend_factory, server, shot_models_dir  # noqa: F401

from host_plugin.client import RenderClient, ServerError
from host_plugin.knobs import edits_from_segment_rows
from host_plugin.node import EditKnobs, EditNode, PaintMatte
from host_plugin.protocol import decode_array
from vq_models.io.images import decode_image_bytes, encode_exr_bytes

# The tiny shot's auto prior only knows skin and background; the model ``alpha`` (ours to change) gets a
# prior with a teeth and a mouth segment, set through the server, and the reference loads what it saved.
PRIOR = {"version": 1, "num_codes": None, "segments": {"background": [0], "skin": [1, 2, 3, 4, 5],
                                                       "upper_teeth": [6], "mouth_interior": [7]}}


@pytest.fixture(scope="module")
def ref(server, shot_models_dir, backend_factory):  # noqa: F811
    base = backend_factory(shot_models_dir / "alpha")
    with RenderClient(server.address, timeout=60, retries=0) as c:
        c.prior("alpha", {**PRIOR, "num_codes": base.num_codes})
    return backend_factory(shot_models_dir / "alpha")


@pytest.fixture
def node(server, ref):  # noqa: F811
    n = EditNode(EditKnobs(server=server.address, model="alpha", mode="edit-only", feather=0.0, timeout=60, retries=0))
    yield n
    n.close()


def _mouth_matte(ref, frame: int) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """A plate-space rectangle over the mouth (the bounding box of the tracked outer lips at ``frame``,
    mapped to the plate), its window (the display window) and the label-space mouth box, padded by 2."""
    mouth = ref.regions(frame)["lips_outer"]
    assert mouth.any(), "the tiny shot's tracking has lips"
    ys, xs = np.nonzero(mouth)
    L, S = ref.label_size, ref.shot.crop_size
    box_label = (xs.min(), ys.min(), xs.max(), ys.max())
    corners = np.array([[box_label[0], box_label[1]], [box_label[2], box_label[3]]], np.float64)
    plate = ref.shot.transform(frame).to_plate((corners + 0.5) * (S / L) - 0.5)
    w, h = ref.plate_info["display_window"][2:]
    matte = np.zeros((h, w), np.float32)
    x0, y0 = np.floor(plate.min(axis=0)).astype(int)
    x1, y1 = np.ceil(plate.max(axis=0)).astype(int)
    matte[y0:y1 + 1, x0:x1 + 1] = 1.0
    region = np.zeros((L, L), bool)
    region[max(0, box_label[1] - 2):box_label[3] + 3, max(0, box_label[0] - 2):box_label[2] + 3] = True
    return matte, (0, 0, w, h), region


def test_paint_matte_over_the_mouth_paints_teeth_only_inside_and_renders(node, ref):
    frame = ref.frames[len(ref.frames) // 2]
    prior = ref.prior()
    teeth = "upper_teeth"
    matte, window, region = _mouth_matte(ref, frame)
    node.knobs.paint_segment = teeth

    labels_reply = node.client.request("render", **node.request_fields(frame, paint=PaintMatte(matte=matte, window=window),
                                                                       pass_name="labels", fmt="exr"))
    changed = decode_array(labels_reply["changed"], "changed").astype(bool)
    assert changed.any(), "painting teeth over the mouth must change some label pixels"
    assert not (changed & ~region).any(), "label pixels outside the matte changed"
    original = ref.label_map(frame)
    result = node.fetch_pass(frame, "render", paint=PaintMatte(matte=matte, window=window))
    render = decode_image_bytes(result.exr)
    assert render.pixels[..., 3].max() > 0.5, "the painted frame renders"
    reply = node.client.request("render", **node.request_fields(frame, paint=PaintMatte(matte=matte, window=window), fmt="raw"))
    ch = decode_array(reply["changed"], "changed").astype(bool)
    np.testing.assert_array_equal(ch, changed)
    # the same labels rendered in process give the same render
    from vq_models.edits.matte import apply_matte, matte_to_label_mask

    mask = matte_to_label_mask(matte, window, ref.shot.transform(frame), ref.shot.crop_size, ref.label_size)
    painted = apply_matte(original, mask, teeth, prior, ref.num_codes)
    assert set(np.unique(painted[changed]).tolist()) <= set(prior.codes(teeth)), "painted with a teeth code"
    fr = ref.render_frame(frame, None, feather=0.0, mode="edit-only", labels=painted)
    np.testing.assert_allclose(decode_array(reply["rgba"], "rgba", shm=True), fr.rgba_image().pixels, atol=1e-5)


def test_paint_as_exr_bytes_equals_paint_as_array(node, ref, tmp_path):
    """The Nuke gizmo sends its paint input as the EXR file Nuke wrote (alpha channel, data window)."""
    frame = ref.frames[2]
    matte, window, _ = _mouth_matte(ref, frame)
    node.knobs.paint_segment = "mouth_interior"
    rgba = np.zeros(matte.shape + (4,), np.float32)
    rgba[..., 3] = matte
    ys, xs = np.nonzero(matte)
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    from vq_models.io.images import ImageData

    crop = rgba[box[1]:box[1] + box[3], box[0]:box[0] + box[2]]
    exr = encode_exr_bytes(ImageData(crop, list("RGBA"), box, window), dtype="half")
    a = node.client.request("render", **node.request_fields(frame, paint=PaintMatte(matte=matte, window=window), fmt="exr"))
    b = node.client.request("render", **node.request_fields(frame, paint=PaintMatte(exr=exr), fmt="exr"))
    np.testing.assert_array_equal(decode_array(a["changed"], "c"), decode_array(b["changed"], "c"))
    assert decode_array(a["changed"], "c").any()


def test_paint_errors_are_one_line_and_the_server_lives(node, ref):
    frame = ref.frames[0]
    matte, window, _ = _mouth_matte(ref, frame)
    fields = node.request_fields(frame, fmt="raw")
    client: RenderClient = node.client
    with pytest.raises(ServerError, match=r"paint_segment: required \[bad_request\]"):
        client.request("render", **fields, paint=PaintMatte(matte=matte, window=window).to_field())
    with pytest.raises(ServerError, match="paint_segment: unknown segment 'molars'"):
        client.request("render", **fields, paint=PaintMatte(matte=matte, window=window).to_field(), paint_segment="molars")
    with pytest.raises(ServerError, match="paint.exr"):
        client.request("render", **fields, paint={"exr": b"not an exr"}, paint_segment="mouth_interior")
    with pytest.raises(ServerError, match="paint.window"):
        client.request("render", **fields, paint={**PaintMatte(matte=matte, window=window).to_field(), "window": [0, 0, 3, 3]},
                       paint_segment="mouth_interior")
    node.knobs.paint_segment = ""
    with pytest.raises(Exception, match="paint_segment knob"):
        node.request_fields(frame, paint=PaintMatte(matte=matte, window=window))
    assert client.ping()["pong"] is True


def test_segment_edit_rows_map_onto_low_level_ops():
    rows = [
        {"segment": "pupils", "translate_x": {"keys": [[1, 0.0], [11, 4.0]]}, "translate_y": 1.0},
        {"segment": "upper_teeth", "replace_with": "mouth_interior"},
        {"segment": "7", "scale": {"keys": [[1, 1.0], [3, 1.5]], "interp": "step"}, "dilate": 2},
        {"segment": "", "scale": 3.0},  # no segment: nothing
        {"segment": "irises"},  # all neutral: nothing
    ]
    assert edits_from_segment_rows(rows, 6) == [
        {"op": "translate", "segment": "pupils", "value": [2.0, 1.0]},
        {"op": "replace", "segment": "upper_teeth", "to": "mouth_interior", "value": 1.0},
        {"op": "scale", "code": 7, "value": 1.5},
        {"op": "dilate", "code": 7, "value": 2.0},
    ]
    assert {"op": "scale", "code": 7, "value": 1.5} not in edits_from_segment_rows(rows, 2.9)  # step: held at 1
    with pytest.raises(Exception, match="segment edit row 1: unknown field"):
        edits_from_segment_rows([{"segment": "pupils", "rotate": 3}], 1)


def test_segment_edits_and_program_file_reach_the_server(node, ref, tmp_path):
    frame = ref.frames[len(ref.frames) // 2]
    labels = ref.label_map(frame)
    prior = ref.prior()
    seg = max(prior.segments, key=lambda s: int(prior.mask(labels, s, required=False).sum()) if s != "background" else -1)
    node.knobs.segment_edits = [{"segment": seg, "translate_x": 3.0, "translate_y": -2.0}]
    program = node.program_at(frame)
    assert program["edits"] == [{"op": "translate", "segment": seg, "value": [3.0, -2.0]}]
    reply = node.client.request("render", **node.request_fields(frame, fmt="raw"))
    fr = ref.render_frame(frame, program, feather=0.0, mode="edit-only")
    assert fr.changed.any()
    np.testing.assert_array_equal(decode_array(reply["changed"], "c").astype(bool), fr.changed)
    np.testing.assert_allclose(decode_array(reply["rgba"], "rgba", shm=True), fr.rgba_image().pixels, atol=1e-5)

    path = tmp_path / "edits.json"
    path.write_text('{"version": 1, "edits": [{"op": "mouth_open", "keys": [[1000, 1.0], [2000, 1.3]]}]}')
    node.knobs.program_file = str(path)
    assert node.program_at(frame)["edits"][0]["op"] == "mouth_open"
    path.write_text("{oops")
    with pytest.raises(Exception, match="edit program file .*cannot read it"):
        node.program_at(frame)


def test_same_host_payloads_travel_as_shm_files_read_once(node, ref):
    """A client on the server's host gets raw/half payloads as a /dev/shm file, deleted when read; a reply
    naming any other file is refused."""
    import os

    from host_plugin.protocol import SHM_PREFIX, ProtocolError

    assert node.client.same_host
    fields = node.request_fields(ref.frames[1], fmt="half")
    assert fields["shm"] is True
    reply = node.client.request("render", **fields)
    path = reply["rgba"]["shm"]
    assert os.path.basename(path).startswith(SHM_PREFIX) and os.path.isfile(path)
    rgba = decode_array(reply["rgba"], "rgba", shm=True)
    assert rgba.dtype == np.float16 and rgba.shape[2] == 4 and not os.path.exists(path)
    with pytest.raises(ProtocolError, match="not a vqedit payload file"):
        decode_array({**reply["rgba"], "shm": "/etc/passwd"}, "rgba", shm=True)
    with pytest.raises(ProtocolError, match="expected bytes"):  # a request can never name a file
        decode_array({**reply["rgba"], "shm": path}, "rgba")
