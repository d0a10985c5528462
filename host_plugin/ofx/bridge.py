"""The bridge process behind the compiled OpenFX plug-in (``python -m host_plugin.ofx.bridge --fd N``).

Why a separate process: OFX hosts (Nuke, Natron, Resolve, Flame) embed their own Python; the ``.ofx``
must never load a second one. It starts this process on first use, talks to it over an inherited Unix
socket (4-byte little-endian length + UTF-8; JSON requests, ``ok ...``/``error <line>`` replies) and
hands pixels over in a shared-memory buffer whose descriptor rides along with each request. One bridge
serves every instance; each instance gets its own :class:`~host_plugin.node.EditNode`, so the Nuke gizmo,
the farm and OFX hosts render through the same code. The process exits on EOF (the host exited or
unloaded the plug-in) or after ``--idle`` seconds without a request.

Only host_plugin modules and numpy are imported here.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from host_plugin.knobs import FACE_KNOBS, FILL_KNOBS, FLAG_KNOBS, SEGMENT_EDIT_FIELDS, SEGMENT_EDIT_ROWS
from host_plugin.node import EditKnobs, EditNode, PaintMatte, Plate, composite_over
from host_plugin.ofx import pixels
from host_plugin.ofx.params import PARAMS as _PARAM_TABLE

#: how long (seconds) the bridge trusts what a model's `load` said (plate info, warning) before asking again;
#: ``VQEDIT_OFX_SHOT_INFO_TTL`` overrides it. Asking is cheap (the server reads shot.json afresh), and without
#: it a shot re-prepped while the host runs kept warning until the bridge restarted.
SHOT_INFO_TTL_S = 5.0


def shot_info_ttl() -> float:
    """:data:`SHOT_INFO_TTL_S`, or ``VQEDIT_OFX_SHOT_INFO_TTL`` where set to a number of seconds."""
    try:
        return max(0.0, float(os.environ.get("VQEDIT_OFX_SHOT_INFO_TTL", SHOT_INFO_TTL_S)))
    except ValueError:
        return SHOT_INFO_TTL_S


# The old in-process entry point's table (name/type/default), kept for callers of :func:`render`.
PARAMS: list[dict[str, Any]] = [
    {"name": p.name, "type": p.kind, "default": p.default, "min": p.lo, "max": p.hi,
     **({"options": list(p.options)} if p.options else {})}
    for p in _PARAM_TABLE
]


def knobs_from_params(params: dict[str, Any]) -> EditKnobs:
    """Parameter values at one time (as the plug-in sends them) → the node's knobs."""
    timeout = float(params.get("timeout", 30.0))
    return EditKnobs(
        server=str(params["server"]), model=str(params["model"]).strip(),
        mode=str(params.get("mode", "identity")),
        face={**{k: float(params[k]) for k in FACE_KNOBS if k in params},
              **{k: str(params[k]) for k in FILL_KNOBS if k in params},
              **{k: params[k] for k in FLAG_KNOBS if k in params}},
        segment_edits=[{f: params.get(f"seg{row}_{f}", neutral) for f, neutral in SEGMENT_EDIT_FIELDS.items()}
                       for row in range(1, SEGMENT_EDIT_ROWS + 1)],
        paint_segment=str(params.get("paint_segment", "")).strip(),
        program_file=str(params.get("program_file", "")).strip(),
        feather=float(params.get("feather", 8.0)), mix=float(params.get("mix", 1.0)),
        driver=str(params.get("driver", "")).strip(),
        driver_strength=float(params.get("driver_strength", 1.0)),
        driver_frame_offset=float(params.get("driver_frame_offset", 0.0)),
        timeout=timeout, retries=1,
    )


def render_pass(result: Any) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(premultiplied RGBA, its window x, y, w, h) of an ``EditNode`` frame result. Newer nodes carry the
    array and ``render_window``; older ones a decoded image with its ``data_window``."""
    if hasattr(result, "render_window"):
        return np.asarray(result.render, np.float32), tuple(int(v) for v in result.render_window)  # type: ignore[return-value]
    return np.asarray(result.render.pixels, np.float32), tuple(int(v) for v in result.render.data_window)  # type: ignore[return-value]


class Bridge:
    """Request handling, independent of the socket (tests drive it directly too)."""

    def __init__(self) -> None:
        self.nodes: dict[str, EditNode] = {}
        # (server, model) → (when `load` last answered, its plate info, its warning or "")
        self.shots: dict[tuple[str, str], tuple[float, dict[str, Any], str]] = {}
        self.shot_info_ttl = shot_info_ttl()
        self.shm: mmap.mmap | None = None
        self.last_evaluate_ms = 0.0  # the EditNode part of the last render (VQEDIT_OFX_TRACE)
        self._need: Callable[[tuple[int, int, int, int]], None] | None = None
        self._shm_key: tuple[int, int, int] | None = None

    # --- shared memory -------------------------------------------------------------------------
    def attach(self, fd: int) -> None:
        """Map the plug-in's buffer (kept while the plug-in keeps sending the same one)."""
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, st.st_size)
        if key != self._shm_key:
            if self.shm is not None:
                self.shm.close()
            self.shm = mmap.mmap(fd, st.st_size)
            self._shm_key = key
        os.close(fd)

    def _view(self, offset: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        if self.shm is None:
            raise RuntimeError("no shared-memory buffer came with the request")
        return np.ndarray(shape, dtype=dtype, buffer=self.shm, offset=offset)

    # --- requests ------------------------------------------------------------------------------
    def handle(self, req: dict[str, Any], need: Callable[[tuple[int, int, int, int]], None] | None = None) -> str:
        """One request → its reply line. ``need((c0, r0, c1, r1))`` asks the plug-in for the Source pixels
        of that part of the window (packed columns and bottom-up rows) and returns once they are in shared
        memory; without it (or when the request says no ``need``) the whole window is there already."""
        self._need = need if req.get("need") else None
        op = req.get("op")
        if op == "ping":
            return f"ok pid {os.getpid()}"
        if op == "forget":
            node = self.nodes.pop(str(req.get("instance")), None)
            if node is not None:
                node.close()
            return "ok"
        if op == "render":
            return self.render(req)
        raise ValueError(f"unknown op {op!r}")

    def _node(self, instance: str, params: dict[str, Any]) -> EditNode:
        node = self.nodes.get(instance)
        knobs = knobs_from_params(params)
        if not knobs.model:
            raise ValueError("model parameter is empty: name a shot model of the render server")
        if node is None:
            node = self.nodes[instance] = EditNode(knobs)
        node.knobs = knobs
        client = node.client  # re-created when the server parameter changed
        client.timeout, client.retries = knobs.timeout, knobs.retries
        return node

    def _shot_space(self, node: EditNode) -> str:
        key = (node.knobs.server, node.knobs.model)
        now = time.monotonic()
        if key not in self.shots or now - self.shots[key][0] > self.shot_info_ttl:
            desc = node.client.load(node.knobs.model)
            self.shots[key] = (now, dict(desc.get("plate") or {}), " ".join(str(desc.get("warning") or "").split()))
        return str(self.shots[key][1].get("colorspace") or "lin_rec709")

    def _with_warning(self, node: EditNode, reply: str) -> str:
        """``reply`` and, after `` warn ``, what the server said to know about the shot (the plug-in posts it as
        the host's persistent warning: the render went through, but the shot should be re-prepped)."""
        _, _, warning = self.shots.get((node.knobs.server, node.knobs.model), (0.0, {}, ""))
        return f"{reply} warn {warning}" if warning else reply

    def render(self, req: dict[str, Any]) -> str:
        params = req["params"]
        node = self._node(str(req["instance"]), params)
        depth, comps = str(req["depth"]), int(req["comps"])
        x1, y1, x2, y2 = (int(v) for v in req["window"])
        w, h = x2 - x1, y2 - y1
        dtype = pixels.DTYPES[depth]
        src = self._view(int(req["src"]), (h, w, comps), dtype)[::-1]  # y-down, like the shot's plates
        dst = self._view(int(req["dst"]), (h, w, comps), dtype)
        top = int(round(float(req["flip"]))) - y2  # the window's top row in the shot's y-down pixel rows
        window = (x1, top, w, h)
        mode = pixels.transfer(str(params.get("colorspace", "auto")), depth, self._shot_space(node))
        frame, (sx, sy) = int(req["frame"]), (float(v) for v in req["scale"])
        matte = None
        if int(req.get("paint", -1)) >= 0:
            matte = self._view(int(req["paint"]), (h, w), np.float32)[::-1]
        mix = float(params.get("mix", 1.0))
        paint = None
        if matte is not None and matte.any():  # an empty matte paints nothing: render as without Paint
            full, full_window = pixels.upscale_matte(matte, window, sx, sy)
            paint = PaintMatte(matte=full, window=full_window)
        # the bare render, composited here over the Source only inside its box: the same EditNode request
        # and composite_over rule as EditNode.evaluate(frame, plate), without copying the whole frame
        t0 = time.perf_counter()
        rgba, rwin = render_pass(node.evaluate(frame, None, paint=paint))
        self.last_evaluate_ms = 1e3 * (time.perf_counter() - t0)
        if abs(sx - 1.0) > 1e-9 or abs(sy - 1.0) > 1e-9:  # proxy render: onto the host's smaller grid
            rgba, rwin = pixels.downscale_premultiplied(rgba, rwin, sx, sy)
        # where the (mixed) render alpha is 0 the output is the Source's own bytes
        bx0, by0 = max(rwin[0], window[0]), max(rwin[1], window[1])
        bx1, by1 = min(rwin[0] + rwin[2], window[0] + w), min(rwin[1] + rwin[3], window[1] + h)
        if mix <= 0.0 or bx1 <= bx0 or by1 <= by0:
            return self._with_warning(node, "ok 0 0 0 0")
        box = (bx0, by0, bx1 - bx0, by1 - by0)
        rows, cols = slice(by0 - window[1], by1 - window[1]), slice(bx0 - window[0], bx1 - window[0])
        if self._need is not None:  # only the box's Source pixels cross (y-down rows r → packed h-1-r)
            self._need((cols.start, h - rows.stop, cols.stop, h - rows.start))
        image = composite_over(rgba, rwin, pixels.to_plate(src[rows, cols], depth, mode), box, mix)
        if depth == "OfxBitDepthFloat" and mode == "none":
            out = image  # composite_over already selects the Source's own values where the alpha is 0
        else:
            alpha = np.asarray(rgba)[by0 - rwin[1]:by1 - rwin[1], bx0 - rwin[0]:bx1 - rwin[0], 3] > 0
            out = np.array(src[rows, cols], copy=True)
            out[..., :3] = np.where(alpha[..., None], pixels.from_plate(image[..., :3], depth, mode), out[..., :3])
        # packed rows run bottom-up (OFX); y-down rows r0..r1 are packed rows h-r1..h-r0
        r0, r1 = rows.start, rows.stop
        dst[h - r1:h - r0, cols] = out[::-1]
        return self._with_warning(node, f"ok {cols.start} {h - r1} {cols.stop} {h - r0}")


# --- the process -------------------------------------------------------------------------------------
def _recv_exact(sock: socket.socket, n: int, bridge: Bridge) -> bytes | None:
    """n bytes (None on EOF); a descriptor arriving with them is attached as the shared-memory buffer."""
    chunks, got = [], 0
    while got < n:
        data, fds, _flags, _addr = socket.recv_fds(sock, n - got, 4)
        for fd in fds[1:]:
            os.close(fd)
        if fds:
            bridge.attach(fds[0])
        if not data:
            return None
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def _send(sock: socket.socket, text: str) -> None:
    data = text.encode()
    sock.sendall(struct.pack("<I", len(data)) + data)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if not isinstance(exc, (KeyError, TypeError, AttributeError)) else f"{type(exc).__name__}: {text}"


def serve(fd: int, idle: float) -> int:
    sock = socket.socket(fileno=fd)
    bridge = Bridge()
    trace = bool(os.environ.get("VQEDIT_OFX_TRACE"))  # one line per request on stderr, with its time
    try:
        while True:
            ready, _, _ = select.select([sock], [], [], idle)
            if not ready:
                return 0  # idle: the plug-in starts a fresh bridge when it needs one
            head = _recv_exact(sock, 4, bridge)
            if head is None:
                return 0  # EOF: the host exited or unloaded the plug-in
            body = _recv_exact(sock, struct.unpack("<I", head)[0], bridge)
            if body is None:
                return 0
            t0 = time.perf_counter()

            def need(box: tuple[int, int, int, int]) -> None:
                _send(sock, "need {} {} {} {}".format(*box))
                if _recv_exact(sock, 1, bridge) != b"R":
                    raise ConnectionError("the plug-in closed the channel while sending pixels")

            try:
                reply = bridge.handle(json.loads(body), need)
            except ConnectionError:
                return 0
            except Exception as exc:  # every failure goes back to the host as one line
                reply = "error " + one_line(exc)
            if trace:
                print(f"vqedit OFX bridge: {reply[:60]} in {1e3 * (time.perf_counter() - t0):.1f} ms "
                      f"(EditNode {bridge.last_evaluate_ms:.1f} ms)", file=sys.stderr)
            _send(sock, reply)
    finally:
        for node in bridge.nodes.values():
            node.close()
        sock.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m host_plugin.ofx.bridge", description=__doc__.split("\n")[0])
    ap.add_argument("--fd", type=int, required=True, help="the inherited Unix socket to serve")
    ap.add_argument("--idle", type=float, default=900.0, help="exit after this many seconds without a request")
    args = ap.parse_args(argv)
    # descriptors the host left inheritable are not ours: holding them could keep the host's pipes open
    os.closerange(3, args.fd)
    os.closerange(args.fd + 1, 1 << 16)
    try:
        return serve(args.fd, args.idle)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        print(f"vqedit OFX bridge: {one_line(exc)}", file=sys.stderr)
        return 1


# --- in-process entry point (kept for Python callers of the first bridge) ------------------------------
_NODES: dict[str, EditNode] = {}


def render(instance: str, params: dict[str, Any], time: float, src_rgba: np.ndarray,
           src_bounds: tuple[int, int, int, int]) -> np.ndarray:
    """``src_rgba`` (H, W, C) float32 over ``src_bounds`` (x1, y1, x2, y2, y-down) → the composite over the
    same bounds, in this process (the compiled plug-in goes through :class:`Bridge` instead)."""
    x1, y1, x2, y2 = src_bounds
    node = _NODES.setdefault(instance, EditNode())
    node.knobs = knobs_from_params(params)
    window = (x1, y1, x2 - x1, y2 - y1)
    plate = Plate(np.asarray(src_rgba, np.float32), window, window, str(params.get("colorspace", "lin_rec709")))
    return node.evaluate(int(round(time)), plate).image


if __name__ == "__main__":
    raise SystemExit(main())
