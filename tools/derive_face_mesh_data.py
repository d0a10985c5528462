"""Write ``vq_models/face/mesh_data.py``: the face mesh's triangles and a neutral template, from mediapipe.

Why a generated data module: the 3D overlay (``vq_models/face/overlay.py``) needs the MediaPipe face mesh's
triangulation, but only ``vq_models/face/tracker.py`` may import mediapipe (shots with external tracking,
the render server and the host never load it). The mediapipe wheel ships the triangulation only as the
*edge* set ``FACEMESH_TESSELATION``, so this script rebuilds the triangles from it:

1. every 3-clique of the edge graph is a candidate triangle;
2. a clique whose three edges already each border two other candidates is not a face of the surface but
   a "separating triangle" that the edge set merely implies (there are two in 0.10.21); it is dropped,
   which leaves a 2-manifold with four boundary loops (the face oval, two eyes, the mouth) as Euler's
   formula predicts (V - E + F = 468 - 1322 + 852 = -2);
3. the triangles are wound consistently by walking the adjacency graph (each shared edge is traversed in
   opposite directions by its two triangles), then the whole set is flipped if needed so that, on a
   frontal face in image coordinates (x right, y down, z away from the camera), they turn clockwise on
   screen, i.e. their normals point at the camera.

The template is the median of the tracker's mesh over frames of a real frontal clip, expressed in the eye
frame (image-left eye centre at (-1, 0), image-right at (1, 0), z in the same units, its mean removed):
the neutral shape from which ``vq_models/synth/mesh.py`` builds meshes for synthetic faces. Only
landmark coordinates are written; no pixels of the clip.

    .venv/bin/python tools/derive_face_mesh_data.py [--clip ../shared/clips/lp_d0.mp4] [--frames 1-12]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import sys
import textwrap
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "vq_models" / "face" / "mesh_data.py"


def triangles_from_edges(edges: set[tuple[int, int]]) -> np.ndarray:
    """The faces of the surface whose edge set is ``edges``, consistently wound, (T, 3) int."""
    und = {tuple(sorted(e)) for e in edges}
    adj: dict[int, set[int]] = collections.defaultdict(set)
    for a, b in und:
        adj[a].add(b)
        adj[b].add(a)
    cliques = sorted({tuple(sorted((a, b, w))) for a, b in und for w in adj[a] & adj[b]})
    count = collections.Counter(e for t in cliques for e in itertools.combinations(t, 2))
    faces = [t for t in cliques if not all(count[e] == 3 for e in itertools.combinations(t, 2))]
    count = collections.Counter(e for t in faces for e in itertools.combinations(t, 2))
    if max(count.values()) > 2:
        raise RuntimeError("the edge set does not describe a 2-manifold; cannot derive triangles")
    # consistent winding by breadth-first walk over shared edges
    by_edge: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
    for i, t in enumerate(faces):
        for e in itertools.combinations(t, 2):
            by_edge[e].append(i)
    wound: dict[int, tuple[int, int, int]] = {}
    for seed in range(len(faces)):
        if seed in wound:
            continue
        wound[seed] = faces[seed]
        queue = collections.deque([seed])
        while queue:
            i = queue.popleft()
            a, b, c = wound[i]
            for u, v in ((a, b), (b, c), (c, a)):
                for j in by_edge[tuple(sorted((u, v)))]:
                    if j in wound:
                        continue
                    (w,) = set(faces[j]) - {u, v}
                    wound[j] = (v, u, w)  # the neighbour walks the shared edge the other way
                    queue.append(j)
    return np.array([wound[i] for i in range(len(faces))], np.int64)


def template_mesh(clip: str, frames: str) -> np.ndarray:
    """Median tracker mesh over ``frames`` of ``clip``, in the eye frame, (478, 3)."""
    from vq_models.face import topology
    from vq_models.face.tracker import FaceTracker
    from vq_models.io.sources import open_source

    shapes = []
    with open_source(clip, frames) as src, FaceTracker(max_faces=1) as tracker:
        for f in src.frames:
            faces = tracker.track(src.read_network(f))
            if not faces:
                continue
            mesh = faces[0].landmarks478
            lm = topology.landmarks5_from_mesh(mesh)
            origin, axis = (lm[0] + lm[1]) / 2, (lm[1] - lm[0]) / 2
            s = float(np.hypot(*axis))
            c, si = axis / s
            xy = (mesh[:, :2] - origin) @ np.array([[c, -si], [si, c]]) / s
            z = mesh[:, 2:] / s
            shapes.append(np.hstack([xy, z - z.mean()]))
    if not shapes:
        raise RuntimeError(f"{clip}: no face tracked in frames {frames}")
    return np.median(np.stack(shapes), axis=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(REPO.parent / "shared" / "clips" / "lp_d0.mp4"))
    parser.add_argument("--frames", default="1-12", help="frames of the clip with a neutral, frontal face")
    args = parser.parse_args()
    from mediapipe.python.solutions import face_mesh_connections

    tris = triangles_from_edges(set(face_mesh_connections.FACEMESH_TESSELATION))
    template = template_mesh(args.clip, args.frames)
    # orient: on the frontal template the signed screen area of most triangles must be negative
    # (clockwise in y-down coordinates), which makes (v1 - v0) x (v2 - v0) point towards -z (the camera)
    p = template[:, :2]
    e1, e2 = p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]]
    if np.median(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) > 0:
        tris = tris[:, [0, 2, 1]]
    tri_txt = "\n".join(textwrap.wrap(" ".join(str(int(i)) for i in tris.ravel()), 104))
    tmpl_txt = "\n".join(" ".join(f"{v:.4f}" for v in row) for row in template)
    OUT.write_text(
        '"""The MediaPipe face mesh as data: its triangles and a neutral template shape (generated).\n\n'
        "Generated by ``tools/derive_face_mesh_data.py`` from mediapipe 0.10.21 (``FACEMESH_TESSELATION``,\n"
        f"and the tracker's median mesh over frames {args.frames} of ``{Path(args.clip).name}``); that\n"
        "script's docstring says how and why. Kept as data so that nothing but ``face/tracker.py`` imports\n"
        "mediapipe. Do not edit by hand: re-run the script.\n"
        '"""\n\n'
        "from __future__ import annotations\n\n"
        "import numpy as np\n\n"
        f'_TRIANGLES = """\n{tri_txt}\n"""\n\n'
        f'_TEMPLATE = """\n{tmpl_txt}\n"""\n\n'
        "#: (852, 3) vertex indices, wound so that normals face the camera on a frontal face (z away from it)\n"
        "TRIANGLES: np.ndarray = np.array(_TRIANGLES.split(), np.int32).reshape(-1, 3)\n"
        "TRIANGLES.setflags(write=False)\n\n"
        "#: (478, 3) neutral face in the eye frame: image-left eye (-1, 0), image-right eye (1, 0), y down,\n"
        "#: z away from the camera in the same units, zero mean\n"
        "TEMPLATE: np.ndarray = np.array(_TEMPLATE.split(), np.float64).reshape(-1, 3)\n"
        "TEMPLATE.setflags(write=False)\n"
    )
    print(f"{OUT}: {len(tris)} triangles, template {template.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
