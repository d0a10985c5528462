"""The passive EMA vector quantizer: cosine assignment, Eq. 2, warm start, dead codes, no gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vq_models.quantizer import VectorQuantizer, cosine_kmeans
from vq_models.vq_input import (
    EYE_MOUTH_SPLIT,
    build_vq_input,
    context_colour,
    masked_instance_norm,
    region_channels,
    region_tap_multiplier,
    rgb_multiplier,
    scale_multipliers,
)

torch.set_num_threads(1)


def _as_map(vectors: torch.Tensor) -> torch.Tensor:
    """(N, d) -> (1, d, 1, N) so a list of vectors is a one-row feature map."""
    return vectors.T[None, :, None, :]


def _primed(codebook: torch.Tensor, counts: torch.Tensor, decay: float, threshold: float = 0.0) -> VectorQuantizer:
    vq = VectorQuantizer(num_codes=codebook.shape[0], dim=codebook.shape[1], decay=decay,
                         dead_code_threshold=threshold)
    vq.codebook.copy_(codebook)
    vq.cluster_size.copy_(counts)
    vq.cluster_sum.copy_(codebook * counts[:, None])
    vq.initialized.fill_(True)
    return vq


def test_assignment_is_nearest_by_cosine_not_euclidean():
    codebook = torch.tensor([[1.0, 0.0], [10.0, 10.0]])
    vq = _primed(codebook, torch.ones(2), decay=0.5)
    # (0.9, 1.0) is closer to (1, 0) in Euclidean distance but points along (1, 1)
    x = torch.tensor([[0.9, 1.0], [5.0, 0.1], [-1.0, -1.2], [3.0, 2.9]])
    codes = vq.assign(_as_map(x)).flatten()
    brute = (F.normalize(x, dim=1) @ F.normalize(codebook, dim=1).T).argmax(1)
    assert codes.tolist() == brute.tolist() == [1, 0, 0, 1]
    assert torch.cdist(x[:1], codebook).argmin().item() == 0  # Euclidean would disagree


def test_ema_update_matches_eq2_hand_computed():
    gamma = 0.25
    codebook = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    counts = torch.tensor([2.0, 4.0, 1.0])
    vq = _primed(codebook, counts, decay=gamma)
    vq.train()
    x = torch.tensor([[2.0, 0.2], [3.0, -0.3], [0.1, 5.0]])  # two go to code 0, one to code 1, none to 2
    codes, stats = vq(_as_map(x))
    assert codes.flatten().tolist() == [0, 0, 1]
    assert stats.usage.tolist() == [2, 1, 0]
    # N_j := N_j * g + n_j (1 - g)
    expected_n = torch.tensor([2 * 0.25 + 2 * 0.75, 4 * 0.25 + 1 * 0.75, 1 * 0.25])
    assert torch.allclose(vq.cluster_size, expected_n)
    # m_j := m_j * g + sum g_i (1 - g), with m_j = z_j * N_j before the step
    m0 = torch.tensor([2.0, 0.0]) * 0.25 + torch.tensor([5.0, -0.1]) * 0.75
    m1 = torch.tensor([0.0, 4.0]) * 0.25 + torch.tensor([0.1, 5.0]) * 0.75
    m2 = torch.tensor([-1.0, 0.0]) * 0.25
    assert torch.allclose(vq.cluster_sum, torch.stack([m0, m1, m2]))
    assert torch.allclose(vq.codebook, torch.stack([m0 / expected_n[0], m1 / expected_n[1], m2 / expected_n[2]]))


def test_background_pixels_are_assigned_but_not_counted():
    vq = _primed(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2), decay=0.0)
    x = torch.tensor([[1.0, 0.1], [0.1, 1.0], [0.0, 9.0], [9.0, 0.0]])
    mask = torch.tensor([[[1.0, 1.0, 0.2, 0.0]]])  # (B=1, H=1, W=4)
    codes, stats = vq(_as_map(x), fg_mask=mask, update=True)
    assert codes.flatten().tolist() == [0, 1, 1, 0]
    assert stats.usage.tolist() == [1, 1]
    assert stats.foreground_pixels == 2 and stats.background_pixels == 2
    # decay 0: codebook becomes exactly the foreground member means
    assert torch.allclose(vq.codebook, torch.tensor([[1.0, 0.1], [0.1, 1.0]]))


def test_warm_start_gives_k_distinct_centroids_even_with_duplicates():
    torch.manual_seed(0)
    centres = F.normalize(torch.randn(6, 8), dim=1) * 3
    pts = centres.repeat_interleave(50, 0) + 0.01 * torch.randn(300, 8)
    pts[:40] = pts[0]  # many identical points
    vq = VectorQuantizer(num_codes=16, dim=8, decay=0.5, kmeans_iters=100, dead_code_threshold=0.0).train()
    x = pts.T.reshape(1, 8, 15, 20)
    vq(x)
    assert bool(vq.initialized)
    unit = F.normalize(vq.codebook, dim=1)
    sim = unit @ unit.T
    off = sim[~torch.eye(16, dtype=torch.bool)]
    assert off.max() < 1.0 - 1e-7
    # every true cluster centre is matched by some code (k-means found the structure)
    assert ((F.normalize(centres, dim=1) @ unit.T).max(1).values > 0.99).all()


def test_cosine_kmeans_with_fewer_points_than_codes_is_still_distinct():
    pts = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    cents, counts = cosine_kmeans(pts, 5, iters=10, generator=torch.Generator().manual_seed(1))
    unit = F.normalize(cents, dim=1)
    sim = unit @ unit.T
    assert (sim[~torch.eye(5, dtype=torch.bool)] < 1.0 - 1e-7).all()
    assert counts.sum() == 2


def test_dead_codes_are_reseeded_from_batch_features():
    torch.manual_seed(0)
    codebook = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    vq = _primed(codebook, torch.tensor([5.0, 5.0, 5.0]), decay=0.1, threshold=2.0)
    vq.train()
    x = torch.tensor([[1.0, 0.2], [0.2, 1.0], [2.0, 0.1], [0.3, 3.0]])  # nobody picks code 2
    _, stats = vq(_as_map(x))
    assert stats.dead_restarts == 1
    assert int(vq.restarts_total) == 1
    # the re-seeded code is exactly one of the batch features, with its count reset to the threshold
    assert any(torch.equal(vq.codebook[2], row) for row in x)
    assert vq.cluster_size[2].item() == pytest.approx(2.0)
    assert torch.allclose(vq.cluster_sum[2], vq.codebook[2] * 2.0)


def test_no_gradient_flows_through_the_quantizer():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 1)  # stands in for a generator layer
    inp = torch.randn(2, 3, 8, 8, requires_grad=True)
    feat = conv(inp)
    x = build_vq_input({8: feat}, (8,), 8, torch.ones(2, 8, 8))
    assert not x.requires_grad
    vq = VectorQuantizer(num_codes=4, dim=4, kmeans_iters=5).train()
    codes, _ = vq(x)
    assert not codes.requires_grad and codes.dtype == torch.long
    assert inp.grad is None and conv.weight.grad is None
    assert all(not b.requires_grad for b in vq.buffers())
    assert list(vq.parameters()) == []


def test_build_vq_input_normalises_upsamples_concatenates_and_masks():
    torch.manual_seed(0)
    feats = {4: torch.randn(2, 3, 4, 4) * 5 + 2, 8: torch.randn(2, 5, 8, 8)}
    mask = torch.zeros(2, 16, 16)
    mask[:, :, :8] = 1.0
    x = build_vq_input(feats, (4, 8), 16, mask)
    assert x.shape == (2, 8, 16, 16)
    assert torch.all(x[..., 9:] == 0)  # right half is background
    # instance norm then bilinear upsample keeps the mean near 0 and the std near 1 in the fg half
    full = build_vq_input(feats, (4,), 4, None)
    assert torch.allclose(full.mean(dim=(2, 3)), torch.zeros(2, 3), atol=1e-5)


def test_state_dict_round_trip_restores_codebook_and_flag():
    vq = VectorQuantizer(num_codes=4, dim=3, kmeans_iters=3).train()
    vq(torch.randn(1, 3, 6, 6))
    other = VectorQuantizer(num_codes=4, dim=3)
    other.load_state_dict(vq.state_dict())
    assert bool(other.initialized)
    assert torch.equal(other.codebook, vq.codebook)
    x = torch.randn(1, 3, 5, 5)
    assert torch.equal(other.assign(x), vq.assign(x))


def test_scale_multipliers_equalise_each_scales_share_of_the_distance():
    torch.manual_seed(0)
    # all taps at the label size, so instance norm alone sets each channel's energy (no upsampling blur)
    feats = {4: torch.randn(1, 48, 16, 16) * 3 + 1, 8: torch.randn(1, 12, 16, 16), 16: torch.randn(1, 4, 16, 16)}
    res = (4, 8, 16)

    def shares(x: torch.Tensor) -> list[float]:
        return [float(x[:, :48].pow(2).sum()), float(x[:, 48:60].pow(2).sum()), float(x[:, 60:].pow(2).sum())]

    plain = shares(build_vq_input(feats, res, 16, None))
    # plain concatenation: a scale's squared norm is proportional to its channel count (48 : 12 : 4)
    assert plain[0] / plain[1] == pytest.approx(4.0, rel=1e-3) and plain[1] / plain[2] == pytest.approx(3.0, rel=1e-3)
    weighted = shares(build_vq_input(feats, res, 16, None, scale_multipliers([48, 12, 4], [1.0, 1.0, 2.0])))
    assert weighted[0] / weighted[1] == pytest.approx(1.0, rel=1e-3)
    assert weighted[2] / weighted[1] == pytest.approx(2.0, rel=1e-3)
    assert scale_multipliers([48, 12], ()) == [1.0, 1.0]
    with pytest.raises(ValueError):
        scale_multipliers([48, 12], [1.0])
    with pytest.raises(ValueError):
        build_vq_input(feats, res, 16, None, [1.0])


def test_rgb_tap_joins_last_with_its_weighted_share_and_area_filtered():
    torch.manual_seed(0)
    feats = {16: torch.randn(2, 12, 16, 16)}
    # a 64² image whose 4x4 blocks alternate black/white: area-shrunk to 16² it is flat grey, bilinear would alias
    checker = ((torch.arange(64)[:, None] // 2 + torch.arange(64)[None, :] // 2) % 2).float()
    image = torch.stack([checker, torch.rand(64, 64), torch.rand(64, 64)])[None].repeat(2, 1, 1, 1)
    mult = scale_multipliers([12], [1.0])
    x = build_vq_input(feats, (16,), 16, None, mult, image=image, image_multiplier=rgb_multiplier(3.0))
    assert x.shape == (2, 15, 16, 16)
    feat_share, rgb_share = float(x[:, :12].pow(2).sum()), float(x[:, 12:].pow(2).sum())
    # weight 3 against the tap's 1, normalised after the area filter; the checker channel averaged away to
    # a constant (0 after instance norm) instead of aliasing into stripes, so 2 of the 3 channels carry it
    assert float(x[:, 12].abs().max()) < 1e-3
    assert rgb_share / feat_share == pytest.approx(2.0, rel=1e-2)
    off = build_vq_input(feats, (16,), 16, None, mult, image=image, image_multiplier=0.0)
    assert off.shape[1] == 12 and torch.allclose(off, x[:, :12])
    with pytest.raises(ValueError, match="RGB image"):
        build_vq_input(feats, (16,), 16, None, mult, image_multiplier=1.0)
    with pytest.raises(ValueError):
        rgb_multiplier(-1.0)


def test_context_tap_tells_a_catchlight_from_a_skin_highlight():
    """Two near-white pixels, one on a dark pupil and one on bright skin, with the same features: by colour
    they are one vector; the context tap (the colour around them) pulls them apart."""
    rows = torch.arange(16.0)[:, None].expand(16, 16)  # features vary by row only: equal at both pixels
    feats = {16: torch.stack([rows, rows.sin(), rows.cos(), rows.sqrt()])[None]}
    image = torch.full((1, 3, 16, 16), 0.8)
    image[..., :, :8] = 0.05  # left half: the pupil
    image[..., 8, 3] = image[..., 8, 12] = 0.95  # a catchlight on it, a highlight on the skin
    mult = scale_multipliers([4], [1.0])

    def cos(x: torch.Tensor) -> float:
        return float(F.cosine_similarity(x[0, :, 8, 3], x[0, :, 8, 12], dim=0))

    colour = build_vq_input(feats, (16,), 16, None, mult, image=image, image_multiplier=rgb_multiplier(4.0))
    both = build_vq_input(feats, (16,), 16, None, mult, image=image, image_multiplier=rgb_multiplier(4.0),
                          context_multiplier=rgb_multiplier(4.0), context_sigma=1.5 / 16)
    assert colour.shape[1] == 7 and both.shape[1] == 10
    assert torch.allclose(both[:, :7], colour)  # the context joins last, the other taps unchanged
    assert cos(colour) > 0.99 and cos(both) < 0.6, (cos(colour), cos(both))
    # its share of the squared norm is its weight in the taps' units, like the RGB tap's
    ctx = both[:, 7:].pow(2).sum() / both[:, 4:7].pow(2).sum()
    assert float(ctx) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="RGB image"):
        build_vq_input(feats, (16,), 16, None, mult, context_multiplier=1.0)


def test_context_colour_averages_the_foreground_only():
    """A face pixel beside the background takes its context from face pixels: the set dressing behind the
    actor must not change the hairline's codes. Where the mask is zero the pixel keeps its own colour."""
    rgb = torch.zeros(1, 3, 12, 12)
    rgb[..., :6] = torch.tensor([0.6, 0.3, 0.2])[:, None, None]  # face, left
    rgb[..., 6:] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # blue screen, right
    fg = torch.zeros(1, 1, 12, 12)
    fg[..., :6] = 1.0
    out = context_colour(rgb, 2.0, fg)
    assert torch.allclose(out[..., :6], rgb[..., :6], atol=1e-5)
    plain = context_colour(rgb, 2.0)
    assert float((plain[0, 2, :, 5] - rgb[0, 2, :, 5]).min()) > 0.1  # unmasked, the blue bleeds in
    far = torch.zeros(1, 1, 12, 12)
    far[..., :2] = 1.0
    assert torch.allclose(context_colour(rgb, 1.0, far)[..., 11], rgb[..., 11])  # no face near: own colour
    with pytest.raises(ValueError, match="sigma"):
        context_colour(rgb, 0.0)


def test_context_tap_statistics_ignore_the_background():
    """The same face in front of two different backgrounds gives the same context tap on the face."""
    torch.manual_seed(0)
    face = torch.rand(1, 3, 16, 16)
    fg = torch.zeros(1, 1, 16, 16)
    fg[..., 3:13, 3:13] = 1.0
    feats = {16: torch.randn(1, 4, 16, 16)}
    taps = []
    for backdrop in (0.0, 1.0):
        image = torch.where(fg > 0, face, torch.full_like(face, backdrop))
        x = build_vq_input(feats, (16,), 16, fg, None, image=image, context_multiplier=1.0, context_sigma=0.1)
        taps.append(x[:, 4:][..., 3:13, 3:13])
    assert torch.allclose(taps[0], taps[1], atol=1e-5)
    y = masked_instance_norm(face, fg)[..., 3:13, 3:13]
    assert float(y.mean()) == pytest.approx(0.0, abs=1e-5) and float(y.var(unbiased=False)) == pytest.approx(1.0, rel=1e-3)
    assert torch.allclose(masked_instance_norm(face, None), F.instance_norm(face))


def _small_part_points(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """1000 'skin' vectors spread around one direction, 10 'pupil' vectors along another (1 %)."""
    g = torch.Generator().manual_seed(seed)
    skin = torch.tensor([1.0, 0.0, 0.0, 0.0]) + 0.15 * torch.randn(1000, 4, generator=g)
    pupil = torch.tensor([0.0, 0.0, 1.0, 0.0]) + 0.02 * torch.randn(10, 4, generator=g)
    return torch.cat([skin, pupil]), torch.tensor([0.0, 0.0, 1.0, 0.0])


def test_kmeans_pp_seeds_find_a_one_percent_part():
    from vq_models.quantizer import kmeans_pp_seeds

    pts, pupil = _small_part_points()
    hits = 0
    for s in range(10):
        seeds = kmeans_pp_seeds(pts, 3, torch.Generator().manual_seed(s))
        assert seeds.shape == (3, 4)
        hits += int((F.normalize(seeds, dim=1) @ pupil).max() > 0.95)
    assert hits >= 9  # uniform seeding would hit the 1 % part in about 3 of 10 tries


def test_dead_code_moves_to_the_worst_served_features():
    torch.manual_seed(0)
    codebook = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, -1.0, 0.0]])
    vq = _primed(codebook, torch.tensor([50.0, 50.0, 0.5]), decay=0.5, threshold=2.0).train()
    near = torch.cat([torch.tensor([[1.0, 0.05, 0.0]]).repeat(40, 1), torch.tensor([[0.05, 1.0, 0.0]]).repeat(40, 1)])
    far = torch.tensor([[0.0, 0.0, 1.0]])  # served by no code: a part the codebook has not found
    vq(_as_map(torch.cat([near, far])))
    assert torch.allclose(vq.codebook[2], far[0])


def test_refine_is_lloyd_over_all_points_and_gives_a_small_part_its_code():
    pts, pupil = _small_part_points(1)
    vq = VectorQuantizer(num_codes=3, dim=4, decay=0.9, kmeans_iters=1, dead_code_threshold=1.0)
    # a bad codebook: two codes on skin, one pointing where no vector is (dead)
    vq.codebook.copy_(torch.tensor([[1.0, 0.1, 0.0, 0.0], [1.0, -0.1, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]]))
    vq.initialized.fill_(True)
    passes = vq.refine(pts.half(), iters=20, generator=torch.Generator().manual_seed(0))
    assert 1 <= passes < 20  # converged: assignments stopped changing
    codes = vq.assign(_as_map(pts)).flatten()
    pupil_codes = codes[1000:]
    assert len(pupil_codes.unique()) == 1 and not (codes[:1000] == pupil_codes[0]).any()
    # each code is the mean of its members (Eq. 2 with gamma 0 over the whole set)
    for j in range(3):
        members = pts[codes == j]
        assert torch.allclose(vq.codebook[j], members.mean(0), atol=2e-3)
    assert torch.allclose(vq.cluster_sum, vq.codebook * vq.cluster_size[:, None])


def test_region_tap_splits_the_roi_into_eyes_and_mouth():
    """The region tap: outside the ROI (-1, -1), in an eye (above the split) (1, -1), in the mouth (-1, 1),
    scaled to its share of the squared norm; the other taps are untouched, and it refuses to guess a ROI."""
    torch.manual_seed(0)
    feats = {16: torch.randn(1, 4, 16, 16)}
    roi = torch.zeros(1, 1, 32, 32)  # at crop size: resized to the labels
    roi[..., 8:12, 4:12] = 1.0  # an eye, rows 0.25-0.375 of the height
    roi[..., 22:26, 10:22] = 1.0  # the mouth, rows 0.69-0.81
    mult = scale_multipliers([4], [1.0])
    plain = build_vq_input(feats, (16,), 16, None, mult)
    x = build_vq_input(feats, (16,), 16, None, mult, roi=roi, region_multiplier=region_tap_multiplier(3.0))
    assert x.shape == (1, 6, 16, 16) and torch.allclose(x[:, :4], plain)
    r = x[0, 4:] / region_tap_multiplier(3.0)
    assert torch.allclose(r[:, 5, 4], torch.tensor([1.0, -1.0]))  # eye
    assert torch.allclose(r[:, 12, 8], torch.tensor([-1.0, 1.0]))  # mouth
    assert torch.allclose(r[:, 1, 1], torch.tensor([-1.0, -1.0]))  # skin
    assert float(x[0, 4:, 1, 1].pow(2).sum()) == pytest.approx(3.0)  # its weight, in the taps' units
    assert 6 < EYE_MOUTH_SPLIT * 16 < 11  # between the two in this crop
    assert torch.equal(region_channels(roi, 16) * region_tap_multiplier(3.0), x[:, 4:])
    fg = torch.zeros(1, 1, 16, 16)
    fg[..., :, :8] = 1.0
    masked = build_vq_input(feats, (16,), 16, fg, mult, roi=roi, region_multiplier=1.0)
    assert float(masked[0, 4:, :, 8:].abs().max()) == 0.0  # off the face: nothing, as for every tap
    with pytest.raises(ValueError, match="ROI"):
        build_vq_input(feats, (16,), 16, None, mult, region_multiplier=1.0)
    with pytest.raises(ValueError):
        region_tap_multiplier(-1.0)
