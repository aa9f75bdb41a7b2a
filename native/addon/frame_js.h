// Hands a DecodedFrame to JavaScript. Pixel, tensor, vector and motion buffers are not copied:
// each std::vector is moved onto the heap and exposed as an external ArrayBuffer that frees it
// when the garbage collector drops the typed array.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "../video/frame_request.h"

namespace arseg {

Napi::Object frameToJs(Napi::Env env, DecodedFrame&& frame, int stride);

// Hands a float vector to JavaScript as a Float32Array over the same memory.
Napi::Float32Array adoptFloat32(Napi::Env env, std::vector<float>&& data);
Napi::Uint8Array adoptUint8(Napi::Env env, std::vector<uint8_t>&& data);

// recycleArrays, recycledStorageBytes: hand a frame's motion arrays back before a garbage
// collection would (lib/recycle.ts).
void defineRecycling(Napi::Env env, Napi::Object exports);

}  // namespace arseg
