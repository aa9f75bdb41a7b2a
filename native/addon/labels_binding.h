// labelsFromLogits(logits: Float32Array, classes, h, w, outHeight, outWidth, upsampling?, via?):
// Promise<Uint8Array>; via = { height, width, upsampling? }: a first resize before the one to the
// output (postprocess/logits_to_labels.h).
#pragma once

#include <napi.h>

namespace arseg {

void defineLabels(Napi::Env env, Napi::Object exports);

}  // namespace arseg
