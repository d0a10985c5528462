// vqedit's own declarations of the parts of the OpenFX C ABI the VQFaceEdit plug-in uses.
//
// Written from the OpenFX 1.4/1.5 specification: the suite structs list their function pointers in the
// order the standard fixes (a host fills them in that order, so the order IS the ABI); the string
// constants are the standard's action, property, suite and value names. Only what the plug-in calls or
// sets is declared; suites are used through their prefix (later members are never touched), so a
// struct here may end early.
#pragma once

#include <cstddef>

extern "C" {

typedef int OfxStatus;
typedef double OfxTime;
typedef struct OfxPropertySetStruct *OfxPropertySetHandle;
typedef struct OfxImageEffectStruct *OfxImageEffectHandle;
typedef struct OfxImageClipStruct *OfxImageClipHandle;
typedef struct OfxParamSetStruct *OfxParamSetHandle;
typedef struct OfxParamStruct *OfxParamHandle;

struct OfxRectI { int x1, y1, x2, y2; };
struct OfxRectD { double x1, y1, x2, y2; };

struct OfxHost {
  OfxPropertySetHandle host;
  const void *(*fetchSuite)(OfxPropertySetHandle host, const char *suiteName, int suiteVersion);
};

typedef OfxStatus(OfxPluginEntryPoint)(const char *action, const void *handle, OfxPropertySetHandle inArgs,
                                       OfxPropertySetHandle outArgs);

struct OfxPlugin {
  const char *pluginApi;
  int apiVersion;
  const char *pluginIdentifier;
  unsigned int pluginVersionMajor;
  unsigned int pluginVersionMinor;
  void (*setHost)(OfxHost *host);
  OfxPluginEntryPoint *mainEntry;
};

// "OfxPropertySuite", version 1 (all 18 members)
struct OfxPropertySuiteV1 {
  OfxStatus (*propSetPointer)(OfxPropertySetHandle, const char *, int, void *);
  OfxStatus (*propSetString)(OfxPropertySetHandle, const char *, int, const char *);
  OfxStatus (*propSetDouble)(OfxPropertySetHandle, const char *, int, double);
  OfxStatus (*propSetInt)(OfxPropertySetHandle, const char *, int, int);
  OfxStatus (*propSetPointerN)(OfxPropertySetHandle, const char *, int, void *const *);
  OfxStatus (*propSetStringN)(OfxPropertySetHandle, const char *, int, const char *const *);
  OfxStatus (*propSetDoubleN)(OfxPropertySetHandle, const char *, int, const double *);
  OfxStatus (*propSetIntN)(OfxPropertySetHandle, const char *, int, const int *);
  OfxStatus (*propGetPointer)(OfxPropertySetHandle, const char *, int, void **);
  OfxStatus (*propGetString)(OfxPropertySetHandle, const char *, int, char **);
  OfxStatus (*propGetDouble)(OfxPropertySetHandle, const char *, int, double *);
  OfxStatus (*propGetInt)(OfxPropertySetHandle, const char *, int, int *);
  OfxStatus (*propGetPointerN)(OfxPropertySetHandle, const char *, int, void **);
  OfxStatus (*propGetStringN)(OfxPropertySetHandle, const char *, int, char **);
  OfxStatus (*propGetDoubleN)(OfxPropertySetHandle, const char *, int, double *);
  OfxStatus (*propGetIntN)(OfxPropertySetHandle, const char *, int, int *);
  OfxStatus (*propReset)(OfxPropertySetHandle, const char *);
  OfxStatus (*propGetDimension)(OfxPropertySetHandle, const char *, int *);
};

// "OfxImageEffectSuite", version 1: the prefix up to abort (the memory functions follow, unused here)
struct OfxImageEffectSuiteV1 {
  OfxStatus (*getPropertySet)(OfxImageEffectHandle, OfxPropertySetHandle *);
  OfxStatus (*getParamSet)(OfxImageEffectHandle, OfxParamSetHandle *);
  OfxStatus (*clipDefine)(OfxImageEffectHandle, const char *, OfxPropertySetHandle *);
  OfxStatus (*clipGetHandle)(OfxImageEffectHandle, const char *, OfxImageClipHandle *, OfxPropertySetHandle *);
  OfxStatus (*clipGetPropertySet)(OfxImageClipHandle, OfxPropertySetHandle *);
  OfxStatus (*clipGetImage)(OfxImageClipHandle, OfxTime, const OfxRectD *, OfxPropertySetHandle *);
  OfxStatus (*clipReleaseImage)(OfxPropertySetHandle);
  OfxStatus (*clipGetRegionOfDefinition)(OfxImageClipHandle, OfxTime, OfxRectD *);
  int (*abort)(OfxImageEffectHandle);
};

// "OfxParameterSuite", version 1: the prefix up to paramGetValueAtTime (the values come back through
// the variadic pointers: double* / int* / char** by parameter type)
struct OfxParameterSuiteV1 {
  OfxStatus (*paramDefine)(OfxParamSetHandle, const char *paramType, const char *name, OfxPropertySetHandle *);
  OfxStatus (*paramGetHandle)(OfxParamSetHandle, const char *name, OfxParamHandle *, OfxPropertySetHandle *);
  OfxStatus (*paramSetGetPropertySet)(OfxParamSetHandle, OfxPropertySetHandle *);
  OfxStatus (*paramGetPropertySet)(OfxParamHandle, OfxPropertySetHandle *);
  OfxStatus (*paramGetValue)(OfxParamHandle, ...);
  OfxStatus (*paramGetValueAtTime)(OfxParamHandle, OfxTime, ...);
};

// "OfxMessageSuite": version 1 is `message` alone; version 2 adds the persistent message pair
struct OfxMessageSuiteV2 {
  OfxStatus (*message)(void *handle, const char *messageType, const char *messageId, const char *format, ...);
  OfxStatus (*setPersistentMessage)(void *handle, const char *messageType, const char *messageId,
                                    const char *format, ...);
  OfxStatus (*clearPersistentMessage)(void *handle);
};

}  // extern "C"

namespace ofx {
// status codes
constexpr OfxStatus kStatOK = 0, kStatFailed = 1, kStatErrFatal = 2, kStatErrUnknown = 3,
                    kStatErrMissingHostFeature = 4, kStatErrUnsupported = 5, kStatErrBadHandle = 9, kStatErrMemory = 8,
                    kStatErrValue = 11, kStatReplyDefault = 14, kStatErrImageFormat = 1000;

// plug-in API
constexpr const char *kImageEffectPluginApi = "OfxImageEffectPluginAPI";
constexpr int kImageEffectPluginApiVersion = 1;

// suites
constexpr const char *kPropertySuite = "OfxPropertySuite", *kImageEffectSuite = "OfxImageEffectSuite",
                     *kParameterSuite = "OfxParameterSuite", *kMessageSuite = "OfxMessageSuite";

// actions
constexpr const char *kActionLoad = "OfxActionLoad", *kActionUnload = "OfxActionUnload",
                     *kActionDescribe = "OfxActionDescribe", *kActionCreateInstance = "OfxActionCreateInstance",
                     *kActionDestroyInstance = "OfxActionDestroyInstance",
                     *kActionPurgeCaches = "OfxActionPurgeCaches",
                     *kDescribeInContext = "OfxImageEffectActionDescribeInContext",
                     *kRender = "OfxImageEffectActionRender",
                     *kGetClipPreferences = "OfxImageEffectActionGetClipPreferences",
                     *kGetRegionOfDefinition = "OfxImageEffectActionGetRegionOfDefinition",
                     *kIsIdentity = "OfxImageEffectActionIsIdentity";

// contexts, clips
constexpr const char *kContextFilter = "OfxImageEffectContextFilter",
                     *kContextGeneral = "OfxImageEffectContextGeneral", *kOutputClip = "Output",
                     *kSourceClip = "Source";

// properties
constexpr const char *kPropLabel = "OfxPropLabel", *kPropName = "OfxPropName",
                     *kPropPluginDescription = "OfxPropPluginDescription", *kPropTime = "OfxPropTime",
                     *kPropInstanceData = "OfxPropInstanceData", *kPluginPropFilePath = "OfxPluginPropFilePath",
                     *kPropContext = "OfxImageEffectPropContext",
                     *kPropGrouping = "OfxImageEffectPluginPropGrouping",
                     *kPropSupportedContexts = "OfxImageEffectPropSupportedContexts",
                     *kPropSupportedPixelDepths = "OfxImageEffectPropSupportedPixelDepths",
                     *kPropSupportedComponents = "OfxImageEffectPropSupportedComponents",
                     *kPropSupportsMultiResolution = "OfxImageEffectPropSupportsMultiResolution",
                     *kPropSupportsTiles = "OfxImageEffectPropSupportsTiles",
                     *kPropTemporalClipAccess = "OfxImageEffectPropTemporalClipAccess",
                     *kPropSupportsMultipleClipDepths = "OfxImageEffectPropSupportsMultipleClipDepths",
                     *kPropSingleInstance = "OfxImageEffectPluginPropSingleInstance",
                     *kPropHostFrameThreading = "OfxImageEffectPluginPropHostFrameThreading",
                     *kPropRenderThreadSafety = "OfxImageEffectPluginRenderThreadSafety",
                     *kRenderInstanceSafe = "OfxImageEffectRenderInstanceSafe",
                     *kPropProjectExtent = "OfxImageEffectPropProjectExtent",
                     *kClipPropOptional = "OfxImageClipPropOptional", *kClipPropIsMask = "OfxImageClipPropIsMask",
                     *kClipPropConnected = "OfxImageClipPropConnected",
                     *kPropPixelDepth = "OfxImageEffectPropPixelDepth",
                     *kPropComponents = "OfxImageEffectPropComponents", *kImagePropData = "OfxImagePropData",
                     *kImagePropBounds = "OfxImagePropBounds", *kImagePropRowBytes = "OfxImagePropRowBytes",
                     *kPropRenderScale = "OfxImageEffectPropRenderScale",
                     *kPropRenderWindow = "OfxImageEffectPropRenderWindow",
                     *kPropRegionOfDefinition = "OfxImageEffectPropRegionOfDefinition",
                     *kClipPropComponentsPrefix = "OfxImageClipPropComponents_";

// property values
constexpr const char *kBitDepthByte = "OfxBitDepthByte", *kBitDepthShort = "OfxBitDepthShort",
                     *kBitDepthFloat = "OfxBitDepthFloat", *kComponentRGBA = "OfxImageComponentRGBA",
                     *kComponentRGB = "OfxImageComponentRGB", *kComponentAlpha = "OfxImageComponentAlpha";

// parameters
constexpr const char *kParamTypeDouble = "OfxParamTypeDouble", *kParamTypeInteger = "OfxParamTypeInteger",
                     *kParamTypeBoolean = "OfxParamTypeBoolean",
                     *kParamTypeString = "OfxParamTypeString", *kParamTypeChoice = "OfxParamTypeChoice",
                     *kParamTypePage = "OfxParamTypePage", *kParamPropDefault = "OfxParamPropDefault",
                     *kParamPropMin = "OfxParamPropMin", *kParamPropMax = "OfxParamPropMax",
                     *kParamPropDisplayMin = "OfxParamPropDisplayMin",
                     *kParamPropDisplayMax = "OfxParamPropDisplayMax", *kParamPropHint = "OfxParamPropHint",
                     *kParamPropAnimates = "OfxParamPropAnimates",
                     *kParamPropChoiceOption = "OfxParamPropChoiceOption",
                     *kParamPropPageChild = "OfxParamPropPageChild",
                     *kParamPropScriptName = "OfxParamPropScriptName",
                     *kParamPropStringMode = "OfxParamPropStringMode",
                     *kParamStringIsSingleLine = "OfxParamStringIsSingleLine",
                     *kParamPropCacheInvalidation = "OfxParamPropCacheInvalidation",
                     *kParamInvalidateAll = "OfxParamInvalidateAll",
                     *kPluginPropParamPageOrder = "OfxPluginPropParamPageOrder";

// messages
constexpr const char *kMessageError = "OfxMessageError";
constexpr const char *kMessageWarning = "OfxMessageWarning";
}  // namespace ofx
