#include "motion_binding.h"

#include <vector>

#include "../common/coded_error.h"
#include "../motion/resize_field.h"
#include "frame_js.h"
#include "js_args.h"
#include "js_errors.h"

namespace arseg {

namespace {

// resizeMotion(field: Float32Array, gw, gh, stride, frameW, frameH, outW, outH, mode?): Float32Array
// mode: 'cell-centres' (default), 'align-corners' or 'nearest' (motion/resize_field.h).
// Synchronous: a few milliseconds at CamVid feature sizes.
Napi::Value resizeMotion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    Napi::Float32Array field = float32Array(info[0], "field");
    const int gw = integerIn(info[1], "width", 1, 1 << 16), gh = integerIn(info[2], "height", 1, 1 << 16),
              stride = integerIn(info[3], "stride", 1, 1 << 16), frameW = integerIn(info[4], "frameWidth", 1, 1 << 16),
              frameH = integerIn(info[5], "frameHeight", 1, 1 << 16), outW = integerIn(info[6], "outWidth", 1, 1 << 16),
              outH = integerIn(info[7], "outHeight", 1, 1 << 16);
    if (field.ElementLength() != 2 * size_t(gw) * gh)
      throw CodedError("ERR_SHAPE", "the motion field holds " + std::to_string(field.ElementLength()) +
                                        " values, 2 x height x width = " + std::to_string(2 * size_t(gw) * gh));
    MotionResize mode = MotionResize::CellCentres;
    if (info.Length() > 8 && !info[8].IsUndefined()) {
      const std::string name = info[8].IsString() ? info[8].As<Napi::String>().Utf8Value() : std::string();
      if (name == "align-corners")
        mode = MotionResize::AlignCorners;
      else if (name == "nearest")
        mode = MotionResize::Nearest;
      else if (name != "cell-centres")
        throw CodedError("ERR_INVALID_ARG", "mode must be 'cell-centres', 'align-corners' or 'nearest'");
    }
    std::vector<float> out(2 * size_t(outW) * outH);
    resizeMotionField(field.Data(), gw, gh, stride, frameW, frameH, outW, outH, out.data(), mode);
    return adoptFloat32(env, std::move(out));
  });
}

}  // namespace

void defineMotion(Napi::Env env, Napi::Object exports) {
  exports.Set("resizeMotion", Napi::Function::New(env, resizeMotion, "resizeMotion"));
}

}  // namespace arseg
