// resizeMotion(field, width, height, stride, frameWidth, frameHeight, outWidth, outHeight):
// a dense motion field resampled onto another grid, displacements rescaled (synchronous).
#pragma once

#include <napi.h>

namespace arseg {

void defineMotion(Napi::Env env, Napi::Object exports);

}  // namespace arseg
