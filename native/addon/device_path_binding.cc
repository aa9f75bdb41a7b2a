#include "device_path_binding.h"

#include <string>

#include "../common/coded_error.h"
#include "creff_binding.h"
#include "frame_js.h"
#include "js_args.h"
#include "js_errors.h"
#include "labels_binding.h"
#include "promise_worker.h"

namespace arseg {

namespace {

Napi::Object optionsAt(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsObject()) invalidArg("options must be an object");
  return info[i].As<Napi::Object>();
}

// { outHeight, outWidth, upsampling?, via?, head?: 'hr' | 'lr', logits? }
DeviceLabelsRequest parseRequest(const Napi::Object& o) {
  DeviceLabelsRequest r;
  r.outHeight = integerIn(o.Get("outHeight"), "outHeight", 1, 1 << 16);
  r.outWidth = integerIn(o.Get("outWidth"), "outWidth", 1, 1 << 16);
  LabelsResize resize;
  parseLabelsResize(o.Get("upsampling"), o.Get("via"), &resize);
  r.upsampling = resize.upsampling;
  r.twoStep = resize.twoStep;
  r.via = resize.via;
  const std::string head = optionString(o, "head", "hr");
  if (head != "hr" && head != "lr") invalidArg("option 'head' must be 'hr' or 'lr'");
  r.head = head == "lr" ? DecoderHead::Lr : DecoderHead::Hr;
  r.logits = o.Get("logits").ToBoolean();
  return r;
}

PointwiseHeadWeights headOf(const Napi::Object& o, int channels, const char* weightKey, const char* biasKey) {
  PointwiseHeadWeights head;
  head.channels = channels;
  Napi::Float32Array weight = float32Array(o.Get(weightKey), weightKey);
  Napi::Float32Array bias = float32Array(o.Get(biasKey), biasKey);
  head.classes = static_cast<int>(bias.ElementLength());
  head.weight.assign(weight.Data(), weight.Data() + weight.ElementLength());
  head.bias.assign(bias.Data(), bias.Data() + bias.ElementLength());
  return head;
}

// Runs `call` on the thread pool and resolves with { labels, logits?, milliseconds,
// bytesToDevice, bytesToHost }.
Napi::Value startLabels(Napi::Env env, Napi::Object holder, std::function<DeviceLabels()> call) {
  auto result = std::make_shared<DeviceLabels>();
  return PromiseWorker::start(
      env, holder, [result, call] { *result = call(); },
      [result](Napi::Env e) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        o.Set("labels", adoptUint8(e, std::move(result->labels)));
        if (!result->logits.empty()) o.Set("logits", adoptFloat32(e, std::move(result->logits)));
        o.Set("milliseconds", result->milliseconds);
        o.Set("bytesToDevice", static_cast<double>(result->bytesToDevice));
        o.Set("bytesToHost", static_cast<double>(result->bytesToHost));
        return o;
      },
      nullptr);
}

}  // namespace

void DevicePathBinding::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(
      env, "NativeDevicePath",
      {InstanceMethod<&DevicePathBinding::labels>("labels"), InstanceMethod<&DevicePathBinding::fuse>("fuse"),
       InstanceMethod<&DevicePathBinding::dropKeyframe>("dropKeyframe"),
       InstanceMethod<&DevicePathBinding::getInfo>("info")});
  exports.Set("NativeDevicePath", cls);
}

// new NativeDevicePath({ backend: 'cuda' | 'cuda-emulated', creff?: NativeCReFF,
//                        channels, headWeight: Float32Array (classes x channels), headBias,
//                        lrHeadWeight?, lrHeadBias? (the LR network's own head; both or neither) })
// Uploads the weights (the GPU is opened here: ERR_CUDA_UNAVAILABLE with the reason).
DevicePathBinding::DevicePathBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DevicePathBinding>(info) {
  Napi::Env env = info.Env();
  guardSync(env, [&] {
    Napi::Object o = optionsAt(info, 0);
    const std::string backend = optionString(o, "backend", "cuda");
    if (backend != "cuda" && backend != "cuda-emulated") invalidArg("backend must be 'cuda' or 'cuda-emulated'");
    std::shared_ptr<const CreffWeights> creff;
    Napi::Value c = o.Get("creff");
    if (!c.IsUndefined() && !c.IsNull()) creff = CreffBinding::weightsOf(c, "creff");
    const int channels = integerIn(o.Get("channels"), "channels", 1, 1 << 16);
    PointwiseHeadWeights head = headOf(o, channels, "headWeight", "headBias");
    PointwiseHeadWeights lrHead;
    const bool lrWeight = !o.Get("lrHeadWeight").IsUndefined(), lrBias = !o.Get("lrHeadBias").IsUndefined();
    if (lrWeight != lrBias) invalidArg("lrHeadWeight and lrHeadBias go together");
    if (lrWeight) lrHead = headOf(o, channels, "lrHeadWeight", "lrHeadBias");
    path_ = std::make_shared<DevicePath>(backend == "cuda" ? openCudaBackend() : openEmulatedBackend(),
                                         std::move(creff), std::move(head), std::move(lrHead));
    return env.Undefined();
  });
}

// labels(feature, height, width, { outHeight, outWidth, upsampling?, via?, head?, logits?,
//                                  keyframe?: 'exact' | 'keyframe-conv' })
Napi::Value DevicePathBinding::labels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    Napi::Float32Array feature = float32Array(info[0], "feature");
    const int H = integerIn(info[1], "height", 1, 1 << 16), W = integerIn(info[2], "width", 1, 1 << 16);
    Napi::Object o = optionsAt(info, 3);
    const DeviceLabelsRequest request = parseRequest(o);
    checkLength(feature, size_t(path_->channels()) * H * W, "the feature");
    const std::string keyframe = optionString(o, "keyframe", "");
    std::shared_ptr<CreffMode> keepAs;
    if (keyframe == "exact")
      keepAs = std::make_shared<CreffMode>(CreffMode::Exact);
    else if (keyframe == "keyframe-conv")
      keepAs = std::make_shared<CreffMode>(CreffMode::KeyframeConv);
    else if (!keyframe.empty())
      invalidArg("option 'keyframe' must be 'exact' or 'keyframe-conv'");
    if (keepAs && !path_->hasCreff()) invalidArg("this device path has no CReFF to keep a keyframe for");
    Napi::Object holder = Napi::Object::New(env);  // the feature stays alive while the worker reads it
    holder.Set("feature", feature);
    auto path = path_;
    const float* data = feature.Data();
    return startLabels(env, holder, [=] { return path->labels(data, H, W, request, keepAs.get()); });
  });
}

// fuse(lr, lrHeight, lrWidth, motion, { sampling, outHeight, outWidth, upsampling?, via?, head?, logits? })
Napi::Value DevicePathBinding::fuse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    Napi::Float32Array lr = float32Array(info[0], "lr");
    const int h = integerIn(info[1], "lrHeight", 1, 1 << 16), w = integerIn(info[2], "lrWidth", 1, 1 << 16);
    Napi::Float32Array motion = float32Array(info[3], "motion");
    Napi::Object o = optionsAt(info, 4);
    const DeviceLabelsRequest request = parseRequest(o);
    const std::string samplingName = optionString(o, "sampling", "exact");
    if (samplingName != "exact" && samplingName != "official")
      invalidArg("option 'sampling' must be 'exact' or 'official'");
    const WarpSampling sampling = samplingName == "official" ? WarpSampling::Official : WarpSampling::Exact;
    checkLength(lr, size_t(path_->channels()) * h * w, "the LR feature");
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("lr", lr);
    holder.Set("motion", motion);
    auto path = path_;
    const float* lrData = lr.Data();
    const float* motionData = motion.Data();
    const size_t motionFloats = motion.ElementLength();
    return startLabels(env, holder,
                       [=] { return path->fuse(lrData, h, w, motionData, motionFloats, sampling, request); });
  });
}

Napi::Value DevicePathBinding::dropKeyframe(const Napi::CallbackInfo& info) {
  path_->dropKeyframe();
  return info.Env().Undefined();
}

Napi::Value DevicePathBinding::getInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("backend", path_->backendName());
  o.Set("channels", path_->channels());
  o.Set("classes", path_->classes());
  o.Set("lrHead", path_->hasLrHead());
  return o;
}

}  // namespace arseg
