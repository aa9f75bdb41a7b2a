#include "request_options.h"

#include <cmath>

#include "../common/coded_error.h"
#include "../video/frame_pipeline.h"
#include "js_args.h"

namespace arseg {

namespace {

bool optionalBool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) invalidArg(std::string("option '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::array<float, 3> triple(const Napi::Value& v, const std::string& name, bool positive) {
  if (!v.IsArray() && !v.IsTypedArray()) invalidArg("'" + name + "' must be an array of 3 numbers");
  Napi::Object arr = v.As<Napi::Object>();
  const uint32_t len = arr.Get("length").As<Napi::Number>().Uint32Value();
  if (len != 3) invalidArg("'" + name + "' must have 3 entries (R, G, B)");
  std::array<float, 3> out{};
  for (uint32_t i = 0; i < 3; ++i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsNumber()) invalidArg("'" + name + "' must hold numbers");
    const double d = e.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || (positive && d <= 0))
      invalidArg("'" + name + "' entries must be finite" + (positive ? " and positive" : ""));
    out[i] = static_cast<float>(d);
  }
  return out;
}

TensorSpec parseTensor(const Napi::Value& v, size_t i) {
  const std::string at = "tensors[" + std::to_string(i) + "]";
  if (!v.IsObject())
    invalidArg(
        at + " must be an object { width, height | scale, multiple?, mean?, std?, channelOrder? } or { from, scale }");
  Napi::Object o = v.As<Napi::Object>();
  TensorSpec spec;
  Napi::Value from = o.Get("from");
  if (!from.IsUndefined()) {
    // The official LR input: an earlier tensor resized (see TensorSpec::from); nothing else applies.
    if (i == 0) invalidArg(at + ".from must name an earlier tensor, and there is none");
    spec.from = integerIn(from, at + ".from", 0, static_cast<int>(i) - 1);
    for (const char* key : {"width", "height", "multiple", "mean", "std", "channelOrder"})
      if (!o.Get(key).IsUndefined())
        invalidArg(at + " is resized from tensors[" + std::to_string(spec.from) + "] and takes only 'scale', not '" +
                   key + "'");
    Napi::Value scale = o.Get("scale");
    const double d = scale.IsNumber() ? scale.As<Napi::Number>().DoubleValue() : -1;
    if (!(d > 0 && d <= 4)) invalidArg(at + ".scale must be a number in (0, 4]");
    spec.scale = d;
    return spec;
  }
  Napi::Value scale = o.Get("scale");
  if (!scale.IsUndefined()) {
    if (!o.Get("width").IsUndefined() || !o.Get("height").IsUndefined())
      invalidArg(at + " takes either width and height or scale, not both");
    const double d = scale.IsNumber() ? scale.As<Napi::Number>().DoubleValue() : -1;
    if (!(d > 0 && d <= 4)) invalidArg(at + ".scale must be a number in (0, 4]");
    spec.scale = d;
    Napi::Value multiple = o.Get("multiple");
    if (!multiple.IsUndefined()) spec.multiple = integerIn(multiple, at + ".multiple", 1, 256);
  } else {
    spec.width = integerIn(o.Get("width"), at + ".width", 1, kMaxDimension);
    spec.height = integerIn(o.Get("height"), at + ".height", 1, kMaxDimension);
    if (int64_t(spec.width) * spec.height > kMaxPixels) invalidArg(at + " is too large");
  }
  Napi::Value mean = o.Get("mean");
  if (!mean.IsUndefined()) spec.mean = triple(mean, at + ".mean", false);
  Napi::Value sd = o.Get("std");
  if (!sd.IsUndefined()) spec.std = triple(sd, at + ".std", true);
  Napi::Value order = o.Get("channelOrder");
  if (!order.IsUndefined()) {
    const std::string s = order.IsString() ? order.As<Napi::String>().Utf8Value() : "";
    if (s != "rgb" && s != "bgr") invalidArg(at + ".channelOrder must be 'rgb' or 'bgr'");
    spec.bgr = s == "bgr";
  }
  return spec;
}

}  // namespace

FrameRequest parseFrameRequest(const Napi::Value& value) {
  FrameRequest req;
  if (value.IsUndefined() || value.IsNull()) return req;
  if (!value.IsObject() || value.IsArray()) invalidArg("options must be an object");
  Napi::Object o = value.As<Napi::Object>();
  req.rgb = optionalBool(o, "rgb", false);
  req.vectors = optionalBool(o, "vectors", false);
  req.strict = optionalBool(o, "strict", false);

  Napi::Value tensors = o.Get("tensors");
  if (!tensors.IsUndefined() && !tensors.IsNull()) {
    if (!tensors.IsArray()) invalidArg("option 'tensors' must be an array");
    Napi::Array arr = tensors.As<Napi::Array>();
    if (arr.Length() > 16) invalidArg("option 'tensors' takes at most 16 sizes");
    for (uint32_t i = 0; i < arr.Length(); ++i) req.tensors.push_back(parseTensor(arr.Get(i), i));
  }

  Napi::Value motion = o.Get("motion");
  if (!motion.IsUndefined() && !motion.IsNull()) {
    const std::string m = motion.IsString() ? motion.As<Napi::String>().Utf8Value()
                          : (motion.IsBoolean() && !motion.As<Napi::Boolean>().Value()) ? "none"
                                                                                        : "?";
    if (m == "none")
      req.motion = MotionMode::None;
    else if (m == "reference")
      req.motion = MotionMode::Reference;
    else if (m == "accumulated")
      req.motion = MotionMode::Accumulated;
    else
      invalidArg("option 'motion' must be 'reference', 'accumulated', 'none' or false");
  }
  Napi::Value source = o.Get("motionSource");
  if (!source.IsUndefined() && !source.IsNull()) {
    const std::string m = source.IsString() ? source.As<Napi::String>().Utf8Value() : "?";
    if (m == "auto")
      req.motionSource = MotionSource::Auto;
    else if (m == "bitstream")
      req.motionSource = MotionSource::Bitstream;
    else if (m == "estimate")
      req.motionSource = MotionSource::Estimate;
    else
      invalidArg("option 'motionSource' must be 'auto', 'bitstream' or 'estimate'");
  }
  Napi::Value composition = o.Get("composition");
  if (!composition.IsUndefined() && !composition.IsNull()) {
    const std::string c = composition.IsString() ? composition.As<Napi::String>().Utf8Value() : "?";
    if (c == "bilinear")
      req.composition = Composition::Bilinear;
    else if (c == "official")
      req.composition = Composition::Official;
    else
      invalidArg("option 'composition' must be 'bilinear' or 'official'");
  }
  Napi::Value fill = o.Get("motionFill");
  if (!fill.IsUndefined() && !fill.IsNull()) {
    const std::string c = fill.IsString() ? fill.As<Napi::String>().Utf8Value() : "?";
    if (c == "estimate")
      req.motionFill = MotionFill::Estimate;
    else if (c == "none")
      req.motionFill = MotionFill::None;
    else
      invalidArg("option 'motionFill' must be 'estimate' or 'none'");
  }
  Napi::Value stride = o.Get("stride");
  if (!stride.IsUndefined()) req.stride = integerIn(stride, "stride", 1, 256);

  Napi::Value keyframes = o.Get("keyframes");
  if (!keyframes.IsUndefined() && !keyframes.IsNull()) {
    KeyframePolicy& policy = req.keyframes;
    const char* usage =
        "option 'keyframes' must be 'gop', 'adaptive', a positive integer interval, or "
        "{ policy: 'adaptive', maxInterval?, intraShare?, maxMotion? }";
    if (keyframes.IsString()) {
      const std::string k = keyframes.As<Napi::String>().Utf8Value();
      if (k == "gop")
        policy.mode = KeyframePolicy::Mode::Gop;
      else if (k == "adaptive")
        policy.mode = KeyframePolicy::Mode::Adaptive;
      else
        invalidArg(usage);
    } else if (keyframes.IsNumber()) {
      policy.mode = KeyframePolicy::Mode::Interval;
      policy.interval = integerIn(keyframes, "keyframes", 1, 1 << 20);
    } else if (keyframes.IsObject() && !keyframes.IsArray()) {
      Napi::Object k = keyframes.As<Napi::Object>();
      Napi::Value kind = k.Get("policy");
      if (!kind.IsString() || kind.As<Napi::String>().Utf8Value() != "adaptive") invalidArg(usage);
      policy.mode = KeyframePolicy::Mode::Adaptive;
      if (!k.Get("maxInterval").IsUndefined())
        policy.maxInterval = integerIn(k.Get("maxInterval"), "keyframes.maxInterval", 1, 1 << 20);
      auto fraction = [&](const char* key, float lo, float hi, float& out) {
        Napi::Value v = k.Get(key);
        if (v.IsUndefined()) return;
        const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
        if (!(d >= lo && d <= hi))
          invalidArg(std::string("keyframes.") + key + " must be a number from " + std::to_string(lo) + " to " +
                     std::to_string(hi));
        out = static_cast<float>(d);
      };
      fraction("intraShare", 0.f, 1.f, policy.intraShare);
      fraction("maxMotion", 0.f, 1e6f, policy.maxMotion);
    } else {
      invalidArg(usage);
    }
  }
  if (req.keyframes.mode == KeyframePolicy::Mode::Adaptive && req.motion != MotionMode::Accumulated)
    invalidArg("adaptive keyframes are decided from the accumulated motion: set motion: 'accumulated'");
  Napi::Value threads = o.Get("threads");
  if (!threads.IsUndefined()) req.threads = integerIn(threads, "threads", 0, 64);
  // true: the default; false or 0: no limit but the hard ones (kMaxPixels)
  Napi::Value limit = o.Get("limitInputPixels");
  if (limit.IsBoolean()) {
    req.maxPixels = limit.As<Napi::Boolean>().Value() ? kDefaultPixelLimit : 0;
  } else if (!limit.IsUndefined()) {
    const double d = limit.IsNumber() ? limit.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 9007199254740991.0) || d != std::floor(d))
      invalidArg("option 'limitInputPixels' must be a non-negative integer or a boolean (0 or false: no limit)");
    req.maxPixels = static_cast<int64_t>(d);
  }
  return req;
}

std::map<std::string, std::string> parseFormatOptions(const Napi::Value& value) {
  std::map<std::string, std::string> out;
  if (value.IsUndefined() || value.IsNull()) return out;
  if (!value.IsObject() || value.IsArray()) invalidArg("option 'formatOptions' must be an object of strings");
  Napi::Object o = value.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string key = keys.Get(i).ToString().Utf8Value();
    Napi::Value v = o.Get(key);
    if (!v.IsString() && !v.IsNumber()) invalidArg("formatOptions." + key + " must be a string or number");
    out[key] = v.ToString().Utf8Value();
  }
  return out;
}

}  // namespace arseg
