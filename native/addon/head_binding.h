// pointwiseHead(feature: Float32Array, channels, height, width, weight: Float32Array,
//               bias: Float32Array, classes, options?: { output?: Float32Array, threads? })
//   : Promise<Float32Array> (classes x height x width logits; options.output when given)
// simdLevel(): 'avx512' | 'avx2' | 'baseline', the vector code the native kernels run
#pragma once

#include <napi.h>

namespace arseg {

void defineHead(Napi::Env env, Napi::Object exports);

}  // namespace arseg
