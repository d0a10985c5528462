"""The OpenFX plug-in's parameter table, derived from the host node's knob tables, and its C++ form.

Why a generated table: the compiled plug-in must describe the same knobs as the Nuke gizmo and the farm
(names, neutral defaults), and a second hand-written list in C++ would drift. The names and neutral values
come from :data:`host_plugin.knobs.FACE_KNOBS` / :data:`~host_plugin.knobs.FILL_KNOBS`; this module adds
only what OFX needs on top (type, range, label, hint, page). ``cmake`` runs
``python -m host_plugin.ofx.params --header OUT`` at build time and compiles OUT into the ``.ofx``; the
bridge process reads the same :data:`PARAMS` to turn the values it receives into ``EditKnobs``.

Only host_plugin modules are imported (the bridge must run where vq_models/torch are absent).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from host_plugin.knobs import (
    DRIVER_KNOBS,
    FACE_KNOBS,
    FILL_KNOBS,
    FLAG_KNOBS,
    MAX_DRIVER_STRENGTH,
    SEGMENT_EDIT_FIELDS,
    SEGMENT_EDIT_ROWS,
)
from host_plugin.node import MODES

# The gizmo's slider ranges (gizmos/VQFaceEdit.gizmo ``R lo hi``), label and hint per face knob. A test
# checks these against the gizmo, so the two hosts cannot drift apart.
FACE_UI: dict[str, tuple[float, float, str, str]] = {
    "eye_open_left": (0.0, 1.0, "eye open L", "1 = as shot, 0 = closed"),
    "eye_open_right": (0.0, 1.0, "eye open R", "1 = as shot, 0 = closed"),
    "gaze_x": (-1.0, 1.0, "gaze x", "fraction of the eye width"),
    "gaze_y": (-1.0, 1.0, "gaze y", "fraction of the eye width"),
    "teeth": (0.0, 1.0, "teeth", "1 = as shot, 0 = removed"),
    "mouth_open": (0.0, 2.0, "mouth open", "how open: 1 = as shot, 2 = twice the gap between the lips, 0 = closed"),
    "brows": (-1.0, 1.0, "brows", "raise (+) or lower (-), fraction of brow height"),
}
FILL_UI: dict[str, tuple[str, str]] = {
    "teeth_fill_upper": ("teeth fill upper", "segment name or code the pixels freed by removing the upper teeth "
                         "take (empty = the prior's darkest mouth-interior code)"),
    "teeth_fill_lower": ("teeth fill lower", "segment name or code for the pixels freed by removing the lower "
                         "teeth (empty = the prior's cavity code), e.g. tongue"),
}
# The checkboxes (host_plugin.knobs.FLAG_KNOBS): label and hint, the gizmo's Boolean knobs' own.
FLAG_UI: dict[str, tuple[str, str]] = {
    "pull_lids": ("pull lids", "eye open moves the frame's own lid (lashes, skin) down instead of drawing it, the "
                  "lashes alone once closed; leave off where glasses or hair lie on the lid line"),
    "pull_lip": ("pull lip", "mouth open moves the frame's own lower lip and chin instead of drawing them"),
    "mouth_borrow": ("mouth from the shot", "mouth open (above 1) takes the mouth of a frame of the shot that opens "
                     "that wide, where one does; best on held openings (a keyed opening may jump between frames' "
                     "mouths)"),
    "gaze_borrow": ("gaze from the shot", "gaze takes the eye of a frame of the shot that looks there, where one "
                    "does; best on held looks (a keyed gaze may jump between frames' eyes)"),
}
# The segment-edit table's fields (host_plugin.knobs.SEGMENT_EDIT_FIELDS) as the gizmo shows them: range, label,
# hint; parameters are named seg<row>_<field> like the gizmo's knobs.
SEGMENT_UI: dict[str, tuple[float, float, str, str]] = {
    "segment": (0.0, 0.0, "segment", "segment name of the prior (or a code): this row edits it; empty = row off"),
    "translate_x": (-16.0, 16.0, "translate x", "label-map pixels"),
    "translate_y": (-16.0, 16.0, "translate y", "label-map pixels"),
    "scale": (0.0, 3.0, "scale", "about the segment's centre, 1 = as shot"),
    "dilate": (0.0, 8.0, "dilate", "grow by this many label-map pixels"),
    "replace_with": (0.0, 0.0, "replace with", "segment name or code its pixels take; empty = keep"),
}
# colour space of the Source clip: auto = float images are in the shot plate's space, 8/16-bit are sRGB
COLORSPACES = ("auto", "sRGB", "lin_rec709", "shot")


@dataclass(frozen=True)
class Param:
    """One OFX parameter. ``kind`` is double / int / bool / string / choice; ``page`` groups them for hosts."""

    name: str
    kind: str
    label: str
    hint: str
    page: str
    default: float | str = 0.0
    lo: float = 0.0
    hi: float = 0.0
    options: tuple[str, ...] = field(default_factory=tuple)
    animates: bool = False


def _build() -> list[Param]:
    face = [Param(k, "double", FACE_UI[k][2], FACE_UI[k][3], "Face", float(neutral), FACE_UI[k][0], FACE_UI[k][1],
                  animates=True) for k, (_, neutral) in FACE_KNOBS.items()]
    fill = [Param(k, "string", FILL_UI[k][0], FILL_UI[k][1], "Face", "") for k in FILL_KNOBS]
    flags = [Param(k, "bool", FLAG_UI[k][0], FLAG_UI[k][1], "Face", 0.0, 0.0, 1.0) for k in FLAG_KNOBS]
    render = [
        Param("server", "string", "server", "render server address (vqedit serve), e.g. tcp://127.0.0.1:5555",
              "Render", "tcp://127.0.0.1:5555"),
        Param("model", "string", "model", "shot model name on the server (a folder of its --models)", "Render", ""),
        Param("frame_offset", "int", "frame offset", "shot frame = host time + offset (hosts number timelines "
              "their own way)", "Render", 0.0, -1_000_000, 1_000_000),
        Param("mode", "choice", "mode", "identity: re-render the face everywhere; edit-only: only where the "
              "edit changed the labels", "Render", MODES[0], options=MODES),
        Param("feather", "double", "feather", "edge softness of the face matte, pixels", "Render", 8.0, 0.0, 64.0,
              animates=True),
        Param("mix", "double", "mix", "blend of the render over the source", "Render", 1.0, 0.0, 1.0, animates=True),
        Param("colorspace", "choice", "colour space", "the Source clip's colour space: auto = float images are in "
              "the shot plate's space, 8/16-bit images are display sRGB", "Render", COLORSPACES[0],
              options=COLORSPACES),
        Param("timeout", "double", "timeout", "seconds to wait for the render server per try (2 tries)", "Render",
              30.0, 1.0, 600.0),
    ]
    segments = []
    for row in range(1, SEGMENT_EDIT_ROWS + 1):
        for name, neutral in SEGMENT_EDIT_FIELDS.items():
            lo, hi, label, hint = SEGMENT_UI[name]
            if isinstance(neutral, str):
                segments.append(Param(f"seg{row}_{name}", "string", f"{label} {row}", hint, "Segments", neutral))
            else:
                segments.append(Param(f"seg{row}_{name}", "double", f"{label} {row}", hint, "Segments", float(neutral),
                                      lo, hi, animates=True))
    segments.append(Param("program_file", "string", "edit program file", "an edit-program JSON file (docs/edits.md) "
                          "whose edits are applied first; empty = none", "Segments", ""))
    driver = [  # expression transfer (host_plugin.knobs.DRIVER_KNOBS), as the gizmo shows them
        Param("driver", "string", "driver shot", "a driver shot on the render server (a prepped folder of its "
              "--models): its mouth and jaw expression drives this shot's lower face; empty = off", "Driver",
              DRIVER_KNOBS["driver"]),
        Param("driver_strength", "double", "driver strength", "0 = the shot as it is, 1 = the driver's expression, "
              "above 1 exaggerates", "Driver", float(DRIVER_KNOBS["driver_strength"]), 0.0, MAX_DRIVER_STRENGTH,
              animates=True),
        Param("driver_frame_offset", "double", "driver frame offset", "driver frame = shot frame + offset (keyframe "
              "it to slip or hold the performance)", "Driver", float(DRIVER_KNOBS["driver_frame_offset"]), -100.0,
              100.0, animates=True),
    ]
    paint = [
        Param("paint_segment", "string", "paint segment", "segment of the model's prior that the Paint clip's "
              "alpha paints into the label map (General context, Paint connected)", "Paint", ""),
    ]
    return [*face, *fill, *flags, *render, *segments, *driver, *paint]


PARAMS: list[Param] = _build()
PAGES: tuple[str, ...] = ("Face", "Render", "Segments", "Driver", "Paint")


def _c_str(text: str) -> str:
    """A C string literal (json's escaping is valid C for the ASCII text used here)."""
    return json.dumps(text, ensure_ascii=True)


def cpp_table() -> str:
    """The C++ initialiser list the plug-in compiles in (see ``ParamDef`` in vqfaceedit.cpp)."""
    rows = []
    for p in PARAMS:
        default = p.default if isinstance(p.default, str) else ""
        number = 0.0 if isinstance(p.default, str) else float(p.default)
        if p.kind == "choice":
            number = float(p.options.index(str(p.default)))
        rows.append("  {" + ", ".join([
            _c_str(p.name), _c_str(p.kind), _c_str(p.label), _c_str(p.hint), _c_str(p.page),
            repr(number), repr(float(p.lo)), repr(float(p.hi)), _c_str(default), _c_str("|".join(p.options)),
            "1" if p.animates else "0",
        ]) + "},")
    pages = ", ".join(_c_str(p) for p in PAGES)
    return ("// generated by `python -m host_plugin.ofx.params --header`; do not edit\n"
            f"static const ParamDef kParams[] = {{\n{chr(10).join(rows)}\n}};\n"
            f"static const char *const kPages[] = {{{pages}}};\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host_plugin.ofx.params", description=__doc__.split("\n")[0])
    ap.add_argument("--header", required=True, help="where to write the C++ parameter table")
    args = ap.parse_args(argv)
    out = Path(args.header)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = cpp_table()
    if not out.is_file() or out.read_text() != text:
        out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
