// resizeMotion(field, width, height, stride, frameWidth, frameHeight, outWidth, outHeight, mode?):
// a dense motion field resampled onto another grid, displacements rescaled (synchronous); mode
// 'cell-centres' (default), 'align-corners' or 'nearest' (motion/resize_field.h).
#pragma once

#include <napi.h>

namespace arseg {

void defineMotion(Napi::Env env, Napi::Object exports);

}  // namespace arseg
