#include "labels_binding.h"

#include <cmath>
#include <memory>
#include <vector>

#include "../common/coded_error.h"
#include "../motion/resize_field.h"
#include "../postprocess/logits_to_labels.h"
#include "frame_js.h"
#include "js_errors.h"
#include "promise_worker.h"

namespace arseg {

namespace {

int dimension(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throw CodedError("ERR_INVALID_ARG", std::string(name) + " must be a positive integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < 1 || d > (1 << 16))
    throw CodedError("ERR_INVALID_ARG", std::string(name) + " must be an integer from 1 to 65536");
  return static_cast<int>(d);
}

Napi::Value labelsFromLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    if (info.Length() < 6 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw CodedError("ERR_INVALID_ARG", "logits must be a Float32Array");
    Napi::Float32Array logits = info[0].As<Napi::Float32Array>();
    const int classes = dimension(info[1], "classes"), h = dimension(info[2], "height"),
              w = dimension(info[3], "width"), outH = dimension(info[4], "outHeight"),
              outW = dimension(info[5], "outWidth");
    if (classes > 255) throw CodedError("ERR_INVALID_ARG", "at most 255 classes fit in 8-bit labels");
    if (logits.ElementLength() != size_t(classes) * h * w)
      throw CodedError("ERR_SHAPE", "logits hold " + std::to_string(logits.ElementLength()) +
                                        " values, classes x height x width = " +
                                        std::to_string(size_t(classes) * h * w));
    const float* data = logits.Data();
    auto labels = std::make_shared<std::vector<uint8_t>>(size_t(outH) * outW);
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("logits", logits);
    return PromiseWorker::start(
        env, holder, [=] { logitsToLabels(data, classes, h, w, outH, outW, labels->data(), 0); },
        [labels](Napi::Env e) -> Napi::Value {
          auto* owned = new std::vector<uint8_t>(std::move(*labels));
          const size_t n = owned->size();
          Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
              e, owned->data(), n, [](Napi::Env, void*, std::vector<uint8_t>* p) { delete p; }, owned);
          return Napi::Uint8Array::New(e, n, buffer, 0);
        },
        nullptr);
  });
}

// resizeMotion(field: Float32Array, gw, gh, stride, frameW, frameH, outW, outH): Float32Array
// Synchronous: a few milliseconds at CamVid feature sizes.
Napi::Value resizeMotion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    if (info.Length() < 8 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw CodedError("ERR_INVALID_ARG", "field must be a Float32Array");
    Napi::Float32Array field = info[0].As<Napi::Float32Array>();
    const int gw = dimension(info[1], "width"), gh = dimension(info[2], "height"),
              stride = dimension(info[3], "stride"), frameW = dimension(info[4], "frameWidth"),
              frameH = dimension(info[5], "frameHeight"), outW = dimension(info[6], "outWidth"),
              outH = dimension(info[7], "outHeight");
    if (field.ElementLength() != 2 * size_t(gw) * gh)
      throw CodedError("ERR_SHAPE", "the motion field holds " + std::to_string(field.ElementLength()) +
                                        " values, 2 x height x width = " + std::to_string(2 * size_t(gw) * gh));
    std::vector<float> out(2 * size_t(outW) * outH);
    resizeMotionField(field.Data(), gw, gh, stride, frameW, frameH, outW, outH, out.data());
    return adoptFloat32(env, std::move(out));
  });
}

}  // namespace

void defineLabels(Napi::Env env, Napi::Object exports) {
  exports.Set("labelsFromLogits", Napi::Function::New(env, labelsFromLogits, "labelsFromLogits"));
  exports.Set("resizeMotion", Napi::Function::New(env, resizeMotion, "resizeMotion"));
}

}  // namespace arseg
