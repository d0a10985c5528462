"""Plate-density detail: the frequency split, donor choice and warp on hand-made data, and the detail pass
on the real tiny trained shot (sharper than the bare paste, plate untouched outside the alpha)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vq_models.detail import (
    DetailSettings,
    DonorBand,
    DonorIndex,
    code_groups,
    donor_window,
    gaussian,
    label_mask_to_sub,
    split_bands,
    warp_donor,
)
from vq_models.edits.prior import Prior
from vq_models.errors import InputError
from vq_models.evaluation.plate import laplacian_energy
from vq_models.io.images import ImageData, read_image
from vq_models.runtime import ShotModel
from vq_models.shot import CropTransform


def _texture(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0.2, 0.8, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    return np.clip(base + 0.1 * rng.standard_normal((h, w, 3)).astype(np.float32), 0, 1)


def test_split_keeps_plate_detail_where_labels_did_not_change():
    plate = _texture()
    soft = gaussian(plate, 3.0)  # a render that only resolves the low band
    out = split_bands(soft, plate, sigma=3.0)
    mask = np.ones(plate.shape[:2], bool)
    assert laplacian_energy(soft, mask) < 0.3 * laplacian_energy(plate, mask)
    assert laplacian_energy(out, mask) == pytest.approx(laplacian_energy(plate, mask), rel=0.05)
    # the low band is the render's: a brighter render moves the output by its brightness
    brighter = split_bands(soft + 0.1, plate, sigma=3.0)
    np.testing.assert_allclose(brighter - out, 0.1, atol=1e-5)


def test_split_takes_donor_band_or_render_band_where_labels_changed():
    plate, donor, render = _texture(seed=0), _texture(seed=1), gaussian(_texture(seed=2), 2.0)
    ones = np.ones(plate.shape[:2], np.float32)
    band = DonorBand.of(donor, 2.0)
    with_donor = split_bands(render, plate, 2.0, [(ones, band)])
    np.testing.assert_allclose(with_donor, gaussian(render, 2.0) + donor - gaussian(donor, 2.0), atol=1e-5)
    without = split_bands(render, plate, 2.0, [(ones, None)])
    np.testing.assert_allclose(without, render, atol=1e-5)  # no ghost of the plate: the render as drawn
    # overlapping weights never add more than one band
    half = split_bands(render, plate, 2.0, [(ones, band), (ones, band)])
    np.testing.assert_allclose(half, with_donor, atol=1e-5)


def test_split_with_local_regions_is_the_whole_frame_formula():
    """Regions computed inside their own boxes give the formula over the whole frame: two eyes sharing a
    donor, one without a donor, an overlap where the weights add past one, and an empty weight."""
    plate, donor, render = _texture(seed=3), _texture(seed=4), gaussian(_texture(seed=5), 2.0)
    yy, xx = np.mgrid[:64, :64].astype(np.float32)
    def blob(cy, cx):
        return np.clip(1.5 - np.hypot(yy - cy, xx - cx) / 6.0, 0.0, 1.0).astype(np.float32)
    band = DonorBand.of(donor[8:40, 4:44], 3.0, origin=(4, 8))  # around the first two regions only
    regions = [(blob(20, 18), band), (blob(22, 26), band), (blob(44, 40), None), (np.zeros((64, 64), np.float32), band)]
    out = split_bands(render, plate, 2.0, regions, donor_sigma=3.0)
    total = sum(w for w, _ in regions)
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-6), 1.0)
    low, low_d = gaussian(render, 2.0), gaussian(render, 3.0)
    expect = low + (1.0 - total * scale)[..., None] * (plate - gaussian(plate, 2.0))
    for w, d in regions:
        if d is None:
            part = render
        else:
            part = low_d.copy()
            part[8:40, 4:44] += donor[8:40, 4:44] - gaussian(donor[8:40, 4:44], 3.0)
        expect = expect + (w * scale)[..., None] * (part - low)
    assert total.max() > 1.0
    np.testing.assert_allclose(out, expect, atol=1e-5)


def _disc_scene(size: int = 96, r: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured white plate with a dark disc (an iris), a render without it, and the disc's mask."""
    yy, xx = np.mgrid[0:size, 0:size]
    disc = (np.hypot(xx - size / 2, yy - size / 2) <= r).astype(np.float32)
    white = 0.7 + 0.05 * (_texture(size, size, seed=3) - 0.5)
    plate = white * (1.0 - 0.9 * disc[..., None])
    return plate.astype(np.float32), gaussian(white, 2.0), disc


def test_a_removed_part_leaves_no_outline_in_the_plates_band():
    """Where an edit removed a part (an iris gone, teeth gone), neither its own band nor its halo around it
    shows: with a plain blur the band outside a feathered weight carried the part's outline as a ring."""
    import cv2

    plate, render, disc = _disc_scene()
    grown = cv2.dilate(disc, np.ones((5, 5), np.uint8))
    weight = np.clip(gaussian(grown, 3.0) * 0.92, 0.0, 1.0)  # a feathered weight peaking below 1
    sigma = 3.0
    plain = split_bands(render, plate, sigma, [(weight, None)])
    clean = split_bands(render, plate, sigma, [(weight, None)], removed=grown)
    inside = disc > 0.5
    ring = (cv2.dilate(grown, np.ones((15, 15), np.uint8)) > 0) & (grown == 0)
    luma = lambda a: a.mean(axis=2)  # noqa: E731
    assert np.abs(luma(plain - render))[inside].mean() > 0.02  # the plain split leaks the disc
    assert np.abs(luma(clean - render))[inside].mean() < 0.005
    # around it: the plate's own texture, no halo of the disc (its band's mean on the ring is the texture's)
    halo_plain = abs(float(luma(plain - plate)[ring].mean()))
    halo_clean = abs(float(luma(clean - plate)[ring].mean()))
    assert halo_clean < 0.3 * halo_plain
    # far from it, nothing changes
    far = np.ones(disc.shape, bool)
    far[20:76, 20:76] = False
    np.testing.assert_allclose(clean[far], plain[far], atol=1e-6)


def test_where_the_render_band_stands_in_the_plates_grain_is_added(model):
    """A changed region without a donor keeps the render's band, which has no grain: the detail pass adds
    grain measured on the plate around it, the same strength, and nothing outside the region."""
    from test_grain import _grainy_plate

    from vq_models.grain import finest_band

    plate = _grainy_plate(size=192, seed=4)
    render = gaussian(plate, 3.0)
    region = np.zeros(plate.shape[:2], np.float32)
    region[60:130, 70:140] = 1.0
    weight = gaussian(region, 2.0)
    out = split_bands(render, plate, 3.0, [(weight, None)], removed=region)
    before = out.copy()
    grain = model.detail._regrain(out, plate, [weight], region, frame=7, box=(0, 0, 192, 192), sigma=3.0)
    assert grain is not None and grain > 0
    mad = lambda a: float(np.median(np.abs(a)) / 0.6745)  # noqa: E731
    inside = (slice(70, 120), slice(80, 130))
    assert mad(finest_band(before)[inside]) < 0.3 * mad(finest_band(plate)[inside])  # the render band: no grain
    assert mad(finest_band(out)[inside]) == pytest.approx(mad(finest_band(plate)[inside]), rel=0.3)
    untouched = weight == 0
    np.testing.assert_array_equal(out[untouched], before[untouched])
    flat = np.full_like(plate, 0.5)  # a plate without grain (a synthetic shot) gets none
    again = split_bands(gaussian(flat, 3.0), flat, 3.0, [(weight, None)], removed=region)
    assert model.detail._regrain(again.copy(), flat, [weight], region, 7, (0, 0, 192, 192), 3.0) is None


def test_donor_index_prefers_agreeing_segments():
    L = 16
    frames = [1, 2, 3]
    maps = {f: np.zeros((L, L), np.uint8) for f in frames}
    maps[2][4:8, 4:8] = 5  # frame 2 has code 5 where the edit asks for code 6; 5 and 6 are one segment
    maps[3][4:8, 4:8] = 7
    prior = Prior(num_codes=8, segments={"lid": [5, 6], "other": [7]})
    index = DonorIndex(frames, lambda f: maps[f], code_groups(8, prior))
    edited = np.zeros((L, L), np.uint8)
    edited[4:8, 4:8] = 6
    region = np.zeros((L, L), bool)
    region[4:8, 4:8] = True
    ring = np.zeros((L, L), bool)
    ring[2:10, 2:10] = True
    assert index.best(edited, region, ring) == (2, 1.0)
    frame, score = index.best(edited, region, ring, exclude={2})
    assert frame in (1, 3) and score == pytest.approx(0.2)  # only the ring (code 0 everywhere) agrees
    # the changed pixels decide: a frame that agrees only around them loses to one that agrees on them
    maps[2][2:10, 2:10] = 7
    maps[2][4:8, 4:8] = 5
    index = DonorIndex(frames, lambda f: maps[f], code_groups(8, prior))
    assert index.best(edited, region, ring) == (2, pytest.approx(0.8))


def test_warp_donor_follows_both_transforms():
    donor = _texture(80, 80, seed=3)
    # current frame's crop sits 5 px right of the donor's: the same crop pixel is 5 px apart on the plates
    cur = CropTransform.from_plate_to_crop(np.array([[1.0, 0, -15.0], [0, 1.0, -10.0]]))
    don = CropTransform.from_plate_to_crop(np.array([[1.0, 0, -10.0], [0, 1.0, -10.0]]))
    # the sub-window starts at plate (15, 10) of the current frame: its pixel (0, 0) is crop (0, 0)
    sub = CropTransform.from_plate_to_crop(np.array([[1.0, 0, 0.0], [0, 1.0, 0.0]]))
    out = warp_donor(donor, don, sub, (40, 30))
    np.testing.assert_allclose(out, donor[10:40, 10:50], atol=1e-5)
    assert cur.plate_to_crop is not None


@pytest.mark.parametrize("sigma", [8.0, 13.3, 21.0])
def test_a_large_blur_on_a_shrunk_copy_matches_the_full_size_blur(sigma):
    import cv2

    image = _texture(301, 407, seed=5)  # sizes that are no multiple of the shrink factor
    exact = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    fast = gaussian(image, sigma)
    assert fast.shape == image.shape and fast.dtype == np.float32
    inner = (slice(int(2 * sigma), -int(2 * sigma)),) * 2
    assert np.abs(fast - exact).mean() < 1e-3 and np.abs(fast - exact)[inner].max() < 3e-3
    # and it is a low pass of the right width: a blur half as wide would leave far more of the texture
    narrower = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma / 2, sigmaY=sigma / 2, borderType=cv2.BORDER_REFLECT)
    assert np.abs(fast - exact)[inner].mean() < 0.2 * np.abs(narrower - exact)[inner].mean()


def test_a_donor_window_lends_what_the_whole_plate_lends():
    donor = _texture(120, 160, seed=4)
    # rotated, scaled and shifted: the window must hold every pixel the bilinear warp samples
    angle = np.deg2rad(7.0)
    rot = 0.9 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    don = CropTransform.from_plate_to_crop(np.hstack([rot, [[-30.0], [-20.0]]]))
    sub = CropTransform.from_plate_to_crop(np.array([[1.0, 0, 3.5], [0, 1.0, 2.0]]))
    size = (50, 40)
    box = donor_window(don, sub, size, (160, 120))
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120 and (x1 - x0) * (y1 - y0) < 160 * 120 / 2
    whole = warp_donor(donor, don, sub, size)
    part = warp_donor(donor[y0:y1, x0:x1], don, sub, size, origin=(x0, y0))
    np.testing.assert_allclose(part, whole, atol=1e-5)


def test_label_mask_reaches_the_sub_window_at_plate_density():
    mask = np.zeros((32, 32), np.float32)
    mask[8:16, 8:16] = 1.0
    sub = CropTransform.from_plate_to_crop(np.array([[0.5, 0, 0.0], [0, 0.5, 0.0]]))  # 2 plate px per crop px
    out = label_mask_to_sub(mask, sub, crop_size=32, size=(64, 64))
    assert out[24, 24] == pytest.approx(1.0) and out[4, 4] == 0.0 and out[40, 40] == 0.0


@pytest.mark.parametrize("angle", [0.0, 0.4])
def test_a_label_mask_resampled_around_itself_equals_the_whole_window(angle):
    """Only the box around the mask is resampled; the result is the whole window's resampling (rotated and
    scaled crops, masks at the map's edge included)."""
    from vq_models.composite import paste_to_plate

    c, s_ = np.cos(angle) * 0.3, np.sin(angle) * 0.3
    sub = CropTransform.from_plate_to_crop(np.array([[c, -s_, 20.0], [s_, c, -30.0]]))
    rng = np.random.default_rng(1)
    for _ in range(6):
        mask = np.zeros((32, 32), np.float32)
        y, x = rng.integers(0, 28, 2)
        mask[y:y + rng.integers(1, 5), x:x + rng.integers(1, 5)] = 1.0
        mask[0, 31] = 0.5
        warped, cover = paste_to_plate(mask, sub, (300, 280), crop_size=64)
        np.testing.assert_allclose(label_mask_to_sub(mask, sub, 64, (300, 280)), np.clip(warped * cover, 0, 1),
                                   atol=1e-6)
    assert not label_mask_to_sub(np.zeros((32, 32), np.float32), sub, 64, (300, 280)).any()


def test_settings_refuse_nonsense():
    with pytest.raises(InputError, match="sigma"):
        DetailSettings(sigma=0)
    with pytest.raises(InputError, match="min_donor_match"):
        DetailSettings(min_donor_match=2)


@pytest.fixture(scope="module")
def model(tiny_shot) -> ShotModel:
    return ShotModel.load(tiny_shot)


def test_identity_render_keeps_the_plate_density(model):
    frame = model.frames[5]
    plain = model.render_frame(frame, None, mode="identity", detail="none")
    detailed = model.render_frame(frame, None, mode="identity")
    assert detailed.detail.mode == "plate" and plain.detail.mode == "none"
    plate = model.detail.plates.image(frame)
    face = detailed.alpha > 0.5
    sharp_plain = laplacian_energy(plain.composite(plate).pixels, face)
    sharp_detail = laplacian_energy(detailed.composite(plate).pixels, face)
    sharp_plate = laplacian_energy(plate.pixels, face)
    assert sharp_plain < sharp_detail
    assert abs(sharp_detail / sharp_plate - 1.0) < abs(sharp_plain / sharp_plate - 1.0)


def test_edit_with_detail_leaves_the_plate_outside_the_alpha(model, tmp_path):
    frame = model.frames[6]
    labels = model.label_map(frame).copy()
    labels[20:30, 20:34] = labels[2, 2]
    fr = model.render_frame(frame, None, mode="edit-only", labels=labels, feather=2.0)
    assert fr.detail.mode == "plate" and fr.detail.donors  # one changed region, a donor looked for
    plate = read_image(model.shot.plate["source"] % frame)
    comp = fr.composite(plate)
    outside = fr.alpha == 0
    assert outside.any() and (~outside).any()
    np.testing.assert_array_equal(comp.pixels[outside], plate.pixels[outside])


def test_a_plate_box_reads_as_the_whole_plate_cut(model):
    frame = model.frames[2]
    whole = model.detail.plates.read(frame)
    h, w = whole.shape[:2]
    box = (w // 5, h // 4, w - 3, h - 7)
    np.testing.assert_allclose(model.detail.plates.read(frame, box), whole[box[1]:box[3], box[0]:box[2]], atol=1e-6)
    with pytest.raises(InputError, match="outside"):
        model.detail.plates.read(frame, (0, 0, w + 1, h))
    # a fresh cache asked for two bands of rows, then the first again: each read as the whole plate has it
    from vq_models.detail import PlateFrames

    plates = PlateFrames(model.shot)
    for b in ((2, 3, w - 1, h // 3), (0, h // 2, w, h), (2, 3, w - 1, h // 3)):
        np.testing.assert_allclose(plates.read(frame, b), whole[b[1]:b[3], b[0]:b[2]], atol=1e-6)
    top, rows, _ = plates.cached(frame)
    assert top == 3 and rows.shape[0] == h - 3  # widened to cover both asks, not the whole frame


def test_plate_rows_share_one_budget_and_leave_with_their_shot(model):
    """Two shots' plate frames share one cache: the budget drops the least recently used first but keeps the
    two latest, and a shot's rows leave the cache when the shot is gone."""
    import gc

    from vq_models.detail import PlateFrames, PlateRowCache

    frame_bytes = model.detail.plates.read(model.frames[0]).nbytes
    cache = PlateRowCache(budget_mib=2.5 * frame_bytes / 2**20)
    first, second = PlateFrames(model.shot, cache), PlateFrames(model.shot, cache)
    first.read(model.frames[0])
    first.read(model.frames[1])
    second.read(model.frames[2])  # three frames over a budget of two and a half: the oldest goes
    assert first.cached(model.frames[0]) is None and first.cached(model.frames[1]) is not None
    assert second.cached(model.frames[2]) is not None and cache.nbytes() == 2 * frame_bytes
    first.read(model.frames[1])  # a hit makes it the most recent: the next read drops the other shot's frame
    second.read(model.frames[3])
    assert second.cached(model.frames[2]) is None and first.cached(model.frames[1]) is not None
    cache.budget_mib = 0  # the two latest always stay
    assert cache.nbytes() == 2 * frame_bytes
    del first
    gc.collect()
    assert cache.nbytes() == frame_bytes and second.cached(model.frames[3]) is not None
    with pytest.raises(InputError, match="plate cache budget"):
        cache.budget_mib = float("nan")


def test_a_frame_the_caller_read_from_the_shots_plate_is_taken_as_read(model):
    """A farm render reads the whole plate frame to composite over; offered to the detail pass it is used
    instead of a second read of the file, the render unchanged. A frame from another file or another window
    is refused."""
    from vq_models.detail import PlateFrames, PlateRowCache
    from vq_models.io.sources import open_source

    frame = model.frames[4]
    path = model.detail.plates.source_path()
    with open_source(str(path), colorspace=model.shot.plate.get("colorspace") or None) as source:
        image = source.read(frame)
    plates = PlateFrames(model.shot, PlateRowCache())
    assert not plates.offer(frame, image, path.parent / "elsewhere.%04d.exr")
    cropped = ImageData(image.pixels[1:], image.channels, (0, 1, image.pixels.shape[1], image.pixels.shape[0] - 1),
                        image.display_window, colorspace=image.colorspace)
    assert not plates.offer(frame, cropped, path)
    assert plates.cached(frame) is None
    assert plates.offer(frame, image, str(path))
    top, rows, _ = plates.cached(frame)
    assert top == 0 and np.array_equal(rows, image.rgb())
    reads = []
    plates._read_rows = lambda *a: reads.append(a)  # a second read of the file would land here
    np.testing.assert_array_equal(plates.read(frame, (3, 5, 40, 30)), model.detail.plates.read(frame, (3, 5, 40, 30)))
    assert reads == []


def test_unreadable_plate_falls_back_to_none_and_refuses_plate(tiny_shot, tmp_path):
    shot = tmp_path / "shot"
    shutil.copytree(tiny_shot, shot)
    meta = json.loads((shot / "shot.json").read_text())
    meta["plate"]["source"] = str(tmp_path / "moved" / "frame.%04d.exr")
    (shot / "shot.json").write_text(json.dumps(meta))
    m = ShotModel.load(shot)
    assert m.render_frame(m.frames[0]).detail.mode == "none"
    with pytest.raises(InputError, match="plate source"):
        m.render_frame(m.frames[0], detail="plate")
    with pytest.raises(InputError, match="detail 'sharp'"):
        m.render_frame(m.frames[0], detail="sharp")


def test_a_plate_of_another_size_is_refused_not_sliced(tiny_shot, tmp_path):
    shot = tmp_path / "shot"
    shutil.copytree(tiny_shot, shot)
    meta = json.loads((shot / "shot.json").read_text())
    meta["plate"]["display_window"] = [0, 0, 200, 200]  # the shot says 200², the source files are 96²
    (shot / "shot.json").write_text(json.dumps(meta))
    m = ShotModel.load(shot)
    assert not m.detail.available()
    with pytest.raises(InputError, match="plate is 96x96 but shot.json's plate is 200x200"):
        m.detail.plates.read(m.frames[0])


def test_a_donor_band_around_a_region_is_the_whole_windows_band_there(model):
    """The donor is read, warped and split only around the changed regions, with a margin that lets the blur
    see what it would over the whole render window; a band asked for outside its box refuses."""
    from vq_models.runtime import _footprint

    frame, donor = model.frames[2], model.frames[5]
    (x0, y0, x1, y1), sub = _footprint(model.shot.transform(frame), model.shot.crop_size, model.shot.plate_size)
    size = (x1 - x0, y1 - y0)
    weight = np.zeros((size[1], size[0]), np.float32)
    cy, cx = size[1] // 2, size[0] // 3
    weight[cy - 6:cy + 6, cx - 8:cx + 8] = 1.0
    sigma = 3.0
    band = model.detail._donor_band(donor, [weight], sub, size, sigma)
    rows, cols = band.box
    assert (rows.stop - rows.start) * (cols.stop - cols.start) < size[0] * size[1] / 2
    whole = DonorBand.of(warp_donor(model.detail.plates.read(donor), model.shot.transform(donor), sub, size), sigma)
    box = (slice(cy - 6, cy + 6), slice(cx - 8, cx + 8))
    np.testing.assert_allclose(band.over(box), whole.over(box), atol=2e-3)
    assert np.abs(whole.over(box)).max() > 0.01  # the plate has detail there to compare
    with pytest.raises(ValueError, match="does not cover"):
        band.over((slice(0, size[1]), slice(0, size[0])))


def test_a_part_moved_within_the_frame_takes_its_own_plate_band_moved(model):
    """Where an op moved a part (a gazing iris), the band is this frame's plate from the shift back: the
    part's own texture and grain at its new place, not a soft render band."""
    from vq_models.edits.spec import DetailMove

    s, L = model.shot.crop_size, model.label_size
    crop_is_sub = CropTransform.from_plate_to_crop(np.array([[1.0, 0, 0.0], [0, 1.0, 0.0]]))
    plate = _texture(s, s, seed=7)
    landed = np.zeros((L, L), bool)
    landed[L // 3:L // 3 + 4, L // 2:L // 2 + 5] = True
    step = s // L  # plate pixels per label pixel here
    moved, shifts = model.detail._moved_bands(plate, [DetailMove(landed, (2.0, 0.0))], crop_is_sub, (s, s), L,
                                              render_px=1.0, sigma=2.0)
    assert shifts == [(2.0 * step, 0.0)]
    (weight, band), = moved
    inside = (slice(L // 3 * step + 2, (L // 3 + 4) * step - 2), slice(L // 2 * step + 2, (L // 2 + 5) * step - 2))
    assert weight[inside].min() > 0.5
    expect = DonorBand.of(np.roll(plate, 2 * step, axis=1), 2.0)  # pixel x takes the plate's x - shift
    np.testing.assert_allclose(band.over(inside), expect.over(inside), atol=1e-5)


def test_a_part_moved_between_plate_pixels_keeps_its_grain(model):
    """A gaze moves by fractions of a plate pixel: the moved band is resampled with a filter that keeps the
    plate's grain (bilinear at half a pixel averages neighbours and halves the grain's energy)."""
    from vq_models.edits.spec import DetailMove

    s, L = model.shot.crop_size, model.label_size
    crop_is_sub = CropTransform.from_plate_to_crop(np.array([[1.0, 0, 0.0], [0, 1.0, 0.0]]))
    plate = gaussian(_texture(s, s, seed=8), 0.7)  # grain a few pixels across, as film's
    landed = np.zeros((L, L), bool)
    landed[L // 3:L // 3 + 6, L // 3:L // 3 + 8] = True
    step = s / L
    (weight, band), = model.detail._moved_bands(plate, [DetailMove(landed, (2.0 + 0.5 / step, 0.0))], crop_is_sub,
                                                (s, s), L, render_px=1.0, sigma=2.0)[0]
    ys, xs = np.nonzero(weight > 0.99)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    assert band.over(box).std() > 0.9 * DonorBand.of(plate, 2.0).over(box).std()


def test_a_gaze_render_moves_the_plates_iris_detail(model, monkeypatch):
    """With the iris's own plate band moved along, a gaze keeps more of the plate's high-frequency energy
    where it shows than with the render's band there (the op without its moves)."""
    import dataclasses

    from vq_models.edits import program as program_module
    from vq_models.io.colour import to_network

    frame = model.frames[3]
    program = {"version": 1, "edits": [{"op": "gaze", "eye": "both", "value": [0.3, 0.0]}]}
    plate = model.detail.plates.read(frame)

    def sharpness() -> tuple[float, list | None]:
        fr = model.render_frame(frame, program, mode="edit-only", detail="plate")
        x, y, w, h = fr.box
        shown = fr.box_alpha > 0.5
        edited = to_network(fr.composite(model.detail.plates.image(frame)))[y:y + h, x:x + w]
        return laplacian_energy(edited, shown) / laplacian_energy(plate[y:y + h, x:x + w], shown), fr.detail.moves

    moved, moves = sharpness()
    assert moves and all(abs(dx) > 0 for dx, _ in moves)
    gaze = program_module.OPS["gaze"]
    unmoved_gaze = dataclasses.replace(gaze, run=lambda *a: dataclasses.replace(gaze.run(*a), moves=[]))
    monkeypatch.setitem(program_module.OPS, "gaze", unmoved_gaze)
    unmoved, none = sharpness()
    assert none is None and moved > unmoved + 0.03


def test_a_keyframed_gaze_glides_between_label_pixels(model):
    """Values whose shift is under half a label pixel leave the labels alone but still move the iris on the
    plate, by more as the value grows (the composites move away from the first one step by step, inside
    one alpha around the irises), and the plate shift the detail pass reports grows with the value."""
    from vq_models.io.colour import to_network

    frame = model.frames[3]
    image = model.detail.plates.image(frame)
    comps, alphas, shifts = [], [], []
    for value in (0.0, 0.015, 0.03, 0.045):
        program = {"version": 1, "edits": [{"op": "gaze", "eye": "both", "value": [value, 0.0]}]}
        assert not model.edited_labels(frame, program)[1].any()  # all of it under half a label pixel
        fr = model.render_frame(frame, program, mode="edit-only", detail="plate")
        comps.append(to_network(fr.composite(image)))
        alphas.append(fr.alpha)
        shifts.append(fr.detail.moves[0][0] if fr.detail.moves else 0.0)
    assert not alphas[0].any() and np.array_equal(comps[0], to_network(image))  # gaze 0 changes nothing
    shown = alphas[1] > 0
    assert shown.any() and all(np.array_equal(a > 0, shown) for a in alphas[2:])
    iris = model.regions(frame)["left_iris"] | model.regions(frame)["right_iris"]
    assert shown.sum() < 0.25 * shown.size and iris.any()  # around the irises, not the face
    apart = [float(np.abs(c - comps[1])[shown].mean()) for c in comps[1:]]
    assert apart[0] == 0.0 and apart[1] > 0.0 and apart[2] > apart[1], apart
    assert shifts[1] > 0 and np.allclose(np.diff(shifts), shifts[1], atol=0.015), shifts  # reported to 0.01 px


def test_a_keyframed_eye_open_lowers_the_lid_between_label_rows(model):
    """eye_open values just under 1 close no label row, yet each lowers the lid on the plate a little more:
    the composites move away from the unedited plate step by step, inside one alpha around the eyes, and
    the plate outside that alpha is untouched."""
    from vq_models.io.colour import to_network

    frame = max(model.frames, key=lambda f: model.exemplars.opening_at(f, "left") or 0.0)  # not mid-blink
    image = model.detail.plates.image(frame)
    plate = to_network(image)
    comps, alphas = [], []
    for value in (1.0, 0.97, 0.94, 0.91):
        program = {"version": 1, "edits": [{"op": "eye_open", "value": value}]}
        assert not model.edited_labels(frame, program)[1].any()  # every column keeps its rows
        fr = model.render_frame(frame, program, mode="edit-only", detail="plate")
        comps.append(to_network(fr.composite(image)))
        alphas.append(fr.alpha)
    assert not alphas[0].any() and np.array_equal(comps[0], plate)
    shown = alphas[1] > 0
    assert shown.any() and all(np.array_equal(a > 0, shown) for a in alphas[2:])
    eyes = model.regions(frame)["left_eye"] | model.regions(frame)["right_eye"]
    assert shown.sum() < 0.25 * shown.size and eyes.any()
    for comp in comps[1:]:
        np.testing.assert_array_equal(comp[~shown], plate[~shown])
    apart = [float(np.abs(c - plate)[shown].mean()) for c in comps[1:]]
    assert 0.0 < apart[0] < apart[1] < apart[2], apart


def test_a_squint_shows_the_frames_own_lid_pulled_down(model, monkeypatch):
    """eye_open half way with ``pull``: the lid's detail is the frame's own lid pulled down (ColumnPull), which
    keeps more of the plate's high-frequency energy where the edit shows than the donor or render band the op
    gets without it, and reports its pull; the plate outside the alpha is untouched either way."""
    import dataclasses

    from vq_models.edits import program as program_module
    from vq_models.io.colour import to_network

    frame = max(model.frames, key=lambda f: model.exemplars.opening_at(f, "left") or 0.0)
    program = {"version": 1, "edits": [{"op": "eye_open", "value": 0.55, "pull": True}]}
    image = model.detail.plates.image(frame)
    plate = to_network(image)

    def sharpness() -> tuple[float, list | None]:
        fr = model.render_frame(frame, program, mode="edit-only", detail="plate")
        comp = to_network(fr.composite(image))
        np.testing.assert_array_equal(comp[fr.alpha <= 0], plate[fr.alpha <= 0])
        shown = fr.alpha > 0.5
        return laplacian_energy(comp, shown) / laplacian_energy(plate, shown), fr.detail.moves

    pulled, moves = sharpness()
    assert moves and all(dy > 0 for _, dy in moves)
    eye_open = program_module.OPS["eye_open"]
    unpulled_eye = dataclasses.replace(eye_open, run=lambda *a: dataclasses.replace(eye_open.run(*a), moves=[]))
    monkeypatch.setitem(program_module.OPS, "eye_open", unpulled_eye)
    unpulled, none = sharpness()
    assert none is None and pulled > unpulled + 0.03, (pulled, unpulled)


def test_a_closed_eye_with_pull_shows_the_frames_own_lashes_along_the_lid(model, monkeypatch):
    """eye_open 0 with ``pull`` on a shot with no blink to borrow (the column rule): the stretched skin gives
    way (strength 0), but the frame's own lashes, moved down to the closed lid's edge, still show, so the lid
    keeps more of the plate's fine detail than the render's band alone, and the plate outside the alpha is
    untouched. Without ``pull`` nothing moves."""
    from vq_models.io.colour import to_network

    monkeypatch.setattr(model.exemplars, "close", lambda *a, **k: None)  # every eye takes the column rule
    frame = max(model.frames, key=lambda f: model.exemplars.opening_at(f, "left") or 0.0)
    image = model.detail.plates.image(frame)
    plate = to_network(image)

    def closed(pull: bool) -> tuple[float, list | None, np.ndarray]:
        edit = {"op": "eye_open", "value": 0.0, **({"pull": True} if pull else {})}
        fr = model.render_frame(frame, {"version": 1, "edits": [edit]}, mode="edit-only", detail="plate")
        comp = to_network(fr.composite(image))
        np.testing.assert_array_equal(comp[fr.alpha <= 0], plate[fr.alpha <= 0])
        return laplacian_energy(comp, fr.alpha > 0.5), fr.detail.moves, comp

    pulled, moves, with_lashes = closed(True)
    drawn, none, without = closed(False)
    assert moves and all(dy > 0 for _, dy in moves) and none is None
    assert pulled > drawn, (pulled, drawn)
    assert np.abs(with_lashes - without).max() > 0.05  # the lashes show, not a rounding of the band


def test_a_moved_iris_painted_over_is_not_drawn_back(model):
    """Paint over a program's result (the server's paint input): where the given map no longer shows the
    moved iris, the iris's moved detail is not applied; where it still does, it is."""
    frame = model.frames[3]
    program = {"version": 1, "edits": [{"op": "gaze", "eye": "both", "value": [0.3, 0.0]}]}
    edited, _ = model.edited_labels(frame, program)
    full = model.render_frame(frame, program, mode="edit-only", detail="plate", labels=edited)
    assert full.detail.moves and len(full.detail.moves) == 2
    painted = edited.copy()
    half = model.label_size // 2
    left = model.render_frame(frame, program, mode="edit-only", detail="plate")
    changed = edited != model.label_map(frame)
    painted[:, :half][changed[:, :half]] = model.label_map(frame)[:, :half][changed[:, :half]]  # undo one eye
    one = model.render_frame(frame, program, mode="edit-only", detail="plate", labels=painted)
    assert one.detail.moves is not None and len(one.detail.moves) == 1
    assert left.detail.moves == full.detail.moves


def test_donor_band_stops_inside_the_donors_own_silhouette(model):
    """Where two frames' face outlines differ (a smile widens the cheeks), the donor's silhouette against the
    background must not be pasted across this face as a bright line: its band stops inside its own face."""
    import cv2

    shot, detail = model.shot, model.detail
    donor = model.frames[3]
    s = shot.crop_size
    crop_is_sub = CropTransform.from_plate_to_crop(np.array([[1.0, 0, 0.0], [0, 1.0, 0.0]]))
    label_px = s / model.label_size
    support = detail.donor_support(donor, crop_is_sub, (s, s), label_px)
    face = shot.fg_mask(donor) >= 0.5
    assert face.any() and (~face).any()
    edge = int(round(detail.settings.donor_edge * s / detail.render_size))
    silhouette = face & ~(cv2.erode(face.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    deep = cv2.erode(face.astype(np.uint8), np.ones((6 * edge + 1, 6 * edge + 1), np.uint8)) > 0
    assert deep.any()
    assert support[~face].max() < 0.1 and support[silhouette].max() < 0.1
    assert support[deep].min() > 0.9




def test_a_donor_rule_binds_only_the_regions_its_op_changed():
    from vq_models.detail import region_exclude
    from vq_models.edits.spec import DonorRule

    eye, mouth = np.zeros((16, 16), bool), np.zeros((16, 16), bool)
    eye[2:4, 2:6], mouth[10:12, 5:10] = True, True
    rules = [DonorRule(eye, frozenset({3, 4})), DonorRule(np.zeros((16, 16), bool), frozenset({9}))]
    assert region_exclude(eye, {1}, rules) == {1, 3, 4}
    assert region_exclude(mouth, {1}, rules) == {1}
    grown = eye.copy()
    grown[4, 2:6] = True  # a region that merely contains the rule's pixels is bound too
    assert region_exclude(grown, set(), rules) == {3, 4}


def test_an_ops_donor_rule_reaches_the_detail_pass(model, monkeypatch):
    """An op's ``donor_exclude`` (eye_open's: no open-eyed frame lends to a closed eye) reaches the detail pass
    through ShotModel.render_frame."""
    from vq_models.edits import program as program_module
    from vq_models.edits.spec import Operation, OpSpec

    frame = model.frames[6]
    # the labels of the frame that differs most from this one, so that frames agreeing with it can lend
    other = max(model.frames, key=lambda f: int((model.label_map(f) != model.label_map(frame)).sum()))

    def borrow(labels, value, params, prior, ctx):
        return model.label_map(other).copy()

    free = model.render_frame(frame, None, mode="edit-only", labels=np.stack([model.label_map(other)] * 3))
    lent = {d for d, _ in free.detail.donors if d is not None}
    assert lent, "the test shot should have frames that agree with the borrowed labels"
    monkeypatch.setitem(program_module.OPS, "borrow", Operation(OpSpec("scalar", 0.0, 1.0), borrow,
                                                                lambda value, params, ctx: frozenset(lent)))
    ruled = model.render_frame(frame, {"version": 1, "edits": [{"op": "borrow", "value": 1.0}]}, mode="edit-only")
    assert len(ruled.detail.donors) == len(free.detail.donors)
    assert not lent & {d for d, _ in ruled.detail.donors}
    np.testing.assert_array_equal(ruled.crop, free.crop)  # the rule moves where detail comes from, not the render

