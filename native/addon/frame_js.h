// Hands a DecodedFrame to JavaScript. Pixel, tensor, vector and motion buffers are not copied:
// each std::vector is moved onto the heap and exposed as an external ArrayBuffer that frees it
// when the garbage collector drops the typed array (or releaseMotion detaches it).
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "../video/frame_request.h"

namespace arseg {

// Builds the readers' JavaScript frames (lib/frame.ts, VideoFrame) with `makeFrame`, a function
// the TypeScript layer gives each reader (lib/frame.ts, makeFrame): one call into JavaScript per
// frame, the fields as arguments. Setting each property from here cost several times more: every
// napi_set_named_property internalises its name (a string-table lookup) and walks the object's
// map transitions in V8's runtime, for each of a frame's 12 to 16 properties, where the
// function's object literals are built by optimised code.
class FrameMaker {
 public:
  FrameMaker() = default;
  // Throws ERR_INVALID_ARG when `makeFrame` is not a function.
  FrameMaker(Napi::Value makeFrame, const FrameRequest& request);

  // The frame's buffers move into JavaScript (not copied). Throws what makeFrame throws.
  Napi::Value operator()(Napi::Env env, DecodedFrame&& frame) const;

 private:
  Napi::FunctionReference makeFrame_;
  int stride_ = 8;
  const char* mode_ = nullptr;  // FrameRequest::motion's name; nullptr without motion
};

// Hands a float vector to JavaScript as a Float32Array over the same memory.
Napi::Float32Array adoptFloat32(Napi::Env env, std::vector<float>&& data);
Napi::Uint8Array adoptUint8(Napi::Env env, std::vector<uint8_t>&& data);

// recycleArrays, recycledStorageBytes: hand a frame's motion arrays back before a garbage
// collection would (lib/recycle.ts).
void defineRecycling(Napi::Env env, Napi::Object exports);

}  // namespace arseg
