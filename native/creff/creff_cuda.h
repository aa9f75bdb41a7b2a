// The CUDA side of CReFF. Built from creff_cuda.cu when CMake finds nvcc; otherwise
// creff_cuda_stub.cc reports it unavailable. The addon asks cudaCreffAvailable() before using
// it, so a build with CUDA still runs on machines without a GPU (CPU kernels only).
#pragma once

#include <string>

#include "creff_types.h"

namespace arseg {

// True when this build has the CUDA kernel and a CUDA device is usable; otherwise false with
// the reason in *why.
bool cudaCreffAvailable(std::string* why);

// Host pointers in and out (copied to and from the device): lr C x h x w, key C x H x W,
// motion 2 x H x W, out C x H x W. Returns the kernel time in milliseconds (device events,
// excluding the copies). Throws CodedError on CUDA failures.
double creffCuda(const CreffWeights& w, const CreffShape& s, const float* lr, const float* key,
                 const float* motion, WarpSampling sampling, CreffMode mode, float* out);

}  // namespace arseg
