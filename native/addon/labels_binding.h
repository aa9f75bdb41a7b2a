// labelsFromLogits(logits: Float32Array, classes, h, w, outHeight, outWidth): Promise<Uint8Array>
#pragma once

#include <napi.h>

namespace arseg {

void defineLabels(Napi::Env env, Napi::Object exports);

}  // namespace arseg
