#include "motion_binding.h"

#include <chrono>
#include <memory>
#include <vector>

#include "../common/coded_error.h"
#include "../motion/estimator.h"
#include "../motion/estimator_reference.h"
#include "../motion/resize_field.h"
#include "frame_js.h"
#include "js_args.h"
#include "js_errors.h"
#include "promise_worker.h"

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

Napi::Uint8Array uint8Array(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    invalidArg("'" + name + "' must be a Uint8Array");
  return v.As<Napi::Uint8Array>();
}

// estimateMotion(previous: Uint8Array, current: Uint8Array, width, height, options):
//   options: { linesize?, stride?, kernel?: 'vectorised' | 'reference', finestLevel?,
//              iterations?, patchStride?, coarseRadius?, fineRadius?,
//              prior?: { data: Float32Array, width, height, stride } }
// Resolves with { data: Float32Array (2 x gh x gw), matched: Uint8Array (gh x gw), width, height,
// stride, milliseconds }: the field from `current` to `previous` (8-bit luma planes), on the
// thread pool. The planes are read in place (kept alive until the promise settles).
Napi::Value estimateMotion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    Napi::Uint8Array prev = uint8Array(info[0], "previous"), cur = uint8Array(info[1], "current");
    const int width = integerIn(info[2], "width", 1, 1 << 14), height = integerIn(info[3], "height", 1, 1 << 14);
    Napi::Object o = info.Length() > 4 && info[4].IsObject() ? info[4].As<Napi::Object>() : Napi::Object::New(env);
    auto optionalInt = [&](const char* key, int fallback, int lo, int hi) {
      Napi::Value v = o.Get(key);
      return v.IsUndefined() || v.IsNull() ? fallback : integerIn(v, std::string("options.") + key, lo, hi);
    };
    const int linesize = optionalInt("linesize", width, width, 1 << 16);
    const int stride = optionalInt("stride", 8, 1, 256);
    EstimatorOptions eo;
    eo.finestLevel = optionalInt("finestLevel", eo.finestLevel, 0, 3);
    eo.iterations = optionalInt("iterations", eo.iterations, 0, 64);
    eo.patchStride = optionalInt("patchStride", eo.patchStride, 1, kPatch);
    eo.coarseRadius = optionalInt("coarseRadius", eo.coarseRadius, 0, 16);
    eo.fineRadius = optionalInt("fineRadius", eo.fineRadius, 0, 16);
    const std::string kernel = optionString(o, "kernel", "vectorised");
    if (kernel != "vectorised" && kernel != "reference")
      invalidArg("options.kernel must be 'vectorised' or 'reference'");
    const size_t need = size_t(linesize) * (height - 1) + width;
    if (prev.ElementLength() < need || cur.ElementLength() < need)
      throw CodedError("ERR_SHAPE", "a luma plane of " + std::to_string(width) + "x" + std::to_string(height) +
                                        " with linesize " + std::to_string(linesize) + " needs " +
                                        std::to_string(need) + " bytes");
    auto prior = std::make_shared<MotionGrid>();
    Napi::Value priorValue = o.Get("prior");
    if (!priorValue.IsUndefined() && !priorValue.IsNull()) {
      if (!priorValue.IsObject()) invalidArg("options.prior must be { data, width, height, stride }");
      Napi::Object p = priorValue.As<Napi::Object>();
      const int ps = integerIn(p.Get("stride"), "options.prior.stride", 1, 256);
      *prior = MotionGrid(width, height, ps);
      if (integerIn(p.Get("width"), "options.prior.width", 1, 1 << 16) != prior->width ||
          integerIn(p.Get("height"), "options.prior.height", 1, 1 << 16) != prior->height)
        throw CodedError("ERR_SHAPE", "options.prior's grid does not cover a " + std::to_string(width) + "x" +
                                          std::to_string(height) + " frame at its stride");
      Napi::Float32Array data = float32Array(p.Get("data"), "options.prior.data");
      checkLength(data, 2 * prior->size(), "options.prior.data", "2 x height x width");
      std::copy(data.Data(), data.Data() + prior->size(), prior->dx.begin());
      std::copy(data.Data() + prior->size(), data.Data() + 2 * prior->size(), prior->dy.begin());
    }
    const uint8_t* a = prev.Data();
    const uint8_t* b = cur.Data();
    const bool reference = kernel == "reference";
    auto result = std::make_shared<FieldEstimate>();
    auto millis = std::make_shared<double>(0);
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("previous", prev);
    holder.Set("current", cur);
    return PromiseWorker::start(
        env, holder,
        [=] {
          const MotionGrid* guess = prior->empty() ? nullptr : prior.get();
          const auto t0 = std::chrono::steady_clock::now();
          if (reference) {
            estimateFieldReference(a, linesize, b, linesize, width, height, guess, stride, eo, *result);
          } else if (!frameLargeEnough(width, height, eo)) {
            *result = FieldEstimate{MotionGrid(width, height, stride), {}};
            result->matched.assign(result->field.size(), 0);
          } else {
            LumaPyramid p0, p1;
            buildPyramid(a, linesize, width, height, eo, p0);
            buildPyramid(b, linesize, width, height, eo, p1);
            estimateField(p0, p1, guess, stride, eo, *result);
          }
          *millis = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        },
        [result, millis](Napi::Env e) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          const MotionGrid& g = result->field;
          out.Set("width", g.width);
          out.Set("height", g.height);
          out.Set("stride", g.stride);
          std::vector<float> data(2 * g.size());
          std::copy(g.dx.begin(), g.dx.end(), data.begin());
          std::copy(g.dy.begin(), g.dy.end(), data.begin() + g.size());
          out.Set("data", adoptFloat32(e, std::move(data)));
          out.Set("matched", adoptUint8(e, std::move(result->matched)));
          out.Set("milliseconds", *millis);
          return out;
        },
        nullptr);
  });
}

}  // namespace

void defineMotion(Napi::Env env, Napi::Object exports) {
  exports.Set("resizeMotion", Napi::Function::New(env, resizeMotion, "resizeMotion"));
  exports.Set("estimateMotion", Napi::Function::New(env, estimateMotion, "estimateMotion"));
}

}  // namespace arseg
