// labelsFromLogits(logits: Float32Array, classes, h, w, outHeight, outWidth, upsampling?, via?):
// Promise<Uint8Array>; via = { height, width, upsampling? }: a first resize before the one to the
// output (postprocess/logits_to_labels.h).
#pragma once

#include <napi.h>

#include "../postprocess/labels_taps.h"

namespace arseg {

void defineLabels(Napi::Env env, Napi::Object exports);

// The resize to the labels as JavaScript names it: `upsampling` ('align-corners', the default,
// or 'half-pixel') and `via` (undefined, null or { height, width, upsampling? }), into `resize`'s
// upsampling, twoStep and via (its sizes are left alone). The device path's calls take the same.
// ERR_INVALID_ARG naming the option.
void parseLabelsResize(const Napi::Value& upsampling, const Napi::Value& via, LabelsResize* resize);

}  // namespace arseg
