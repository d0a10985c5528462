"""The parametric synthetic face: a per-shot :class:`Identity`, a per-frame :class:`FaceState`, and the
exact 2D geometry (polygons in plate pixels) both imply.

Why a parametric state: a "what-if" frame (eyes closed, no teeth, gaze left, mouth closed) is the same
state with one field changed, so the plate and the what-if differ only where that change shows — the
ground truth we need to measure edits. Geometry is built once here and shared by the rasteriser (labels
and colour) and the tracking export (landmarks5, contours), so labels and tracking can never disagree.

Canonical face space: origin at the face centre, x right, y down, 1 unit = the face's half-width.
A similarity transform (translation, roll, scale) maps it to plate pixels, with the centre of the
top-left pixel at (0, 0). Mild yaw is faked with parallax: inner features slide sideways with depth.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from vq_models.parts import FACE_PARTS

#: Ground-truth part ids, in this order (written to parts.json).
PARTS: tuple[str, ...] = FACE_PARTS
PART_ID: dict[str, int] = {name: i for i, name in enumerate(PARTS)}

#: Below these openings the eye / mouth polygon has no area and is not drawn.
MIN_EYE_OPEN = 0.03
MIN_MOUTH_OPEN = 0.02


@dataclass(frozen=True)
class Identity:
    """Who is on screen: fixed for a shot, drawn from the seed. Colours are display sRGB in [0, 1]."""

    skin: tuple[float, float, float] = (0.86, 0.66, 0.55)
    lips: tuple[float, float, float] = (0.80, 0.53, 0.50)
    hair: tuple[float, float, float] = (0.25, 0.16, 0.10)
    brows: tuple[float, float, float] = (0.30, 0.20, 0.14)
    iris: tuple[float, float, float] = (0.32, 0.45, 0.30)
    background: tuple[float, float, float] = (0.45, 0.50, 0.56)
    face_width: float = 1.0  # canonical half-width multiplier
    face_height: float = 1.32  # canonical half-height of the oval
    eye_spacing: float = 0.40  # eye centre |x|
    eye_height: float = -0.14  # eye centre y
    mouth_y: float = 0.66
    texture_seed: int = 0
    # Proportions (canonical units). The defaults are the original face; ``from_seed(seed)`` keeps them
    # and ``from_seed(seed, vary=True)`` draws them, so parts are not always found at one size and shape.
    jaw_taper: float = 0.28  # how much narrower the oval gets towards the chin
    eye_width: float = 0.22  # half the corner-to-corner width of the lid opening
    eye_upper: float = 0.13  # upper lid arch above the corner line, eye open
    eye_lower: float = 0.085  # lower lid sag below it
    eye_tilt: float = 0.012  # outer-corner lift of the upper lid (canthal tilt)
    iris_radius: float = 0.112
    pupil_radius: float = 0.048
    mouth_width: float = 0.30  # half-width at rest (corner to centre)
    upper_lip: float = 0.085  # upper lip thickness at the middle
    lower_lip: float = 0.10  # lower lip thickness at the middle
    cupid_bow: float = 0.022  # height of the bow's peak in the middle of the upper lip
    jaw_drop: float = 0.30  # how far the lower lip's inner edge travels at mouth_open 1
    teeth_width: float = 0.78  # span of the teeth as a fraction of the mouth half-width
    upper_teeth_show: float = 0.075  # how far the upper teeth reach below the lips' rest line
    lower_teeth_show: float = 0.06  # how far the lower teeth rise above the lower lip's inner edge
    # The shot's key light, which the performance drifts around (see FaceState for the angles), the
    # unlit share of the shading (low: a steeper light gradient across the face) and the exposure.
    light_angle: float = -2.3
    light_elevation: float = 0.8
    light_strength: float = 1.0
    ambient: float = 0.42
    exposure: float = 1.0

    @staticmethod
    def from_seed(seed: int, vary: bool = False) -> Identity:
        """A plausible identity; everything derives from ``seed`` (deterministic).

        Without ``vary`` only colours and a few placements change (the original generator: every existing
        shot and figure stays bit-identical). With ``vary`` the seed also draws the proportions, the skin
        tone over a wider range and the shot's lighting (:func:`_varied`), so a method tuned on one face
        can be tested on faces it was not tuned on.
        """
        rng = np.random.default_rng([int(seed), 7919])
        tone = rng.uniform(0.0, 1.0)
        skin = np.array([0.90, 0.72, 0.62]) * (1 - 0.45 * tone) + np.array([0.02, 0.0, 0.0]) * tone
        lips = skin * np.array([0.92, 0.74, 0.80])  # close in hue to skin on purpose
        hair = np.array(
            rng.choice([[0.20, 0.13, 0.08], [0.10, 0.08, 0.07], [0.55, 0.40, 0.22], [0.45, 0.20, 0.10]])
        )
        iris = np.array(
            rng.choice([[0.30, 0.45, 0.28], [0.25, 0.35, 0.55], [0.35, 0.22, 0.12], [0.40, 0.40, 0.35]])
        )
        bg = rng.uniform(0.25, 0.65, size=3)

        def t(a: np.ndarray) -> tuple[float, float, float]:
            c = np.clip(a, 0.0, 1.0)
            return (float(c[0]), float(c[1]), float(c[2]))

        ident = Identity(
            skin=t(skin),
            lips=t(lips),
            hair=t(hair),
            brows=t(hair * 1.1 + 0.03),
            iris=t(iris),
            background=t(bg),
            face_width=float(rng.uniform(0.95, 1.05)),
            face_height=float(rng.uniform(1.25, 1.38)),
            eye_spacing=float(rng.uniform(0.38, 0.42)),
            eye_height=float(rng.uniform(-0.17, -0.11)),
            mouth_y=float(rng.uniform(0.62, 0.70)),
            texture_seed=int(rng.integers(0, 2**31 - 1)),
        )
        return _varied(ident, seed) if vary else ident

    def record(self) -> dict[str, object]:
        """The identity as written to a shot's states.json: every field, except that the fields ``vary``
        draws are left out while they all hold the original face's values — so a shot drawn without
        ``--vary`` keeps the exact bytes it had before those fields existed."""
        data = dataclasses.asdict(self)
        original = Identity()
        if all(getattr(self, name) == getattr(original, name) for name in VARIED_FIELDS):
            for name in VARIED_FIELDS:
                del data[name]
        return data


_IDENTITY_FIELDS = [f.name for f in dataclasses.fields(Identity)]
#: The fields the original generator did not have, all drawn by ``from_seed(..., vary=True)``: those
#: declared after ``texture_seed``.
VARIED_FIELDS: tuple[str, ...] = tuple(_IDENTITY_FIELDS[_IDENTITY_FIELDS.index("texture_seed") + 1 :])


def _varied(base: Identity, seed: int) -> Identity:
    """``base`` with proportions, skin tone and lighting drawn from ``seed`` within plausible human ranges.

    A separate random stream, so the plain identity's draws (hair, iris, background, texture) are kept.
    Canonical units are the face's half-width (about 70 mm on an adult), which sets the ranges: a lid
    opening 27-34 mm wide, an iris radius 0.38-0.52 of the opening's half-width (the original face is at
    the large end), pupils 0.28-0.6 of the iris (2-7 mm: small pupils under studio light included), a
    mouth 36-50 mm wide, lips 4-9 mm thick. Ranges are clamped against each other so no drawn part can
    cross its neighbour (the eye into the nose or brow, the open mouth past the chin).
    """
    rng = np.random.default_rng([int(seed), 7919, 2])
    u = rng.uniform
    face_width, face_height, jaw_taper = float(u(0.92, 1.08)), float(u(1.25, 1.42)), float(u(0.18, 0.36))
    eye_spacing, eye_height = float(u(0.37, 0.43)), float(u(-0.17, -0.10))
    eye_width = min(float(u(0.19, 0.245)), 0.6 * eye_spacing)
    iris_radius = eye_width * float(u(0.38, 0.52))
    pupil_radius = iris_radius * float(u(0.28, 0.60))
    mouth_y, lower_lip = float(u(0.60, 0.70)), float(u(0.07, 0.13))
    jaw_drop = min(float(u(0.22, 0.34)), face_height - 0.14 - mouth_y - lower_lip)
    # from very light to very dark skin; darker skin is also more saturated (G/R ~0.82 -> 0.7, B/R ~0.7 ->
    # 0.5 in sRGB) than a scaled light one, plus a little undertone
    tone = float(u(0.0, 1.0))
    skin = np.array([0.93, 0.77, 0.67]) * (1.0 - 0.62 * tone) * np.array([1.0, 1.0 - 0.15 * tone, 1.0 - 0.3 * tone])
    skin = np.clip(skin * float(u(0.97, 1.03)) + u(-0.015, 0.015, size=3), 0.05, 1.0)
    lips = skin * np.array([0.92, 0.74, 0.80])
    return dataclasses.replace(
        base,
        skin=(float(skin[0]), float(skin[1]), float(skin[2])),
        lips=(float(lips[0]), float(lips[1]), float(lips[2])),
        face_width=face_width,
        face_height=face_height,
        jaw_taper=jaw_taper,
        eye_spacing=eye_spacing,
        eye_height=eye_height,
        mouth_y=mouth_y,
        eye_width=eye_width,
        eye_upper=float(u(0.10, 0.14)),
        eye_lower=float(u(0.065, 0.10)),
        eye_tilt=float(u(-0.01, 0.035)),
        iris_radius=iris_radius,
        pupil_radius=pupil_radius,
        mouth_width=float(u(0.26, 0.36)),
        upper_lip=float(u(0.055, 0.11)),
        lower_lip=lower_lip,
        cupid_bow=float(u(0.008, 0.03)),
        jaw_drop=jaw_drop,
        teeth_width=float(u(0.66, 0.86)),
        upper_teeth_show=float(u(0.035, 0.10)),
        lower_teeth_show=float(u(0.025, 0.08)),
        light_angle=float(u(-2.9, -0.3)),  # from anywhere above the face, left to right
        light_elevation=float(u(0.45, 1.1)),  # low: raking light, a steep gradient across the face
        light_strength=float(u(0.8, 1.2)),
        ambient=float(u(0.28, 0.52)),
        exposure=float(u(0.8, 1.15)),
    )


@dataclass(frozen=True)
class FaceState:
    """Everything that changes per frame. Replace one field to get a what-if frame.

    Ranges: ``eye_open`` 0 (closed) .. 1 (open); ``gaze_x``/``gaze_y`` -1 .. 1 (image left/up is -1);
    ``mouth_open`` 0 .. 1; ``head_x``/``head_y`` offsets in image widths; ``head_roll`` degrees;
    ``head_yaw`` -1 .. 1; ``light_angle`` radians in the image plane (0 = light from image right).
    ``noise_seed`` seeds the sensor noise so a what-if frame gets exactly the same grain.
    """

    identity: Identity = field(default_factory=Identity)
    head_x: float = 0.0
    head_y: float = 0.0
    head_scale: float = 1.0
    head_roll: float = 0.0
    head_yaw: float = 0.0
    eye_open: float = 1.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    brow_raise: float = 0.0
    mouth_open: float = 0.0
    mouth_smile: float = 0.0
    teeth: bool = True
    light_angle: float = -2.4
    light_elevation: float = 0.8
    light_strength: float = 1.0
    exposure: float = 1.0
    noise_sigma: float = 0.012
    noise_seed: int = 0


# --- curves ------------------------------------------------------------------------------------------


def _bulge(s: np.ndarray, power: float) -> np.ndarray:
    """(1 - s^2)^power: 0 at the corners s = +-1, 1 in the middle; the profile of lids and lips."""
    return np.clip(1.0 - s * s, 0.0, 1.0) ** power


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


@dataclass
class EyeGeometry:
    """One eye in canonical space: the parts the rasteriser needs and the values shading needs."""

    centre: np.ndarray  # (2,) eye centre (midpoint of the corners)
    half_width: float
    opening: np.ndarray | None  # closed polygon between the lids, None when shut
    lid_line: np.ndarray  # closed (possibly degenerate) opening polygon, for tracking
    socket: np.ndarray  # eyelid region (drawn under the opening)
    iris_centre: np.ndarray
    iris_radius: float
    pupil_radius: float
    iris: np.ndarray
    pupil: np.ndarray


@dataclass
class MouthGeometry:
    centre: np.ndarray
    half_width: float
    corners: np.ndarray  # (2, 2) image-left then image-right corner
    outer: np.ndarray  # lips_outer polygon
    upper_lip: np.ndarray
    inner: np.ndarray  # lips_inner polygon (degenerate when closed)
    interior: np.ndarray | None  # same as inner, None when closed
    upper_teeth: np.ndarray
    lower_teeth: np.ndarray
    tongue: np.ndarray


N_LID = 25  # samples per lid / lip curve


def _eye(state: FaceState, side: int, shift: float) -> EyeGeometry:
    ident = state.identity
    cx = side * ident.eye_spacing + shift
    cy = ident.eye_height
    we, hu, hl = ident.eye_width, ident.eye_upper, ident.eye_lower
    s = np.linspace(-1.0, 1.0, N_LID)
    x = cx + we * s
    lower = cy + hl * _bulge(s, 0.8)
    upper_open = cy - hu * _bulge(s, 0.7) - ident.eye_tilt * (s * side)  # outer corner lid sits higher
    openness = float(np.clip(state.eye_open, 0.0, 1.0)) * (1.0 - 0.15 * max(0.0, state.gaze_y))
    upper = lower + (upper_open - lower) * openness
    lid_line = np.concatenate([np.stack([x, upper], 1), np.stack([x, lower], 1)[::-1][1:-1]])
    opening = lid_line if state.eye_open > MIN_EYE_OPEN else None
    sw = np.linspace(-1.0, 1.0, N_LID)
    crease = cy - 1.7 * hu * _bulge(sw, 0.55) - 0.015
    below = cy + (hl + 0.03) * _bulge(sw, 0.7) + 0.01
    xs = cx + 1.18 * we * sw
    socket = np.concatenate([np.stack([xs, crease], 1), np.stack([xs, below], 1)[::-1][1:-1]])
    gx, gy = float(np.clip(state.gaze_x, -1, 1)), float(np.clip(state.gaze_y, -1, 1))
    ic = np.array([cx + gx * 0.5 * we, cy - 0.015 + gy * 0.03])
    ri, rp = ident.iris_radius, ident.pupil_radius
    return EyeGeometry(
        centre=np.array([cx, cy]),
        half_width=we,
        opening=opening,
        lid_line=lid_line,
        socket=socket,
        iris_centre=ic,
        iris_radius=ri,
        pupil_radius=rp,
        iris=_ellipse(ic[0], ic[1], ri, ri, 36),
        pupil=_ellipse(ic[0], ic[1], rp, rp, 24),
    )


def _brow(state: FaceState, side: int, shift: float) -> np.ndarray:
    ident = state.identity
    s = np.linspace(-1.0, 1.0, 17)
    cx, cy = side * (ident.eye_spacing + 0.01) + shift, ident.eye_height - 0.27 - 0.07 * state.brow_raise
    inner = (1.0 - s * side) / 2.0  # 1 at the inner end (towards the nose)
    centre_y = cy - 0.07 * _bulge(s, 1.0) + 0.02 * inner
    thick = 0.035 + 0.035 * inner
    x = cx + 0.27 * s
    return np.concatenate(
        [np.stack([x, centre_y - thick], 1), np.stack([x, centre_y + thick * 0.8], 1)[::-1]]
    )


def _nose(shift_top: float, shift_tip: float) -> tuple[np.ndarray, np.ndarray]:
    """Nose polygon and the tip point. The tip slides more than the bridge under yaw (it sticks out)."""
    right = np.array(
        [[0.05, -0.10], [0.06, 0.05], [0.08, 0.17], [0.14, 0.26], [0.15, 0.31], [0.12, 0.355], [0.05, 0.375]]
    )
    left = right[::-1] * np.array([-1.0, 1.0])
    poly = np.concatenate([right, [[0.0, 0.38]], left])
    depth = np.clip((poly[:, 1] + 0.10) / 0.48, 0.0, 1.0)
    poly = poly + np.stack([shift_top + (shift_tip - shift_top) * depth, np.zeros(len(poly))], 1)
    return poly, np.array([shift_tip, 0.30])


def _mouth(state: FaceState, shift: float) -> MouthGeometry:
    m = float(np.clip(state.mouth_open, 0.0, 1.0))
    smile = float(np.clip(state.mouth_smile, -1.0, 1.0))
    ident = state.identity
    cx, cy = shift, ident.mouth_y
    w = ident.mouth_width * (1.0 + 0.10 * smile - 0.12 * m)
    s = np.linspace(-1.0, 1.0, N_LID)
    x = cx + w * s
    corner_lift = -0.03 * smile
    base = cy + corner_lift * s * s
    # lips keep a little thickness at the corners so the corner landmark sits on lip pixels
    upper_outer = (
        base - ident.upper_lip * (0.15 + 0.85 * _bulge(s, 0.55)) + ident.cupid_bow * np.exp(-((s / 0.16) ** 2))
    )  # cupid's bow
    si = np.clip(s / 0.88, -1.0, 1.0)  # the opening stops short of the corners, where the lips meet
    upper_inner = base - 0.004 * _bulge(si, 1.0) - 0.07 * m * _bulge(si, 0.7)
    lower_inner = base + 0.004 * _bulge(si, 1.0) + ident.jaw_drop * m * _bulge(si, 0.7)
    lower_outer = lower_inner + ident.lower_lip * (0.15 + 0.85 * _bulge(s, 0.6))

    def ring(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        return np.concatenate([np.stack([x, top], 1), np.stack([x, bottom], 1)[::-1][1:-1]])

    inner = ring(upper_inner, lower_inner)
    # teeth are fixed to the jaws: upper to the skull, lower to the (dropping) jaw
    st = np.linspace(-ident.teeth_width, ident.teeth_width, 15)
    tx = cx + w * st
    ut_bottom = cy + ident.upper_teeth_show * _bulge(st, 0.35) - 0.01
    upper_teeth = np.concatenate(
        [np.stack([tx, np.full_like(tx, cy - 0.25)], 1), np.stack([tx, ut_bottom], 1)[::-1]]
    )
    li = np.interp(tx, x, lower_inner)
    lower_teeth = np.concatenate(
        [np.stack([tx, li - ident.lower_teeth_show * _bulge(st, 0.35)], 1), np.stack([tx, li + 0.05], 1)[::-1]]
    )
    tongue = _ellipse(cx, cy + ident.jaw_drop * m + 0.02, 0.62 * w, 0.13, 32)
    return MouthGeometry(
        centre=np.array([cx, cy]),
        half_width=w,
        corners=np.array([[x[0], base[0]], [x[-1], base[-1]]]),
        outer=ring(upper_outer, lower_outer),
        upper_lip=ring(upper_outer, upper_inner),
        inner=inner,
        interior=inner if m > MIN_MOUTH_OPEN else None,
        upper_teeth=upper_teeth,
        lower_teeth=lower_teeth,
        tongue=tongue,
    )


def _face_oval(ident: Identity, n: int = 64) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    a, b = ident.face_width, ident.face_height
    y = b * np.sin(t)
    taper = 1.0 - ident.jaw_taper * np.clip(np.sin(t), 0.0, 1.0) ** 2  # narrower jaw and chin
    x = a * np.cos(t) * taper
    return np.stack([x, y + 0.02], 1)


@dataclass
class FaceGeometry:
    """All parts in canonical space plus the canonical -> plate-pixel similarity transform."""

    state: FaceState
    size: tuple[int, int]  # (width, height) of the plate
    centre: np.ndarray  # plate pixel of the canonical origin
    scale: float  # pixels per canonical unit
    rotation: np.ndarray  # (2, 2)
    face_oval: np.ndarray
    hair_back: np.ndarray
    hair_cap: np.ndarray
    neck: np.ndarray
    ears: list[np.ndarray]
    brows: list[np.ndarray]  # image-left, image-right
    eyes: list[EyeGeometry]  # image-left, image-right
    nose: np.ndarray
    nose_tip: np.ndarray
    nostrils: list[np.ndarray]
    mouth: MouthGeometry

    def to_plate(self, points: np.ndarray) -> np.ndarray:
        """Canonical (N, 2) -> plate pixels (N, 2)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return self.centre + self.scale * (p @ self.rotation.T)

    def to_canonical(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return ((p - self.centre) @ self.rotation) / self.scale

    def landmarks5(self) -> np.ndarray:
        """Eye centres, nose tip, mouth corners (image order) in plate pixels, (5, 2)."""
        pts = np.stack([self.eyes[0].centre, self.eyes[1].centre, self.nose_tip, *self.mouth.corners])
        return self.to_plate(pts)

    def contours(self) -> dict[str, np.ndarray]:
        """The tracking contours (closed polygons, plate pixels) from the exact drawing geometry."""
        return {
            "face_oval": self.to_plate(self.face_oval),
            "left_brow": self.to_plate(self.brows[0]),
            "right_brow": self.to_plate(self.brows[1]),
            "left_eye": self.to_plate(self.eyes[0].lid_line),
            "right_eye": self.to_plate(self.eyes[1].lid_line),
            "left_iris": self.to_plate(self.eyes[0].iris),
            "right_iris": self.to_plate(self.eyes[1].iris),
            "nose": self.to_plate(self.nose),
            "lips_outer": self.to_plate(self.mouth.outer),
            "lips_inner": self.to_plate(self.mouth.inner),
        }


def face_geometry(state: FaceState, size: tuple[int, int]) -> FaceGeometry:
    """Build the geometry of ``state`` for a plate of ``size = (width, height)`` pixels."""
    w, h = size
    ident = state.identity
    ref = min(w, h)
    scale = 0.215 * ref * state.head_scale
    centre = np.array([w * 0.5 + state.head_x * w - 0.5, h * 0.52 + state.head_y * h - 0.5])
    a = math.radians(state.head_roll)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    yaw = float(np.clip(state.head_yaw, -1.0, 1.0))
    shift, shift_tip = 0.12 * yaw, 0.22 * yaw
    oval = _face_oval(ident)
    head = _ellipse(0.0, -0.30, ident.face_width * 1.16, ident.face_height * 1.05, 48)
    hair_back = np.concatenate(
        [head[head[:, 1] < 0.25], [[ident.face_width * 1.05, 0.55], [-ident.face_width * 1.05, 0.55]]]
    )
    hair_back = hair_back[np.argsort(np.arctan2(hair_back[:, 1] + 0.3, hair_back[:, 0]))]
    # hair cap: head ellipse above a hairline arching over the forehead
    t = np.linspace(math.pi, 2.0 * math.pi, 33)
    top = np.stack([ident.face_width * 1.08 * np.cos(t), -0.30 + ident.face_height * 1.03 * np.sin(t)], 1)
    hx = np.linspace(ident.face_width * 1.08, -ident.face_width * 1.08, 21)
    hairline = -0.72 + 0.28 * (hx / ident.face_width) ** 2 + 0.04 * np.sin(9.0 * hx + ident.texture_seed % 7)
    hair_cap = np.concatenate([top, np.stack([hx, np.minimum(hairline, -0.25)], 1)])
    neck = np.array(
        [
            [-0.50, 0.60],
            [0.50, 0.60],
            [0.62, 2.0],
            [0.95, 2.6],
            [1.6, 4.0],
            [-1.6, 4.0],
            [-0.95, 2.6],
            [-0.62, 2.0],
        ]
    )
    ears = [_ellipse(side * ident.face_width * 0.98, -0.06, 0.14, 0.26, 24) for side in (-1, 1)]
    nose, tip = _nose(shift * 0.8, shift_tip)
    nostrils = [_ellipse(side * 0.07 + shift_tip * 0.9, 0.325, 0.04, 0.022, 16) for side in (-1, 1)]
    return FaceGeometry(
        state=state,
        size=(int(w), int(h)),
        centre=centre,
        scale=scale,
        rotation=rotation,
        face_oval=oval,
        hair_back=hair_back,
        hair_cap=hair_cap,
        neck=neck,
        ears=ears,
        brows=[_brow(state, -1, shift), _brow(state, 1, shift)],
        eyes=[_eye(state, -1, shift), _eye(state, 1, shift)],
        nose=nose,
        nose_tip=tip,
        nostrils=nostrils,
        mouth=_mouth(state, shift),
    )
