"""A filled region's colour held to the shot's palette (vq_models.fill_anchor), and ``teeth 0`` leaving the
plate around the emptied mouth (vq_models.detail), on synthetic arrays and the real tiny trained shot."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vq_models.composite import changed_mask_to_plate
from vq_models.edits.spec import FilledRegion
from vq_models.errors import InputError
from vq_models.fill_anchor import AnchorSettings, anchor_filled
from vq_models.runtime import ShotModel

L, R = 32, 64
DARK = np.array([0.16, 0.05, 0.05], np.float32)


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A textured render with an orange glow over a filled block of code 1, the rest code 0."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((L, L), np.uint8)
    labels[10:22, 8:24] = 1
    filled = labels == 1
    render = np.full((R, R, 3), 0.6, np.float32)
    render[20:44, 16:48] = [0.7, 0.4, 0.1]  # the glow Stage II drew over the fill
    render += rng.normal(0, 0.02, (R, R, 3)).astype(np.float32)
    palette = np.array([[0.6, 0.6, 0.6], DARK], np.float32)
    return render, labels, filled, palette


def test_the_fill_takes_its_codes_colour_and_keeps_its_texture():
    render, labels, filled, palette = _scene()
    out = anchor_filled(render, labels, filled, palette)
    core = np.zeros((R, R), bool)
    core[24:40, 20:44] = True  # the fill, away from its feathered edge
    np.testing.assert_allclose(out[core].mean(0), DARK, atol=0.02)
    texture = (render - render[core].mean(0))[core]  # the render's own grain survives the shift
    kept = (out - out[core].mean(0))[core]
    assert np.corrcoef(texture.ravel(), kept.ravel())[0, 1] > 0.9
    far = np.ones((R, R), bool)
    far[12:52, 8:56] = False
    np.testing.assert_allclose(out[far], render[far], atol=1e-4)  # the feather's Gaussian tails only


def test_codes_the_shot_never_showed_keep_the_render():
    render, labels, filled, palette = _scene()
    palette[1] = np.nan
    np.testing.assert_allclose(anchor_filled(render, labels, filled, palette), np.clip(render, 0, 1), atol=1e-6)
    assert anchor_filled(render, labels, np.zeros_like(filled), palette) is render


def test_settings_refuse_nonsense():
    with pytest.raises(InputError, match="sigma"):
        AnchorSettings(sigma=0.0)
    with pytest.raises(InputError, match="feather"):
        AnchorSettings(feather=-1.0)


@pytest.fixture(scope="module")
def model(tiny_shot) -> ShotModel:
    return ShotModel.load(tiny_shot)


TEETH_0 = {"version": 1, "edits": [{"op": "teeth", "value": 0.0, "fill": "skin"}]}  # the tiny prior has no interior


def _toothy_frame(model: ShotModel) -> int:
    for frame in model.frames:
        _, changed, rules = model._window(frame, TEETH_0, None, None)
        if changed.sum() >= 6:
            return frame
    pytest.skip("the tiny shot shows no teeth")


def test_teeth_0_declares_its_fill_and_a_later_edit_takes_back_what_it_draws(model):
    frame = _toothy_frame(model)
    _, changed, rules = model._window(frame, TEETH_0, None, None)
    fills = [r.filled for r in rules if isinstance(r, FilledRegion)]
    assert len(fills) == 1 and np.array_equal(fills[0], changed)
    code = int(model.label_map(frame)[0, 0])
    over = {"version": 1, "edits": TEETH_0["edits"] + [{"op": "replace", "code": int(model.edited_labels(
        frame, TEETH_0)[0][changed][0]), "to": code, "value": 1}]}
    _, _, rules = model._window(frame, over, None, None)
    assert not any(isinstance(r, FilledRegion) for r in rules)  # the replace drew over the whole fill


def test_teeth_0_leaves_the_plate_around_the_emptied_mouth(model):
    """Where the renderer's reach takes the alpha past the changed labels, the fill's composite stays near the
    plate; the same labels given without the op (no fill declared) redraw those pixels."""
    frame = _toothy_frame(model)
    plate = model.detail.plates.image(frame)
    fr = model.render_frame(frame, TEETH_0, mode="edit-only", feather=2.0)
    bare = model.render_frame(frame, None, mode="edit-only", feather=2.0, labels=fr.labels)
    assert fr.detail.mode == "plate" and np.array_equal(fr.changed, bare.changed)
    size = (plate.display_window[2], plate.display_window[3])
    grown = cv2.dilate(fr.changed.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # its weight: grown, feathered
    near = changed_mask_to_plate(grown, model.shot.transform(frame), size, crop_size=model.shot.crop_size)
    ring = (fr.alpha > 0.05) & ~near
    assert ring.sum() > 20  # the reach beyond the changed labels
    original = plate.pixels[..., :3][ring]
    kept = np.abs(fr.composite(plate).pixels[..., :3][ring] - original)
    redrawn = np.abs(bare.composite(plate).pixels[..., :3][ring] - original)
    assert kept.mean() < 0.25 * redrawn.mean(), (kept.mean(), redrawn.mean())


def test_paint_over_a_fill_keeps_the_anchor_only_where_the_fill_shows():
    """The server's paint input over a program's teeth fill: the painted pixels are the paint's, drawn as
    Stage II draws them; a fill painted over entirely declares nothing."""
    from vq_models.runtime import _moves_kept

    filled = np.zeros((8, 8), bool)
    filled[3:6, 2:7] = True
    same = np.ones((8, 8), bool)
    same[:, :4] = False  # the paint changed the left part
    kept = _moves_kept([FilledRegion(filled)], same, filled)
    assert len(kept) == 1 and np.array_equal(kept[0].filled, filled & same)
    assert _moves_kept([FilledRegion(filled)], np.zeros((8, 8), bool), filled) == []
