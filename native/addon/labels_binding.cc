#include "labels_binding.h"

#include <memory>
#include <vector>

#include "../common/coded_error.h"
#include "../postprocess/logits_to_labels.h"
#include "frame_js.h"
#include "js_args.h"
#include "js_errors.h"
#include "promise_worker.h"

namespace arseg {

namespace {


Napi::Value labelsFromLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    Napi::Float32Array logits = float32Array(info[0], "logits");
    const int classes = integerIn(info[1], "classes", 1, 1 << 16), h = integerIn(info[2], "height", 1, 1 << 16),
              w = integerIn(info[3], "width", 1, 1 << 16), outH = integerIn(info[4], "outHeight", 1, 1 << 16),
              outW = integerIn(info[5], "outWidth", 1, 1 << 16);
    if (classes > 255) throw CodedError("ERR_INVALID_ARG", "at most 255 classes fit in 8-bit labels");
    auto mapNamed = [](const Napi::Value& v, const char* what) {
      if (v.IsUndefined()) return LogitsUpsampling::AlignCorners;
      const std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
      if (name == "half-pixel") return LogitsUpsampling::HalfPixel;
      if (name != "align-corners")
        throw CodedError("ERR_INVALID_ARG", std::string(what) + " must be 'align-corners' or 'half-pixel'");
      return LogitsUpsampling::AlignCorners;
    };
    const LogitsUpsampling upsampling = mapNamed(info.Length() > 6 ? info[6] : env.Undefined(), "upsampling");
    // via: { height, width, upsampling? }: the network's own resize before the one to the frame.
    bool twoStep = false;
    LogitsResize via;
    if (info.Length() > 7 && !info[7].IsUndefined() && !info[7].IsNull()) {
      if (!info[7].IsObject()) throw CodedError("ERR_INVALID_ARG", "via must be { height, width, upsampling? }");
      Napi::Object o = info[7].As<Napi::Object>();
      via.height = integerIn(o.Get("height"), "via.height", 1, 1 << 16);
      via.width = integerIn(o.Get("width"), "via.width", 1, 1 << 16);
      via.upsampling = mapNamed(o.Get("upsampling"), "via.upsampling");
      twoStep = true;
    }
    if (logits.ElementLength() != size_t(classes) * h * w)
      throw CodedError("ERR_SHAPE", "logits hold " + std::to_string(logits.ElementLength()) +
                                        " values, classes x height x width = " +
                                        std::to_string(size_t(classes) * h * w));
    const float* data = logits.Data();
    auto labels = std::make_shared<std::vector<uint8_t>>(size_t(outH) * outW);
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("logits", logits);
    return PromiseWorker::start(
        env, holder,
        [=] {
          if (twoStep)
            logitsToLabelsVia(data, classes, h, w, via, outH, outW, upsampling, labels->data(), 0);
          else
            logitsToLabels(data, classes, h, w, outH, outW, upsampling, labels->data(), 0);
        },
        [labels](Napi::Env e) -> Napi::Value { return adoptUint8(e, std::move(*labels)); },
        nullptr);
  });
}

}  // namespace

void defineLabels(Napi::Env env, Napi::Object exports) {
  exports.Set("labelsFromLogits", Napi::Function::New(env, labelsFromLogits, "labelsFromLogits"));
}

}  // namespace arseg
