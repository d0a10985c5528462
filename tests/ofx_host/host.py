"""A headless OpenFX host in ctypes, written for the tests: it loads a compiled ``.ofx``, runs the
image-effect actions on it and gives it images in whatever layout a test asks for.

Why our own: no OFX host is installed here, and the plug-in must be driven the way real hosts drive it
(C function-pointer suites, property sets, variadic parameter getters, images with their own bounds and
row strides, negative ones included). It implements the property, image-effect, parameter and message
suites (the ones VQFaceEdit fetches) and returns NULL for every other suite, as a minimal host may.
The suite structs here are declared independently of the plug-in's header, in the standard's order.
"""

from __future__ import annotations

import ctypes as C
import itertools
import time as _time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK, FAILED, ERR_UNKNOWN, ERR_BAD_HANDLE, ERR_BAD_INDEX, REPLY_DEFAULT = 0, 1, 3, 9, 10, 14
DEPTHS = {np.dtype(np.uint8): "OfxBitDepthByte", np.dtype(np.uint16): "OfxBitDepthShort",
          np.dtype(np.float32): "OfxBitDepthFloat"}
COMPONENTS = {4: "OfxImageComponentRGBA", 3: "OfxImageComponentRGB", 1: "OfxImageComponentAlpha"}

H = C.c_void_p
S = C.c_int
FETCH = C.CFUNCTYPE(C.c_void_p, H, C.c_char_p, C.c_int)
ENTRY = C.CFUNCTYPE(S, C.c_char_p, H, H, H)


class OfxHostStruct(C.Structure):
    _fields_ = [("host", H), ("fetchSuite", FETCH)]


class OfxPluginStruct(C.Structure):
    _fields_ = [("pluginApi", C.c_char_p), ("apiVersion", C.c_int), ("pluginIdentifier", C.c_char_p),
                ("pluginVersionMajor", C.c_uint), ("pluginVersionMinor", C.c_uint),
                ("setHost", C.CFUNCTYPE(None, C.POINTER(OfxHostStruct))), ("mainEntry", ENTRY)]


def _suite(name: str, fields: list[tuple[str, Any]]) -> type[C.Structure]:
    return type(name, (C.Structure,), {"_fields_": fields})


# --- property sets ---------------------------------------------------------------------------------
@dataclass
class PropSet:
    values: dict[str, list[Any]] = field(default_factory=dict)
    keep: dict[tuple[str, int], Any] = field(default_factory=dict)  # C strings handed out stay alive

    def get(self, name: str, default: Any = None) -> Any:
        v = self.values.get(name)
        return v[0] if v else default


@dataclass
class Param:
    kind: str
    props: PropSet
    value: Any = None
    keys: dict[float, float] | None = None  # animation: time → value, linear between keys
    keep: Any = None

    def at(self, time: float) -> Any:
        if not self.keys:
            return self.value
        ts = sorted(self.keys)
        return float(np.interp(time, ts, [self.keys[t] for t in ts]))


@dataclass
class Clip:
    name: str
    props: PropSet
    image: np.ndarray | None = None  # y-down pixels, as a test thinks of them
    origin: tuple[int, int] = (0, 0)  # OFX pixel coordinates (x1, y1) of the image's bottom-left
    negative_rows: bool = False  # hand the plug-in top-down memory with a negative rowBytes
    memory: np.ndarray | None = None  # what the last clipGetImage handed out (read back for Output)


@dataclass
class Effect:
    props: PropSet
    params: dict[str, Param] = field(default_factory=dict)
    param_order: list[str] = field(default_factory=list)
    clips: dict[str, Clip] = field(default_factory=dict)
    persistent: str | None = None


class OfxHost:
    """Load ``path`` (the ``.ofx`` binary), then :meth:`describe`, :meth:`create_instance`, :meth:`render`."""

    def __init__(self, path: str, project: tuple[int, int] = (96, 96)):
        self._objects: dict[int, Any] = {}
        self._handles: dict[int, int] = {}  # id(object) → its handle (objects that live as long as the host)
        self._ids = itertools.count(0x1000)
        self.messages: list[tuple[str, str]] = []
        self.project = project
        self.host_props = self._new(PropSet({"OfxPropName": ["org.vqedit.testhost"], "OfxPropLabel": ["vqedit test host"],
                                             "OfxImageEffectHostPropIsBackground": [1]}))
        self._suites = self._build_suites()
        self._host = OfxHostStruct(self.host_props, FETCH(self._fetch))
        self.lib = C.CDLL(path, mode=C.RTLD_LOCAL)
        self.lib.OfxGetNumberOfPlugins.restype = C.c_int
        self.lib.OfxGetPlugin.restype = C.POINTER(OfxPluginStruct)
        self.lib.OfxGetPlugin.argtypes = [C.c_int]
        self.plugin = self.lib.OfxGetPlugin(0).contents
        self.plugin.setHost(C.byref(self._host))
        self.descriptors: dict[str, int] = {}
        self.base: int | None = None

    # --- registry ------------------------------------------------------------------------------
    def _new(self, obj: Any) -> int:
        handle = next(self._ids)
        self._objects[handle] = obj
        self._handles[id(obj)] = handle
        return handle

    def obj(self, handle: int | None) -> Any:
        return self._objects.get(int(handle or 0))

    def action(self, name: str, handle: int | None = None, in_args: PropSet | None = None,
               out_args: PropSet | None = None) -> int:
        ih = self._new(in_args) if in_args is not None else None
        oh = self._new(out_args) if out_args is not None else None
        try:
            return int(self.plugin.mainEntry(name.encode(), handle, ih, oh))
        finally:  # the action's argument sets live for the action only
            for h in (ih, oh):
                if h is not None:
                    self._objects.pop(h, None)

    # --- suites --------------------------------------------------------------------------------
    def _build_suites(self) -> dict[tuple[str, int], Any]:
        pset, pget = [], []
        for kind, ctype in (("Pointer", C.c_void_p), ("String", C.c_char_p), ("Double", C.c_double), ("Int", C.c_int)):
            pset.append((f"propSet{kind}", C.CFUNCTYPE(S, H, C.c_char_p, C.c_int, ctype), self._setter(kind)))
        for kind in ("Pointer", "String", "Double", "Int"):
            pset.append((f"propSet{kind}N", C.CFUNCTYPE(S, H, C.c_char_p, C.c_int, C.c_void_p), self._setter_n(kind)))
        for kind in ("Pointer", "String", "Double", "Int"):
            pget.append((f"propGet{kind}", C.CFUNCTYPE(S, H, C.c_char_p, C.c_int, C.c_void_p), self._getter(kind)))
        for kind in ("Pointer", "String", "Double", "Int"):
            pget.append((f"propGet{kind}N", C.CFUNCTYPE(S, H, C.c_char_p, C.c_int, C.c_void_p), self._getter_n(kind)))
        prop = pset + pget + [
            ("propReset", C.CFUNCTYPE(S, H, C.c_char_p), lambda h, n: OK),
            ("propGetDimension", C.CFUNCTYPE(S, H, C.c_char_p, C.c_void_p), self._dimension),
        ]
        effect = [
            ("getPropertySet", C.CFUNCTYPE(S, H, C.c_void_p), self._get_property_set),
            ("getParamSet", C.CFUNCTYPE(S, H, C.c_void_p), self._get_param_set),
            ("clipDefine", C.CFUNCTYPE(S, H, C.c_char_p, C.c_void_p), self._clip_define),
            ("clipGetHandle", C.CFUNCTYPE(S, H, C.c_char_p, C.c_void_p, C.c_void_p), self._clip_get_handle),
            ("clipGetPropertySet", C.CFUNCTYPE(S, H, C.c_void_p), self._clip_props),
            ("clipGetImage", C.CFUNCTYPE(S, H, C.c_double, C.c_void_p, C.c_void_p), self._clip_get_image),
            ("clipReleaseImage", C.CFUNCTYPE(S, H), self._clip_release_image),
            ("clipGetRegionOfDefinition", C.CFUNCTYPE(S, H, C.c_double, C.c_void_p), self._clip_rod),
            ("abort", C.CFUNCTYPE(C.c_int, H), lambda h: 0),
            ("imageMemoryAlloc", C.CFUNCTYPE(S, H, C.c_size_t, C.c_void_p), lambda *a: FAILED),
            ("imageMemoryFree", C.CFUNCTYPE(S, H), lambda *a: FAILED),
            ("imageMemoryLock", C.CFUNCTYPE(S, H, C.c_void_p), lambda *a: FAILED),
            ("imageMemoryUnlock", C.CFUNCTYPE(S, H), lambda *a: FAILED),
        ]
        # variadic getters: on x86-64 SysV the pointer arguments after the fixed ones arrive in integer
        # registers exactly as for a non-variadic function, so fixed extra pointer parameters read them
        param = [
            ("paramDefine", C.CFUNCTYPE(S, H, C.c_char_p, C.c_char_p, C.c_void_p), self._param_define),
            ("paramGetHandle", C.CFUNCTYPE(S, H, C.c_char_p, C.c_void_p, C.c_void_p), self._param_get_handle),
            ("paramSetGetPropertySet", C.CFUNCTYPE(S, H, C.c_void_p), self._get_property_set),  # = the effect's
            ("paramGetPropertySet", C.CFUNCTYPE(S, H, C.c_void_p), self._param_props),
            ("paramGetValue", C.CFUNCTYPE(S, H, C.c_void_p), lambda h, out: self._param_value(h, None, out)),
            ("paramGetValueAtTime", C.CFUNCTYPE(S, H, C.c_double, C.c_void_p), self._param_value),
        ]
        message = [
            ("message", C.CFUNCTYPE(S, H, C.c_char_p, C.c_char_p, C.c_char_p, C.c_char_p), self._message),
            ("setPersistentMessage", C.CFUNCTYPE(S, H, C.c_char_p, C.c_char_p, C.c_char_p, C.c_char_p), self._persistent),
            ("clearPersistentMessage", C.CFUNCTYPE(S, H), self._clear_persistent),
        ]
        suites = {}
        self._callbacks = []
        for key, fields in ((("OfxPropertySuite", 1), prop), (("OfxImageEffectSuite", 1), effect),
                            (("OfxParameterSuite", 1), param), (("OfxMessageSuite", 2), message)):
            struct = _suite(key[0] + "Struct", [(n, t) for n, t, _ in fields])
            cbs = [t(self._guard(f)) for _, t, f in fields]
            self._callbacks += cbs
            suites[key] = struct(*cbs)
        return suites

    def _guard(self, fn: Any) -> Any:
        def call(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:  # a host bug must show up in the test, not crash the process
                self.messages.append(("host-exception", f"{fn.__name__ if hasattr(fn, '__name__') else fn}: {exc!r}"))
                return FAILED
        return call

    def _fetch(self, host: int, name: bytes, version: int) -> int | None:
        suite = self._suites.get((name.decode(), version))
        return C.addressof(suite) if suite is not None else None

    # --- property suite ------------------------------------------------------------------------
    def _set(self, h: int, name: bytes, index: int, value: Any) -> int:
        ps = self.obj(h)
        if not isinstance(ps, PropSet):
            return ERR_BAD_HANDLE
        vals = ps.values.setdefault(name.decode(), [])
        while len(vals) <= index:
            vals.append(None)
        vals[index] = value
        return OK

    def _setter(self, kind: str) -> Any:
        def setter(h, name, index, value):
            if kind == "String":
                value = value.decode() if value is not None else ""
            return self._set(h, name, index, value)
        return setter

    def _setter_n(self, kind: str) -> Any:
        ctype = {"Pointer": C.c_void_p, "String": C.c_char_p, "Double": C.c_double, "Int": C.c_int}[kind]

        def setter(h, name, count, ptr):
            arr = C.cast(ptr, C.POINTER(ctype))
            for i in range(count):
                v = arr[i]
                self._set(h, name, i, v.decode() if kind == "String" else v)
            return OK
        return setter

    def _lookup(self, h: int, name: bytes, index: int) -> tuple[int, Any]:
        ps = self.obj(h)
        if not isinstance(ps, PropSet):
            return ERR_BAD_HANDLE, None
        vals = ps.values.get(name.decode())
        if vals is None:
            return ERR_UNKNOWN, None
        if index >= len(vals):
            return ERR_BAD_INDEX, None
        return OK, vals[index]

    def _write(self, h: int, kind: str, name: bytes, index: int, value: Any, ptr: int) -> None:
        if kind == "String":
            buf = C.create_string_buffer(str(value).encode())
            self.obj(h).keep[(name.decode(), index)] = buf
            C.cast(ptr, C.POINTER(C.c_void_p))[0] = C.addressof(buf)
        elif kind == "Pointer":
            C.cast(ptr, C.POINTER(C.c_void_p))[0] = value
        elif kind == "Double":
            C.cast(ptr, C.POINTER(C.c_double))[0] = float(value)
        else:
            C.cast(ptr, C.POINTER(C.c_int))[0] = int(value)

    def _getter(self, kind: str) -> Any:
        def getter(h, name, index, ptr):
            st, value = self._lookup(h, name, index)
            if st == OK:
                self._write(h, kind, name, index, value, ptr)
            return st
        return getter

    def _getter_n(self, kind: str) -> Any:
        size = {"Pointer": 8, "String": 8, "Double": 8, "Int": 4}[kind]

        def getter(h, name, count, ptr):
            for i in range(count):
                st, value = self._lookup(h, name, i)
                if st != OK:
                    return st
                self._write(h, kind, name, i, value, ptr + i * size)
            return OK
        return getter

    def _dimension(self, h, name, ptr):
        ps = self.obj(h)
        if not isinstance(ps, PropSet) or name.decode() not in ps.values:
            return ERR_UNKNOWN
        C.cast(ptr, C.POINTER(C.c_int))[0] = len(ps.values[name.decode()])
        return OK

    # --- image effect suite --------------------------------------------------------------------
    def _effect(self, h: int) -> Effect | None:
        e = self.obj(h)
        return e if isinstance(e, Effect) else None

    def _out(self, ptr: int | None, value: int) -> None:
        if ptr:
            C.cast(ptr, C.POINTER(C.c_void_p))[0] = value

    def _get_property_set(self, h, out):
        e = self._effect(h)
        if e is None:
            return ERR_BAD_HANDLE
        self._out(out, self._handle_of(e.props))
        return OK

    def _handle_of(self, obj: Any) -> int:
        handle = self._handles.get(id(obj))
        if handle is not None and self._objects.get(handle) is obj:
            return handle
        return self._new(obj)

    def _get_param_set(self, h, out):
        e = self._effect(h)
        if e is None:
            return ERR_BAD_HANDLE
        self._out(out, self._handle_of(e))  # the effect doubles as its parameter set
        return OK

    def _clip_define(self, h, name, out):
        e = self._effect(h)
        if e is None:
            return ERR_BAD_HANDLE
        clip = Clip(name.decode(), PropSet({"OfxPropName": [name.decode()]}))
        e.clips[clip.name] = clip
        self._out(out, self._handle_of(clip.props))
        return OK

    def _clip_get_handle(self, h, name, clip_out, props_out):
        e = self._effect(h)
        clip = e.clips.get(name.decode()) if e else None
        if clip is None:
            return ERR_UNKNOWN
        self._out(clip_out, self._handle_of(clip))
        self._out(props_out, self._handle_of(clip.props))
        return OK

    def _clip_props(self, h, out):
        clip = self.obj(h)
        if not isinstance(clip, Clip):
            return ERR_BAD_HANDLE
        self._out(out, self._handle_of(clip.props))
        return OK

    def _image_props(self, arr: np.ndarray, origin: tuple[int, int], negative: bool) -> PropSet:
        h, w = arr.shape[:2]
        comps = arr.shape[2] if arr.ndim == 3 else 1
        if negative:  # memory top-down: the bottom row (y1) is the last one in memory
            mem = np.ascontiguousarray(arr)
            stride = mem.strides[0]
            data = mem.ctypes.data + (h - 1) * stride
            row_bytes = -stride
        else:
            mem = np.ascontiguousarray(arr[::-1])
            data, row_bytes = mem.ctypes.data, mem.strides[0]
        x1, y1 = origin
        props = PropSet({
            "OfxImagePropData": [data], "OfxImagePropBounds": [x1, y1, x1 + w, y1 + h],
            "OfxImagePropRowBytes": [row_bytes], "OfxImageEffectPropPixelDepth": [DEPTHS[arr.dtype]],
            "OfxImageEffectPropComponents": [COMPONENTS[comps]], "OfxImagePropPixelAspectRatio": [1.0],
            "OfxImageEffectPropPreMultiplication": ["OfxImageAlphaPremultiplied"],
        })
        props.keep[("memory", 0)] = mem
        return props

    def _clip_get_image(self, h, time, region, out):
        clip = self.obj(h)
        if not isinstance(clip, Clip) or clip.image is None:
            return FAILED
        props = self._image_props(clip.image, clip.origin, clip.negative_rows)
        clip.memory = props.keep[("memory", 0)]
        self._out(out, self._new(props))
        return OK

    def _clip_release_image(self, h):
        return OK if self._objects.pop(int(h or 0), None) is not None else ERR_BAD_HANDLE

    def _clip_rod(self, h, time, ptr):
        clip = self.obj(h)
        if not isinstance(clip, Clip) or clip.image is None:
            return FAILED
        x1, y1 = clip.origin
        arr = C.cast(ptr, C.POINTER(C.c_double))
        arr[0], arr[1], arr[2], arr[3] = x1, y1, x1 + clip.image.shape[1], y1 + clip.image.shape[0]
        return OK

    # --- parameter suite -----------------------------------------------------------------------
    def _param_define(self, h, kind, name, out):
        e = self._effect(h)
        if e is None:
            return ERR_BAD_HANDLE
        p = Param(kind.decode(), PropSet({"OfxPropName": [name.decode()]}))
        e.params[name.decode()] = p
        e.param_order.append(name.decode())
        self._out(out, self._handle_of(p.props))
        return OK

    def _param_get_handle(self, h, name, out, props_out):
        e = self._effect(h)
        p = e.params.get(name.decode()) if e else None
        if p is None:
            return ERR_UNKNOWN
        self._out(out, self._handle_of(p))
        self._out(props_out, self._handle_of(p.props))
        return OK

    def _param_props(self, h, out):
        p = self.obj(h)
        if not isinstance(p, Param):
            return ERR_BAD_HANDLE
        self._out(out, self._handle_of(p.props))
        return OK

    def _param_value(self, h, time, ptr):
        p = self.obj(h)
        if not isinstance(p, Param):
            return ERR_BAD_HANDLE
        value = p.at(time if time is not None else 0.0)
        if p.kind == "OfxParamTypeString":
            p.keep = C.create_string_buffer(str(value).encode())
            C.cast(ptr, C.POINTER(C.c_void_p))[0] = C.addressof(p.keep)
        elif p.kind == "OfxParamTypeDouble":
            C.cast(ptr, C.POINTER(C.c_double))[0] = float(value)
        else:
            C.cast(ptr, C.POINTER(C.c_int))[0] = int(value)
        return OK

    # --- message suite -------------------------------------------------------------------------
    def _message(self, h, kind, mid, fmt, arg):
        self.messages.append((kind.decode(), (arg or b"").decode() if fmt == b"%s" else fmt.decode()))
        return OK

    def _persistent(self, h, kind, mid, fmt, arg):
        text = (arg or b"").decode() if fmt == b"%s" else fmt.decode()
        self.messages.append((kind.decode(), text))
        e = self._effect(h)
        if e is not None:
            e.persistent = text
        return OK

    def _clear_persistent(self, h):
        e = self._effect(h)
        if e is not None:
            e.persistent = None
        return OK

    # --- what a host does ----------------------------------------------------------------------
    def load(self) -> int:
        return self.action("OfxActionLoad")

    def describe(self) -> Effect:
        """kOfxActionDescribe on the plug-in's base descriptor."""
        self.base_effect = Effect(PropSet({"OfxPluginPropFilePath": [""]}))
        self.base = self._new(self.base_effect)
        st = self.action("OfxActionDescribe", self.base)
        if st != OK:
            raise RuntimeError(f"describe: status {st}")
        return self.base_effect

    def describe_in_context(self, context: str) -> Effect:
        desc = Effect(PropSet({"OfxImageEffectPropContext": [context]}))
        handle = self._new(desc)
        st = self.action("OfxImageEffectActionDescribeInContext", handle,
                         PropSet({"OfxImageEffectPropContext": [context]}))
        if st != OK:
            raise RuntimeError(f"describe in context {context}: status {st}")
        self.descriptors[context] = handle
        return desc

    def create_instance(self, context: str) -> int:
        desc = self.obj(self.descriptors[context])
        props = PropSet({"OfxImageEffectPropContext": [context], "OfxPropInstanceData": [None],
                         "OfxImageEffectPropProjectExtent": [float(self.project[0]), float(self.project[1])],
                         "OfxImageEffectPropProjectSize": [float(self.project[0]), float(self.project[1])],
                         "OfxImageEffectPropProjectOffset": [0.0, 0.0]})
        inst = Effect(props)
        for name in desc.param_order:
            d = desc.params[name]
            default = d.props.values.get("OfxParamPropDefault", [None])[0]
            inst.params[name] = Param(d.kind, PropSet(dict(d.props.values)), default)
            inst.param_order.append(name)
        for name, clip in desc.clips.items():
            inst.clips[name] = Clip(name, PropSet({**clip.props.values, "OfxImageClipPropConnected": [0]}))
        handle = self._new(inst)
        st = self.action("OfxActionCreateInstance", handle)
        if st != OK:
            raise RuntimeError(f"create instance: status {st}")
        return handle

    def set_param(self, inst: int, name: str, value: Any = None, keys: dict[float, float] | None = None) -> None:
        p = self.obj(inst).params[name]
        if p.kind == "OfxParamTypeChoice" and isinstance(value, str):
            value = p.props.values["OfxParamPropChoiceOption"].index(value)
        p.value, p.keys = value, keys

    def connect(self, inst: int, clip: str, image: np.ndarray | None, origin: tuple[int, int] = (0, 0),
                negative_rows: bool = False) -> None:
        c = self.obj(inst).clips[clip]
        c.image, c.origin, c.negative_rows = image, origin, negative_rows
        c.props.values["OfxImageClipPropConnected"] = [int(image is not None)]
        if image is not None:  # what the clip delivers (kOfxImageEffectPropComponents / PixelDepth)
            c.props.values["OfxImageEffectPropComponents"] = [COMPONENTS[image.shape[2] if image.ndim == 3 else 1]]
            c.props.values["OfxImageEffectPropPixelDepth"] = [DEPTHS[image.dtype]]

    def render(self, inst: int, time: float, window: tuple[int, int, int, int] | None = None,
               scale: float = 1.0, out_negative_rows: bool = False, fill: float = 0.5) -> tuple[int, np.ndarray]:
        """Render ``time`` into a fresh output image the size of the Source (pre-filled with ``fill`` so
        unwritten pixels show). Returns (status, y-down output pixels)."""
        e = self.obj(inst)
        src = e.clips["Source"]
        assert src.image is not None
        out = np.full(src.image.shape, fill * (255 if src.image.dtype == np.uint8 else 1), dtype=src.image.dtype)
        e.clips["Output"].image, e.clips["Output"].origin = out, src.origin
        e.clips["Output"].negative_rows = out_negative_rows
        x1, y1 = src.origin
        window = window or (x1, y1, x1 + out.shape[1], y1 + out.shape[0])
        args = PropSet({
            "OfxPropTime": [float(time)], "OfxImageEffectPropRenderWindow": list(window),
            "OfxImageEffectPropRenderScale": [scale, scale],
            "OfxImageEffectPropFieldToRender": ["OfxImageFieldNone"],
        })
        t0 = _time.perf_counter()
        st = self.action("OfxImageEffectActionRender", inst, args)
        self.last_render_s = _time.perf_counter() - t0  # what the host waited for in the render action
        mem = e.clips["Output"].memory  # the plug-in wrote into the memory this host handed out
        result = np.array(mem if out_negative_rows else mem[::-1])
        return st, result

    def region_of_definition(self, inst: int, time: float) -> tuple[int, list[float] | None]:
        out = PropSet()
        st = self.action("OfxImageEffectActionGetRegionOfDefinition", inst,
                         PropSet({"OfxPropTime": [float(time)], "OfxImageEffectPropRenderScale": [1.0, 1.0]}), out)
        return st, out.values.get("OfxImageEffectPropRegionOfDefinition")

    def clip_preferences(self, inst: int) -> tuple[int, dict[str, list[Any]]]:
        out = PropSet()
        st = self.action("OfxImageEffectActionGetClipPreferences", inst, None, out)
        return st, out.values

    def is_identity(self, inst: int, time: float) -> tuple[int, dict[str, list[Any]]]:
        out = PropSet({"OfxPropName": [""], "OfxPropTime": [float(time)]})
        st = self.action("OfxImageEffectActionIsIdentity", inst, PropSet({
            "OfxPropTime": [float(time)], "OfxImageEffectPropFieldToRender": ["OfxImageFieldNone"],
            "OfxImageEffectPropRenderWindow": [0, 0, *self.project], "OfxImageEffectPropRenderScale": [1.0, 1.0]}), out)
        return st, out.values

    def persistent_message(self, inst: int) -> str | None:
        return self.obj(inst).persistent

    def destroy_instance(self, inst: int) -> int:
        return self.action("OfxActionDestroyInstance", inst)

    def unload(self) -> int:
        st = self.action("OfxActionUnload")
        import _ctypes

        _ctypes.dlclose(self.lib._handle)
        return st
