#include "head_binding.h"

#include <memory>
#include <string>
#include <vector>

#include "../common/coded_error.h"
#include "../common/simd.h"
#include "../postprocess/pointwise_head.h"
#include "frame_js.h"
#include "js_args.h"
#include "js_errors.h"
#include "promise_worker.h"

namespace arseg {

namespace {

Napi::Value pointwiseHeadJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    Napi::Float32Array feature = float32Array(info[0], "feature");
    const int channels = integerIn(info[1], "channels", 1, 1 << 16), h = integerIn(info[2], "height", 1, 1 << 16),
              w = integerIn(info[3], "width", 1, 1 << 16);
    Napi::Float32Array weight = float32Array(info[4], "weight");
    Napi::Float32Array bias = float32Array(info[5], "bias");
    const int classes = integerIn(info[6], "classes", 1, 1 << 16);
    Napi::Object opts = Napi::Object::New(env);
    if (info.Length() > 7 && !info[7].IsUndefined()) {
      if (!info[7].IsObject()) invalidArg("options must be an object");
      opts = info[7].As<Napi::Object>();
    }
    int threads = 0;
    Napi::Value threadsOption = opts.Get("threads");
    if (!threadsOption.IsUndefined() && !threadsOption.IsNull()) threads = integerIn(threadsOption, "threads", 1, 256);

    const size_t plane = size_t(h) * w;
    checkLength(feature, size_t(channels) * plane, "the feature", "channels x height x width =");
    checkLength(weight, size_t(classes) * channels, "the weight", "classes x channels =");
    checkLength(bias, size_t(classes), "the bias", "classes =");

    // options.output: a caller-owned Float32Array of classes x height x width to write into
    // (reused from frame to frame, it spares allocating and faulting in a new buffer per call).
    Napi::Object holder = Napi::Object::New(env);  // keeps every input alive during the work
    holder.Set("feature", feature);
    holder.Set("weight", weight);
    holder.Set("bias", bias);
    float* outData = nullptr;
    std::shared_ptr<Napi::ObjectReference> outputRef;  // released on the main thread with the worker
    Napi::Value outputOption = opts.Get("output");
    if (!outputOption.IsUndefined() && !outputOption.IsNull()) {
      Napi::Float32Array output = float32Array(outputOption, "options.output");
      checkLength(output, size_t(classes) * plane, "options.output", "classes x height x width =");
      checkNoOverlap(output, feature, "the feature");
      checkNoOverlap(output, weight, "the weight");
      checkNoOverlap(output, bias, "the bias");
      outputRef = std::make_shared<Napi::ObjectReference>(Napi::Persistent(output.As<Napi::Object>()));
      outData = output.Data();
    }
    const float* featureData = feature.Data();
    const float* weightData = weight.Data();
    const float* biasData = bias.Data();
    auto owned = std::make_shared<std::vector<float>>();
    return PromiseWorker::start(
        env, holder,
        [=] {
          float* out = outData;
          if (!out) {
            owned->resize(size_t(classes) * plane);
            out = owned->data();
          }
          arseg::pointwiseHead(featureData, channels, h, w, weightData, biasData, classes, out, threads);
        },
        [owned, outputRef](Napi::Env e) -> Napi::Value {
          if (outputRef) return outputRef->Value();
          return adoptFloat32(e, std::move(*owned));
        },
        nullptr);
  });
}

}  // namespace

void defineHead(Napi::Env env, Napi::Object exports) {
  exports.Set("pointwiseHead", Napi::Function::New(env, pointwiseHeadJs, "pointwiseHead"));
  // Which vector code the native kernels run (after the ARSEG_SIMD cap), for diagnostics.
  exports.Set("simdLevel", Napi::Function::New(
                               env,
                               [](const Napi::CallbackInfo& info) -> Napi::Value {
                                 switch (simdLevel()) {
                                   case SimdLevel::Avx512: return Napi::String::New(info.Env(), "avx512");
                                   case SimdLevel::Avx2: return Napi::String::New(info.Env(), "avx2");
                                   default: return Napi::String::New(info.Env(), "baseline");
                                 }
                               },
                               "simdLevel"));
}

}  // namespace arseg
