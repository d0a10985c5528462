// VQFaceEdit: the OpenFX image-effect plug-in. It describes the gizmo's knobs (the table generated from
// host_plugin/ofx/params.py), and at render time packs the Source (and Paint) pixels of the render
// window into shared memory, sends the knob values to the bridge process (host_plugin/ofx/bridge.py),
// and copies the composite back in the host's bit depth and row layout. Outside the render's alpha
// the output rows are copied from the Source bytes themselves, so they are the Source bit for bit.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bridge_channel.h"
#include "ofx_abi.h"

namespace {

struct ParamDef {
  const char *name, *kind, *label, *hint, *page;
  double number, lo, hi;
  const char *text, *options;
  int animates;
};
#include "vq_params.inc"

OfxHost *gHost = nullptr;
const OfxPropertySuiteV1 *gProp = nullptr;
const OfxImageEffectSuiteV1 *gEffect = nullptr;
const OfxParameterSuiteV1 *gParam = nullptr;
const OfxMessageSuiteV2 *gMessage = nullptr;
int gMessageVersion = 0;

std::mutex gBridgeMutex;  // one bridge and one shared buffer for every instance: one request at a time
vqedit::BridgeChannel gBridge;
vqedit::SharedBuffer gShm;
unsigned gNextInstance = 1;
const bool gTrace = std::getenv("VQEDIT_OFX_TRACE") != nullptr;  // timings on stderr (benchmarks)

struct Instance {
  OfxImageEffectHandle effect = nullptr;
  std::string id, context;
  OfxImageClipHandle source = nullptr, paint = nullptr, output = nullptr;
  std::vector<OfxParamHandle> params;  // parallel to kParams
};

// --- small helpers ---------------------------------------------------------------------------------
std::string json_string(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// "VQFaceEdit: message" on one line: hosts show a persistent message as a single line.
std::string message_line(const std::string &message) {
  std::string line = "VQFaceEdit: " + message;
  for (char &c : line)
    if (c == '\n' || c == '\r') c = ' ';
  return line;
}

void post_error(OfxImageEffectHandle effect, const std::string &message) {
  const std::string line = message_line(message);
  if (!gMessage) {
    std::fprintf(stderr, "%s\n", line.c_str());
    return;
  }
  if (gMessageVersion >= 2 && gMessage->setPersistentMessage)
    gMessage->setPersistentMessage(effect, ofx::kMessageError, "", "%s", line.c_str());
  else
    gMessage->message(effect, ofx::kMessageError, "", "%s", line.c_str());
}

// A render that went through with something to know (a shot to re-prep): the host shows it and keeps the frame.
void post_warning(OfxImageEffectHandle effect, const std::string &message) {
  const std::string line = message_line(message);
  if (gMessage && gMessageVersion >= 2 && gMessage->setPersistentMessage)
    gMessage->setPersistentMessage(effect, ofx::kMessageWarning, "", "%s", line.c_str());
  else
    std::fprintf(stderr, "%s\n", line.c_str());
}

void clear_error(OfxImageEffectHandle effect) {
  if (gMessage && gMessageVersion >= 2 && gMessage->clearPersistentMessage) gMessage->clearPersistentMessage(effect);
}

Instance *instance_of(OfxImageEffectHandle effect) {
  OfxPropertySetHandle props = nullptr;
  if (gEffect->getPropertySet(effect, &props) != ofx::kStatOK) return nullptr;
  void *p = nullptr;
  gProp->propGetPointer(props, ofx::kPropInstanceData, 0, &p);
  return static_cast<Instance *>(p);
}

// --- describe --------------------------------------------------------------------------------------
OfxStatus describe(OfxImageEffectHandle effect) {
  OfxPropertySetHandle p = nullptr;
  if (gEffect->getPropertySet(effect, &p) != ofx::kStatOK) return ofx::kStatErrBadHandle;
  gProp->propSetString(p, ofx::kPropLabel, 0, "VQFaceEdit");
  gProp->propSetString(p, ofx::kPropGrouping, 0, "vqedit");
  gProp->propSetString(p, ofx::kPropPluginDescription, 0,
                       "Edits the face in the plate through a vqedit render server (vqedit serve): animatable "
                       "face knobs, label painting from the Paint clip's alpha.");
  gProp->propSetString(p, ofx::kPropSupportedContexts, 0, ofx::kContextFilter);
  gProp->propSetString(p, ofx::kPropSupportedContexts, 1, ofx::kContextGeneral);
  gProp->propSetString(p, ofx::kPropSupportedPixelDepths, 0, ofx::kBitDepthByte);
  gProp->propSetString(p, ofx::kPropSupportedPixelDepths, 1, ofx::kBitDepthShort);
  gProp->propSetString(p, ofx::kPropSupportedPixelDepths, 2, ofx::kBitDepthFloat);
  // honest capabilities: any image bounds and render window are handled (multi-resolution), but each
  // render asks the server for the whole face, so tiles would multiply server work: no tiles.
  gProp->propSetInt(p, ofx::kPropSupportsMultiResolution, 0, 1);
  gProp->propSetInt(p, ofx::kPropSupportsTiles, 0, 0);
  gProp->propSetInt(p, ofx::kPropTemporalClipAccess, 0, 0);
  gProp->propSetInt(p, ofx::kPropSupportsMultipleClipDepths, 0, 0);
  gProp->propSetInt(p, ofx::kPropSingleInstance, 0, 0);
  gProp->propSetInt(p, ofx::kPropHostFrameThreading, 0, 0);
  // renders of different instances may run concurrently (they queue on the one bridge channel)
  gProp->propSetString(p, ofx::kPropRenderThreadSafety, 0, ofx::kRenderInstanceSafe);
  return ofx::kStatOK;
}

OfxStatus define_clip(OfxImageEffectHandle effect, const char *name, bool optional, bool mask) {
  OfxPropertySetHandle c = nullptr;
  if (gEffect->clipDefine(effect, name, &c) != ofx::kStatOK || !c) return ofx::kStatFailed;
  if (mask) {
    gProp->propSetString(c, ofx::kPropSupportedComponents, 0, ofx::kComponentAlpha);
    gProp->propSetString(c, ofx::kPropSupportedComponents, 1, ofx::kComponentRGBA);
  } else {
    gProp->propSetString(c, ofx::kPropSupportedComponents, 0, ofx::kComponentRGBA);
    gProp->propSetString(c, ofx::kPropSupportedComponents, 1, ofx::kComponentRGB);
  }
  gProp->propSetInt(c, ofx::kPropTemporalClipAccess, 0, 0);
  gProp->propSetInt(c, ofx::kPropSupportsTiles, 0, 0);
  if (optional) gProp->propSetInt(c, ofx::kClipPropOptional, 0, 1);
  if (mask) gProp->propSetInt(c, ofx::kClipPropIsMask, 0, 1);
  return ofx::kStatOK;
}

OfxStatus define_params(OfxImageEffectHandle effect) {
  OfxParamSetHandle set = nullptr;
  if (gEffect->getParamSet(effect, &set) != ofx::kStatOK) return ofx::kStatFailed;
  for (const ParamDef &d : kParams) {
    std::string kind = d.kind;
    const char *type = kind == "double"   ? ofx::kParamTypeDouble
                       : kind == "int"    ? ofx::kParamTypeInteger
                       : kind == "bool"   ? ofx::kParamTypeBoolean
                       : kind == "choice" ? ofx::kParamTypeChoice
                                          : ofx::kParamTypeString;
    OfxPropertySetHandle p = nullptr;
    if (gParam->paramDefine(set, type, d.name, &p) != ofx::kStatOK || !p) return ofx::kStatFailed;
    gProp->propSetString(p, ofx::kPropLabel, 0, d.label);
    gProp->propSetString(p, ofx::kParamPropHint, 0, d.hint);
    gProp->propSetString(p, ofx::kParamPropScriptName, 0, d.name);
    gProp->propSetInt(p, ofx::kParamPropAnimates, 0, d.animates);
    if (!d.animates) gProp->propSetString(p, ofx::kParamPropCacheInvalidation, 0, ofx::kParamInvalidateAll);
    if (kind == "double") {
      gProp->propSetDouble(p, ofx::kParamPropDefault, 0, d.number);
      gProp->propSetDouble(p, ofx::kParamPropMin, 0, d.lo);
      gProp->propSetDouble(p, ofx::kParamPropMax, 0, d.hi);
      gProp->propSetDouble(p, ofx::kParamPropDisplayMin, 0, d.lo);
      gProp->propSetDouble(p, ofx::kParamPropDisplayMax, 0, d.hi);
    } else if (kind == "int") {
      gProp->propSetInt(p, ofx::kParamPropDefault, 0, static_cast<int>(d.number));
      gProp->propSetInt(p, ofx::kParamPropMin, 0, static_cast<int>(d.lo));
      gProp->propSetInt(p, ofx::kParamPropMax, 0, static_cast<int>(d.hi));
    } else if (kind == "bool") {
      gProp->propSetInt(p, ofx::kParamPropDefault, 0, d.number != 0.0);
    } else if (kind == "choice") {
      std::string opts = d.options;
      int i = 0;
      size_t start = 0;
      for (;;) {
        size_t bar = opts.find('|', start);
        std::string opt = opts.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
        gProp->propSetString(p, ofx::kParamPropChoiceOption, i++, opt.c_str());
        if (bar == std::string::npos) break;
        start = bar + 1;
      }
      gProp->propSetInt(p, ofx::kParamPropDefault, 0, static_cast<int>(d.number));
    } else {
      gProp->propSetString(p, ofx::kParamPropDefault, 0, d.text);
      gProp->propSetString(p, ofx::kParamPropStringMode, 0, ofx::kParamStringIsSingleLine);
    }
  }
  OfxPropertySetHandle setProps = nullptr;  // the order hosts show the pages in
  if (gParam->paramSetGetPropertySet && gParam->paramSetGetPropertySet(set, &setProps) == ofx::kStatOK && setProps) {
    int i = 0;
    for (const char *page : kPages) gProp->propSetString(setProps, ofx::kPluginPropParamPageOrder, i++, page);
  }
  for (const char *page : kPages) {  // pages the way hosts show them, children in table order
    OfxPropertySetHandle p = nullptr;
    if (gParam->paramDefine(set, ofx::kParamTypePage, page, &p) != ofx::kStatOK || !p) continue;
    gProp->propSetString(p, ofx::kPropLabel, 0, page);
    int n = 0;
    for (const ParamDef &d : kParams)
      if (std::strcmp(d.page, page) == 0) gProp->propSetString(p, ofx::kParamPropPageChild, n++, d.name);
  }
  return ofx::kStatOK;
}

OfxStatus describe_in_context(OfxImageEffectHandle effect, OfxPropertySetHandle in) {
  char *context = nullptr;
  gProp->propGetString(in, ofx::kPropContext, 0, &context);
  bool general = context && std::strcmp(context, ofx::kContextGeneral) == 0;
  if (define_clip(effect, ofx::kOutputClip, false, false) != ofx::kStatOK ||
      define_clip(effect, ofx::kSourceClip, false, false) != ofx::kStatOK)
    return ofx::kStatFailed;
  if (general && define_clip(effect, "Paint", true, true) != ofx::kStatOK) return ofx::kStatFailed;
  return define_params(effect);
}

// --- instances -------------------------------------------------------------------------------------
OfxStatus create_instance(OfxImageEffectHandle effect) {
  auto *inst = new Instance();
  inst->effect = effect;
  OfxPropertySetHandle props = nullptr;
  gEffect->getPropertySet(effect, &props);
  char *context = nullptr;
  gProp->propGetString(props, ofx::kPropContext, 0, &context);
  inst->context = context ? context : "";
  {
    std::lock_guard<std::mutex> lock(gBridgeMutex);
    inst->id = "i" + std::to_string(gNextInstance++);
  }
  gEffect->clipGetHandle(effect, ofx::kSourceClip, &inst->source, nullptr);
  gEffect->clipGetHandle(effect, ofx::kOutputClip, &inst->output, nullptr);
  if (inst->context == ofx::kContextGeneral) gEffect->clipGetHandle(effect, "Paint", &inst->paint, nullptr);
  OfxParamSetHandle set = nullptr;
  gEffect->getParamSet(effect, &set);
  for (const ParamDef &d : kParams) {
    OfxParamHandle h = nullptr;
    gParam->paramGetHandle(set, d.name, &h, nullptr);
    inst->params.push_back(h);
  }
  gProp->propSetPointer(props, ofx::kPropInstanceData, 0, inst);
  return ofx::kStatOK;
}

OfxStatus destroy_instance(OfxImageEffectHandle effect) {
  Instance *inst = instance_of(effect);
  if (!inst) return ofx::kStatOK;
  {
    std::lock_guard<std::mutex> lock(gBridgeMutex);
    if (gBridge.running()) {  // let the bridge drop the instance's EditNode (and its server socket)
      std::string reply, err;
      gBridge.request("{\"op\":\"forget\",\"instance\":" + json_string(inst->id) + "}", -1, 10.0, reply, err);
    }
  }
  OfxPropertySetHandle props = nullptr;
  gEffect->getPropertySet(effect, &props);
  gProp->propSetPointer(props, ofx::kPropInstanceData, 0, nullptr);
  delete inst;
  return ofx::kStatOK;
}

// --- render ----------------------------------------------------------------------------------------
struct Image {
  OfxPropertySetHandle handle = nullptr;
  unsigned char *data = nullptr;
  OfxRectI bounds{};
  int rowBytes = 0, comps = 0, bytesPerComp = 0;
  std::string depth;
  unsigned char *row(int y) const { return data + static_cast<ptrdiff_t>(y - bounds.y1) * rowBytes; }
  int pixelBytes() const { return comps * bytesPerComp; }
};

bool fetch_image(OfxImageClipHandle clip, OfxTime time, Image &img, std::string &err) {
  if (gEffect->clipGetImage(clip, time, nullptr, &img.handle) != ofx::kStatOK || !img.handle) {
    err = "the host gave no image";
    return false;
  }
  void *data = nullptr;
  char *depth = nullptr, *comps = nullptr;
  gProp->propGetPointer(img.handle, ofx::kImagePropData, 0, &data);
  gProp->propGetIntN(img.handle, ofx::kImagePropBounds, 4, &img.bounds.x1);
  gProp->propGetInt(img.handle, ofx::kImagePropRowBytes, 0, &img.rowBytes);
  gProp->propGetString(img.handle, ofx::kPropPixelDepth, 0, &depth);
  gProp->propGetString(img.handle, ofx::kPropComponents, 0, &comps);
  img.data = static_cast<unsigned char *>(data);
  img.depth = depth ? depth : "";
  std::string c = comps ? comps : "";
  img.comps = c == ofx::kComponentRGBA ? 4 : c == ofx::kComponentRGB ? 3 : c == ofx::kComponentAlpha ? 1 : 0;
  img.bytesPerComp = img.depth == ofx::kBitDepthByte ? 1 : img.depth == ofx::kBitDepthShort ? 2
                     : img.depth == ofx::kBitDepthFloat ? 4 : 0;
  if (!img.data || !img.comps || !img.bytesPerComp) {
    err = "unsupported image (" + img.depth + ", " + c + ")";
    return false;
  }
  return true;
}

struct Release {
  Image &img;
  ~Release() {
    if (img.handle) gEffect->clipReleaseImage(img.handle);
  }
};

// The parameter values at `time` as a JSON object, plus the few the plug-in itself needs.
std::string params_json(const Instance &inst, OfxTime time, int &frame_offset, double &timeout) {
  std::string out = "{";
  for (size_t i = 0; i < inst.params.size(); ++i) {
    const ParamDef &d = kParams[i];
    std::string kind = d.kind, value;
    OfxParamHandle h = inst.params[i];
    if (kind == "double") {
      double v = d.number;
      if (h) gParam->paramGetValueAtTime(h, time, &v);
      value = json_number(v);
      if (std::strcmp(d.name, "timeout") == 0) timeout = v;
    } else if (kind == "bool") {  // OFX booleans are ints
      int v = d.number != 0.0;
      if (h) gParam->paramGetValueAtTime(h, time, &v);
      value = v ? "true" : "false";
    } else if (kind == "int" || kind == "choice") {
      int v = static_cast<int>(d.number);
      if (h) gParam->paramGetValueAtTime(h, time, &v);
      if (kind == "choice") {
        std::string opts = d.options;  // send the option's text, not its index
        size_t start = 0;
        for (int k = 0; k < v && start != std::string::npos; ++k) {
          start = opts.find('|', start);
          if (start != std::string::npos) ++start;
        }
        std::string opt = start == std::string::npos ? "" : opts.substr(start, opts.find('|', start) - start);
        value = json_string(opt);
      } else {
        value = std::to_string(v);
        if (std::strcmp(d.name, "frame_offset") == 0) frame_offset = v;
      }
    } else {
      char *v = nullptr;
      if (h) gParam->paramGetValueAtTime(h, time, &v);
      value = json_string(v ? v : d.text);
    }
    out += (i ? "," : "") + json_string(d.name) + ":" + value;
  }
  return out + "}";
}

// Source pixels of window rows r0..r1 and columns c0..c1 (window-relative, rows bottom-up) → the rows
// `row_of(y)` points at (column 0 of the window), zeros where the window leaves the source. Used for the
// Output's untouched rows and for the render's box in shared memory.
template <class RowOf>
void copy_region(const Image &src, const OfxRectI &win, int pb, int r0, int r1, int c0, int c1, RowOf row_of) {
  int x1 = std::max(win.x1 + c0, src.bounds.x1), x2 = std::min(win.x1 + c1, src.bounds.x2);
  for (int y = win.y1 + r0; y < win.y1 + r1; ++y) {
    unsigned char *d = row_of(y) + static_cast<size_t>(c0) * pb;
    size_t stride = static_cast<size_t>(c1 - c0) * pb;
    if (y < src.bounds.y1 || y >= src.bounds.y2 || x2 <= x1) {
      std::memset(d, 0, stride);
      continue;
    }
    size_t left = static_cast<size_t>(x1 - win.x1 - c0) * pb, span = static_cast<size_t>(x2 - x1) * pb;
    if (left) std::memset(d, 0, left);
    std::memcpy(d + left, src.row(y) + static_cast<size_t>(x1 - src.bounds.x1) * pb, span);
    if (left + span < stride) std::memset(d + left + span, 0, stride - left - span);
  }
}

// The Paint clip's matte over the window as float32 (alpha channel; zeros outside its bounds).
void pack_matte(const Image &paint, const OfxRectI &win, float *dst) {
  int w = win.x2 - win.x1;
  int channel = paint.comps == 1 ? 0 : paint.comps - 1;
  for (int y = win.y1; y < win.y2; ++y) {
    float *d = dst + static_cast<size_t>(y - win.y1) * w;
    for (int x = win.x1; x < win.x2; ++x) {
      float v = 0.f;
      if (y >= paint.bounds.y1 && y < paint.bounds.y2 && x >= paint.bounds.x1 && x < paint.bounds.x2) {
        const unsigned char *px = paint.row(y) + static_cast<size_t>(x - paint.bounds.x1) * paint.pixelBytes() +
                                  static_cast<size_t>(channel) * paint.bytesPerComp;
        if (paint.bytesPerComp == 1) v = *px / 255.f;
        else if (paint.bytesPerComp == 2) v = *reinterpret_cast<const uint16_t *>(px) / 65535.f;
        else v = *reinterpret_cast<const float *>(px);
      }
      d[x - win.x1] = v;
    }
  }
}

OfxStatus render(OfxImageEffectHandle effect, OfxPropertySetHandle in) {
  Instance *inst = instance_of(effect);
  if (!inst) return ofx::kStatErrBadHandle;
  OfxTime time = 0;
  OfxRectI window{};
  double scale[2] = {1.0, 1.0};
  gProp->propGetDouble(in, ofx::kPropTime, 0, &time);
  gProp->propGetIntN(in, ofx::kPropRenderWindow, 4, &window.x1);
  gProp->propGetDoubleN(in, ofx::kPropRenderScale, 2, scale);

  Image src, out, paint;
  Release r1{src}, r2{out}, r3{paint};
  std::string err;
  if (!fetch_image(inst->source, time, src, err)) {
    post_error(effect, "Source: " + err);
    return ofx::kStatFailed;
  }
  if (!fetch_image(inst->output, time, out, err)) {
    post_error(effect, "Output: " + err);
    return ofx::kStatFailed;
  }
  if (src.depth != out.depth || src.comps != out.comps || out.comps < 3) {
    post_error(effect, "Source and Output must share an RGB or RGBA format (got " + src.depth + "/" +
                           std::to_string(src.comps) + " and " + out.depth + "/" + std::to_string(out.comps) + ")");
    return ofx::kStatErrImageFormat;
  }
  OfxRectI win{std::max(window.x1, out.bounds.x1), std::max(window.y1, out.bounds.y1),
               std::min(window.x2, out.bounds.x2), std::min(window.y2, out.bounds.y2)};
  if (win.x2 <= win.x1 || win.y2 <= win.y1) return ofx::kStatOK;
  bool has_paint = false;
  if (inst->paint) {
    OfxPropertySetHandle cp = nullptr;
    int connected = 0;
    gEffect->clipGetPropertySet(inst->paint, &cp);
    if (cp) gProp->propGetInt(cp, ofx::kClipPropConnected, 0, &connected);
    if (connected) {
      if (!fetch_image(inst->paint, time, paint, err)) {
        post_error(effect, "Paint: " + err);
        return ofx::kStatFailed;
      }
      has_paint = true;
    }
  }

  int frame_offset = 0;
  double timeout = 30.0;
  std::string params = params_json(*inst, time, frame_offset, timeout);
  // the host's project height flips OFX's y-up pixel rows to the shot's y-down plate rows
  double extent[2] = {0.0, 0.0};
  OfxPropertySetHandle eprops = nullptr;
  gEffect->getPropertySet(effect, &eprops);
  gProp->propGetDoubleN(eprops, ofx::kPropProjectExtent, 2, extent);
  if (extent[1] <= 0.0) {
    OfxRectD rod{};
    gEffect->clipGetRegionOfDefinition(inst->source, time, &rod);
    extent[1] = rod.y2;
  }

  int pb = out.pixelBytes();
  size_t w = static_cast<size_t>(win.x2 - win.x1), h = static_cast<size_t>(win.y2 - win.y1);
  size_t block = w * h * pb, matte = has_paint ? w * h * sizeof(float) : 0;
  std::string reply;
  {
    std::lock_guard<std::mutex> lock(gBridgeMutex);
    if (!gShm.reserve(2 * block + matte, err)) {
      post_error(effect, err);
      return ofx::kStatErrMemory;
    }
    unsigned char *shm = gShm.data();
    if (has_paint) pack_matte(paint, win, reinterpret_cast<float *>(shm + 2 * block));  // needed up front
    long frame = std::lround(time) + frame_offset;
    std::string body = "{\"op\":\"render\",\"instance\":" + json_string(inst->id) +
                       ",\"time\":" + json_number(time) + ",\"frame\":" + std::to_string(frame) +
                       ",\"params\":" + params + ",\"context\":" + json_string(inst->context) +
                       ",\"scale\":[" + json_number(scale[0]) + "," + json_number(scale[1]) + "]" +
                       ",\"window\":[" + std::to_string(win.x1) + "," + std::to_string(win.y1) + "," +
                       std::to_string(win.x2) + "," + std::to_string(win.y2) + "]" +
                       ",\"flip\":" + json_number(extent[1] * scale[1]) + ",\"depth\":" + json_string(out.depth) +
                       ",\"comps\":" + std::to_string(out.comps) + ",\"src\":0,\"dst\":" + std::to_string(block) +
                       ",\"paint\":" + (has_paint ? std::to_string(2 * block) : std::string("-1")) +
                       ",\"need\":true}";
    // while the bridge asks the server, the Output gets the Source's rows; when the render's box is known
    // the bridge asks for the Source pixels of that box only ("need c0 r0 c1 r1"), then writes the
    // composite there, and the plug-in copies it over the Output
    auto t0 = std::chrono::steady_clock::now(), t1 = t0;
    auto out_row = [&](int y) { return out.row(y) + static_cast<size_t>(win.x1 - out.bounds.x1) * pb; };
    auto shm_row = [&](int y) { return shm + static_cast<size_t>(y - win.y1) * w * pb; };
    int W = static_cast<int>(w), H = static_cast<int>(h);
    vqedit::Overlap overlap{
        [&] {
          copy_region(src, win, pb, 0, H, 0, W, out_row);
          t1 = std::chrono::steady_clock::now();
        },
        [&](const std::string &need) {
          int c0 = 0, r0 = 0, c1 = 0, r1 = 0;
          if (std::sscanf(need.c_str(), "need %d %d %d %d", &c0, &r0, &c1, &r1) != 4 || c0 < 0 || r0 < 0 ||
              c1 > W || r1 > H || c1 < c0 || r1 < r0)
            return false;
          copy_region(src, win, pb, r0, r1, c0, c1, shm_row);
          return true;
        }};
    // the bridge itself tries the server twice with `timeout` each; leave room for its own work
    bool answered = gBridge.request(body, gShm.fd(), 2.0 * timeout + 30.0, reply, err, &overlap);
    if (!answered) {
      post_error(effect, err);
      return ofx::kStatFailed;
    }
    auto tb = std::chrono::steady_clock::now();
    if (reply.rfind("ok", 0) != 0) {
      post_error(effect, reply.rfind("error ", 0) == 0 ? reply.substr(6) : reply);
      return ofx::kStatFailed;
    }
    int bx1 = 0, by1 = 0, bx2 = 0, by2 = 0;  // the rows/columns of the window the bridge wrote
    if (std::sscanf(reply.c_str(), "ok %d %d %d %d", &bx1, &by1, &bx2, &by2) != 4 || bx1 < 0 || by1 < 0 ||
        bx2 > static_cast<int>(w) || by2 > static_cast<int>(h)) {
      post_error(effect, "bad reply from the bridge process: " + reply);
      return ofx::kStatFailed;
    }
    const unsigned char *result = gShm.data() + block;
    for (int y = by1; y < by2 && bx2 > bx1; ++y)
      std::memcpy(out_row(win.y1 + y) + static_cast<size_t>(bx1) * pb, result + (static_cast<size_t>(y) * w + bx1) * pb,
                  static_cast<size_t>(bx2 - bx1) * pb);
    if (gTrace) {
      auto t3 = std::chrono::steady_clock::now();
      auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
      std::fprintf(stderr, "VQFaceEdit: Output rows copied while the bridge works %.1f ms, then waited %.1f ms, box %.1f ms\n", ms(t0, t1),
                   ms(t1, tb), ms(tb, t3));
    }
  }
  const std::string::size_type warned = reply.find(" warn ");
  if (warned != std::string::npos)
    post_warning(effect, reply.substr(warned + 6));
  else
    clear_error(effect);
  return ofx::kStatOK;
}

// The output covers what the Source covers (in the General context a larger Paint matte adds nothing).
OfxStatus region_of_definition(OfxImageEffectHandle effect, OfxPropertySetHandle in, OfxPropertySetHandle out) {
  Instance *inst = instance_of(effect);
  if (!inst || !inst->source || !out) return ofx::kStatReplyDefault;
  OfxTime time = 0;
  gProp->propGetDouble(in, ofx::kPropTime, 0, &time);
  OfxRectD rod{};
  if (gEffect->clipGetRegionOfDefinition(inst->source, time, &rod) != ofx::kStatOK) return ofx::kStatReplyDefault;
  gProp->propSetDoubleN(out, ofx::kPropRegionOfDefinition, 4, &rod.x1);
  return ofx::kStatOK;
}

// The Output has the Source's components (a host would otherwise pick the "most chromatic" input, and
// an RGBA Paint matte over an RGB Source would make the Output RGBA).
OfxStatus clip_preferences(OfxImageEffectHandle effect, OfxPropertySetHandle out) {
  Instance *inst = instance_of(effect);
  OfxPropertySetHandle sp = nullptr;
  if (!inst || !inst->source || !out || gEffect->clipGetPropertySet(inst->source, &sp) != ofx::kStatOK) {
    return ofx::kStatReplyDefault;
  }
  char *comps = nullptr;
  if (gProp->propGetString(sp, ofx::kPropComponents, 0, &comps) != ofx::kStatOK || !comps || !*comps)
    return ofx::kStatReplyDefault;
  gProp->propSetString(out, (std::string(ofx::kClipPropComponentsPrefix) + ofx::kOutputClip).c_str(), 0, comps);
  return ofx::kStatOK;
}

// mix 0 at this time: the host can pass the Source through without a render (or the server).
OfxStatus is_identity(OfxImageEffectHandle effect, OfxPropertySetHandle in, OfxPropertySetHandle out) {
  Instance *inst = instance_of(effect);
  if (!inst || !out) return ofx::kStatReplyDefault;
  OfxTime time = 0;
  gProp->propGetDouble(in, ofx::kPropTime, 0, &time);
  for (size_t i = 0; i < inst->params.size(); ++i) {
    if (std::strcmp(kParams[i].name, "mix") != 0 || !inst->params[i]) continue;
    double mix = 1.0;
    gParam->paramGetValueAtTime(inst->params[i], time, &mix);
    if (mix > 0.0) return ofx::kStatReplyDefault;
    gProp->propSetString(out, ofx::kPropName, 0, ofx::kSourceClip);
    gProp->propSetDouble(out, ofx::kPropTime, 0, time);
    return ofx::kStatOK;
  }
  return ofx::kStatReplyDefault;
}

// --- entry points ----------------------------------------------------------------------------------
OfxStatus load() {
  if (!gHost) return ofx::kStatErrMissingHostFeature;
  gProp = static_cast<const OfxPropertySuiteV1 *>(gHost->fetchSuite(gHost->host, ofx::kPropertySuite, 1));
  gEffect = static_cast<const OfxImageEffectSuiteV1 *>(gHost->fetchSuite(gHost->host, ofx::kImageEffectSuite, 1));
  gParam = static_cast<const OfxParameterSuiteV1 *>(gHost->fetchSuite(gHost->host, ofx::kParameterSuite, 1));
  gMessage = static_cast<const OfxMessageSuiteV2 *>(gHost->fetchSuite(gHost->host, ofx::kMessageSuite, 2));
  gMessageVersion = gMessage ? 2 : 0;
  if (!gMessage) {
    gMessage = static_cast<const OfxMessageSuiteV2 *>(gHost->fetchSuite(gHost->host, ofx::kMessageSuite, 1));
    gMessageVersion = gMessage ? 1 : 0;
  }
  return (gProp && gEffect && gParam) ? ofx::kStatOK : ofx::kStatErrMissingHostFeature;
}

OfxStatus unload() {
  std::lock_guard<std::mutex> lock(gBridgeMutex);
  gBridge.stop();
  gShm.release();
  return ofx::kStatOK;
}

OfxStatus main_entry(const char *action, const void *handle, OfxPropertySetHandle in, OfxPropertySetHandle out) {
  auto effect = static_cast<OfxImageEffectHandle>(const_cast<void *>(handle));
  try {
    std::string a = action ? action : "";
    if (a == ofx::kActionLoad) return load();
    if (a == ofx::kActionUnload) return unload();
    if (a == ofx::kActionDescribe) return describe(effect);
    if (a == ofx::kDescribeInContext) return describe_in_context(effect, in);
    if (a == ofx::kActionCreateInstance) return create_instance(effect);
    if (a == ofx::kActionDestroyInstance) return destroy_instance(effect);
    if (a == ofx::kRender) return render(effect, in);
    if (a == ofx::kGetRegionOfDefinition) return region_of_definition(effect, in, out);
    if (a == ofx::kGetClipPreferences) return clip_preferences(effect, out);
    if (a == ofx::kIsIdentity) return is_identity(effect, in, out);
  } catch (const std::exception &e) {  // never let an exception unwind into the host
    if (effect) post_error(effect, e.what());
    return ofx::kStatFailed;
  } catch (...) {
    return ofx::kStatErrUnknown;
  }
  return ofx::kStatReplyDefault;
}

void set_host(OfxHost *host) { gHost = host; }

OfxPlugin gPlugin = {ofx::kImageEffectPluginApi, ofx::kImageEffectPluginApiVersion, "org.vqedit.VQFaceEdit", 1, 0,
                     set_host, main_entry};

}  // namespace

extern "C" {
__attribute__((visibility("default"))) int OfxGetNumberOfPlugins(void) { return 1; }
__attribute__((visibility("default"))) OfxPlugin *OfxGetPlugin(int nth) { return nth == 0 ? &gPlugin : nullptr; }
}
