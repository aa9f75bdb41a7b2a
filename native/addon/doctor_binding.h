// Facts for `ar-seg doctor` that only native code can get: what the NVIDIA driver says
// (device/cuda_driver.h) with this build's CUDA and the diagnosis, and whether a shared library
// (libcudart.so.12, libcudnn.so.9, ...) can be loaded here.
#pragma once

#include <napi.h>

namespace arseg {

void defineDoctor(Napi::Env env, Napi::Object exports);

}  // namespace arseg
