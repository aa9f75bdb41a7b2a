#include "frame_js.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../common/recycled_storage.h"

namespace arseg {

namespace {

// The buffer owns the vector; when JavaScript lets go of it, its storage is freed, or, for the
// per-frame motion arrays (Recycle), handed back for a later frame (recycled_storage.h).
template <typename T, bool Recycle = false>
Napi::ArrayBuffer adoptBuffer(Napi::Env env, std::vector<T>&& data) {
  if (data.empty()) return Napi::ArrayBuffer::New(env, 0);
  auto* owned = new std::vector<T>(std::move(data));
  const size_t bytes = owned->size() * sizeof(T);
  return Napi::ArrayBuffer::New(
      env, owned->data(), bytes,
      [](Napi::Env, void*, std::vector<T>* holder) {
        if constexpr (Recycle) RecycledStorage<T>::give(std::move(*holder));
        delete holder;
      },
      owned);
}

template <typename T, typename TypedArray, bool Recycle = false>
TypedArray adoptArray(Napi::Env env, std::vector<T>&& data) {
  const size_t n = data.size();
  Napi::ArrayBuffer buffer = adoptBuffer<T, Recycle>(env, std::move(data));
  return TypedArray::New(env, n, buffer, 0);
}

}  // namespace

Napi::Float32Array adoptFloat32(Napi::Env env, std::vector<float>&& data) {
  return adoptArray<float, Napi::Float32Array>(env, std::move(data));
}

Napi::Uint8Array adoptUint8(Napi::Env env, std::vector<uint8_t>&& data) {
  return adoptArray<uint8_t, Napi::Uint8Array>(env, std::move(data));
}

Napi::Object frameToJs(Napi::Env env, DecodedFrame&& frame, int stride) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Number::New(env, static_cast<double>(frame.index)));
  o.Set("pts", std::isnan(frame.pts) ? env.Null() : Napi::Number::New(env, frame.pts));
  o.Set("pictType", Napi::String::New(env, std::string(1, frame.pictType)));
  o.Set("isKeyframe", Napi::Boolean::New(env, frame.isKeyframe));
  o.Set("keyframeIndex", Napi::Number::New(env, static_cast<double>(frame.keyframeIndex)));
  o.Set("corrupt", Napi::Boolean::New(env, frame.corrupt));
  o.Set("width", Napi::Number::New(env, frame.width));
  o.Set("height", Napi::Number::New(env, frame.height));
  if (!frame.rgb.empty()) o.Set("rgb", adoptArray<uint8_t, Napi::Uint8Array>(env, std::move(frame.rgb)));
  if (!frame.tensors.empty()) {
    Napi::Array tensors = Napi::Array::New(env, frame.tensors.size());
    for (size_t t = 0; t < frame.tensors.size(); ++t) {
      Napi::Object tensor = Napi::Object::New(env);
      tensor.Set("data", adoptArray<float, Napi::Float32Array>(env, std::move(frame.tensors[t])));
      tensor.Set("width", frame.tensorSizes[t][0]);
      tensor.Set("height", frame.tensorSizes[t][1]);
      tensors.Set(t, tensor);
    }
    o.Set("tensors", tensors);
  }
  if (frame.motionSource != DecodedFrame::Source::None)
    o.Set("motionSource", frame.motionSource == DecodedFrame::Source::Estimated ? "estimated" : "bitstream");
  if (frame.hasVectors) {
    // One reference per row, also when the rows came without (a frame the resolver did not see)
    frame.vectorRefs.resize(frame.vectors.size() / kVectorColumns, kVectorRefUnknown);
    o.Set("vectors", adoptArray<int32_t, Napi::Int32Array, true>(env, std::move(frame.vectors)));
    o.Set("vectorRefs", adoptArray<int32_t, Napi::Int32Array, true>(env, std::move(frame.vectorRefs)));
  }
  if (frame.hasMotion) {
    Napi::Object motion = Napi::Object::New(env);
    motion.Set("width", Napi::Number::New(env, frame.motionWidth));
    motion.Set("height", Napi::Number::New(env, frame.motionHeight));
    motion.Set("stride", Napi::Number::New(env, stride));
    motion.Set("data", adoptArray<float, Napi::Float32Array, true>(env, std::move(frame.motion)));
    o.Set("motion", motion);
  }
  return o;
}

}  // namespace arseg
