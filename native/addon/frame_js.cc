#include "frame_js.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../common/recycled_storage.h"
#include "js_args.h"
#include "js_errors.h"

namespace arseg {

namespace {

// Marks the buffers of the per-frame motion arrays, so that recycleArrays detaches only storage
// this addon handed out as recyclable, never a caller's own array that happens to sit in a frame.
constexpr napi_type_tag kRecyclableTag = {0x6172736567726563ULL, 0x79636c6564617461ULL};

// The buffer owns the vector; when JavaScript lets go of it, its storage is freed, or, for the
// per-frame motion arrays (Recycle), handed back for a later frame (recycled_storage.h).
template <typename T, bool Recycle = false>
Napi::ArrayBuffer adoptBuffer(Napi::Env env, std::vector<T>&& data) {
  if (data.empty()) return Napi::ArrayBuffer::New(env, 0);
  auto* owned = new std::vector<T>(std::move(data));
  const size_t bytes = owned->size() * sizeof(T);
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, owned->data(), bytes,
      [](Napi::Env, void*, std::vector<T>* holder) {
        if constexpr (Recycle) RecycledStorage<T>::give(std::move(*holder));
        delete holder;
      },
      owned);
  if constexpr (Recycle) buffer.TypeTag(&kRecyclableTag);
  return buffer;
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

FrameMaker::FrameMaker(Napi::Value makeFrame, const FrameRequest& request) : stride_(request.stride) {
  if (!makeFrame.IsFunction()) invalidArg("makeFrame must be a function (lib/frame.ts)");
  makeFrame_ = Napi::Persistent(makeFrame.As<Napi::Function>());
  if (request.motion == MotionMode::Reference) mode_ = "reference";
  if (request.motion == MotionMode::Accumulated) mode_ = "accumulated";
}

Napi::Value FrameMaker::operator()(Napi::Env env, DecodedFrame&& frame) const {
  // The arguments of lib/frame.ts makeFrame, in its order; undefined for what was not asked for.
  enum Arg {
    kIndex,
    kPts,
    kPictType,
    kIsKeyframe,
    kKeyframeIndex,
    kCorrupt,
    kWidth,
    kHeight,
    kRgb,
    kTensors,
    kVectors,
    kVectorRefs,
    kMotionSource,
    kMotion,
    kMotionWidth,
    kMotionHeight,
    kStride,
    kMode,
    kArgs
  };
  const napi_value undefined = env.Undefined();
  napi_value args[kArgs];
  for (napi_value& a : args) a = undefined;
  args[kIndex] = Napi::Number::New(env, static_cast<double>(frame.index));
  args[kPts] = std::isnan(frame.pts) ? env.Null() : Napi::Number::New(env, frame.pts);
  args[kPictType] = Napi::String::New(env, &frame.pictType, 1);
  args[kIsKeyframe] = Napi::Boolean::New(env, frame.isKeyframe);
  args[kKeyframeIndex] = Napi::Number::New(env, static_cast<double>(frame.keyframeIndex));
  args[kCorrupt] = Napi::Boolean::New(env, frame.corrupt);
  args[kWidth] = Napi::Number::New(env, frame.width);
  args[kHeight] = Napi::Number::New(env, frame.height);
  if (!frame.rgb.empty()) args[kRgb] = adoptArray<uint8_t, Napi::Uint8Array>(env, std::move(frame.rgb));
  if (!frame.tensors.empty()) {
    Napi::Array tensors = Napi::Array::New(env, frame.tensors.size());
    for (size_t t = 0; t < frame.tensors.size(); ++t) {
      Napi::Object tensor = Napi::Object::New(env);
      tensor.Set("data", adoptArray<float, Napi::Float32Array>(env, std::move(frame.tensors[t])));
      tensor.Set("width", frame.tensorSizes[t][0]);
      tensor.Set("height", frame.tensorSizes[t][1]);
      tensors.Set(t, tensor);
    }
    args[kTensors] = tensors;
  }
  if (frame.hasVectors) {
    // One reference per row, also when the rows came without (a frame the resolver did not see)
    frame.vectorRefs.resize(frame.vectors.size() / kVectorColumns, kVectorRefUnknown);
    args[kVectors] = adoptArray<int32_t, Napi::Int32Array, true>(env, std::move(frame.vectors));
    args[kVectorRefs] = adoptArray<int32_t, Napi::Int32Array, true>(env, std::move(frame.vectorRefs));
  }
  if (frame.motionSource != DecodedFrame::Source::None)
    args[kMotionSource] =
        Napi::String::New(env, frame.motionSource == DecodedFrame::Source::Estimated ? "estimated" : "bitstream");
  if (frame.hasMotion && mode_) {
    args[kMotion] = adoptArray<float, Napi::Float32Array, true>(env, std::move(frame.motion));
    args[kMotionWidth] = Napi::Number::New(env, frame.motionWidth);
    args[kMotionHeight] = Napi::Number::New(env, frame.motionHeight);
    args[kStride] = Napi::Number::New(env, stride_);
    args[kMode] = Napi::String::New(env, mode_);
  }
  return makeFrame_.Value().Call(undefined, kArgs, args);
}

// recycleArrays(arrays: (TypedArray | undefined)[]): number
// Detaches the buffer of each array the reader handed out as recyclable motion storage: its
// finaliser then hands the storage back (recycled_storage.h) without waiting for a garbage
// collection. Anything else (a caller's own array, one already detached) is left alone.
// Returns how many buffers were detached.
Napi::Value recycleArrays(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) invalidArg("recycleArrays expects an array of typed arrays");
    Napi::Array arrays = info[0].As<Napi::Array>();
    uint32_t detached = 0;
    for (uint32_t i = 0; i < arrays.Length(); ++i) {
      Napi::Value v = arrays.Get(i);
      if (!v.IsTypedArray()) continue;
      Napi::ArrayBuffer buffer = v.As<Napi::TypedArray>().ArrayBuffer();
      if (buffer.IsDetached() || !buffer.CheckTypeTag(&kRecyclableTag)) continue;
      buffer.Detach();
      ++detached;
    }
    return Napi::Number::New(env, detached);
  });
}

// recycledStorageBytes(): number. The bytes of motion storage waiting for later frames (tests).
Napi::Value recycledStorageBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           double(RecycledStorage<int32_t>::spareBytes() + RecycledStorage<float>::spareBytes()));
}

void defineRecycling(Napi::Env env, Napi::Object exports) {
  exports.Set("recycleArrays", Napi::Function::New(env, recycleArrays, "recycleArrays"));
  exports.Set("recycledStorageBytes", Napi::Function::New(env, recycledStorageBytes, "recycledStorageBytes"));
}

}  // namespace arseg
