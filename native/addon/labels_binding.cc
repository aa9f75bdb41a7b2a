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

LogitsUpsampling mapNamed(const Napi::Value& v, const char* what) {
  if (v.IsUndefined()) return LogitsUpsampling::AlignCorners;
  const std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  if (name == "half-pixel") return LogitsUpsampling::HalfPixel;
  if (name != "align-corners")
    throw CodedError("ERR_INVALID_ARG", std::string(what) + " must be 'align-corners' or 'half-pixel'");
  return LogitsUpsampling::AlignCorners;
}

Napi::Value labelsFromLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    Napi::Float32Array logits = float32Array(info[0], "logits");
    const int classes = integerIn(info[1], "classes", 1, 1 << 16), h = integerIn(info[2], "height", 1, 1 << 16),
              w = integerIn(info[3], "width", 1, 1 << 16), outH = integerIn(info[4], "outHeight", 1, 1 << 16),
              outW = integerIn(info[5], "outWidth", 1, 1 << 16);
    if (classes > 255) throw CodedError("ERR_INVALID_ARG", "at most 255 classes fit in 8-bit labels");
    LabelsResize resize;
    resize.height = h, resize.width = w, resize.outHeight = outH, resize.outWidth = outW;
    parseLabelsResize(info.Length() > 6 ? info[6] : env.Undefined(), info.Length() > 7 ? info[7] : env.Undefined(),
                      &resize);
    if (logits.ElementLength() != size_t(classes) * h * w)
      throw CodedError("ERR_SHAPE",
                       "logits hold " + std::to_string(logits.ElementLength()) +
                           " values, classes x height x width = " + std::to_string(size_t(classes) * h * w));
    const float* data = logits.Data();
    auto labels = std::make_shared<std::vector<uint8_t>>(size_t(outH) * outW);
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("logits", logits);
    return PromiseWorker::start(
        env, holder, [=] { logitsToLabels(data, classes, *labelsTaps(resize), labels->data(), 0); },
        [labels](Napi::Env e) -> Napi::Value { return adoptUint8(e, std::move(*labels)); }, nullptr);
  });
}

}  // namespace

void parseLabelsResize(const Napi::Value& upsampling, const Napi::Value& via, LabelsResize* resize) {
  resize->upsampling = mapNamed(upsampling, "upsampling");
  resize->twoStep = false;
  // via: { height, width, upsampling? }: the network's own resize before the one to the frame.
  if (via.IsUndefined() || via.IsNull()) return;
  if (!via.IsObject()) throw CodedError("ERR_INVALID_ARG", "via must be { height, width, upsampling? }");
  Napi::Object o = via.As<Napi::Object>();
  resize->via.height = integerIn(o.Get("height"), "via.height", 1, 1 << 16);
  resize->via.width = integerIn(o.Get("width"), "via.width", 1, 1 << 16);
  resize->via.upsampling = mapNamed(o.Get("upsampling"), "via.upsampling");
  resize->twoStep = true;
}

void defineLabels(Napi::Env env, Napi::Object exports) {
  exports.Set("labelsFromLogits", Napi::Function::New(env, labelsFromLogits, "labelsFromLogits"));
}

}  // namespace arseg
