// Which CReFF kernel runs a call, in one place: the bindings parse options into a CreffCall and
// hand it here, so that choosing a kernel (and how each applies the decoder's head) is part of
// native/creff, not of the N-API layer.
#pragma once

#include "creff_fused_cpu.h"
#include "creff_types.h"

namespace arseg {

enum class CreffKernel {
  Fused,         // the fused CPU kernel (creff_fused_cpu), the default
  Reference,     // the plain reference (creff_reference), for parity
  CudaEmulated,  // the CUDA kernel's device code run on the CPU (device/emulated_backend)
  Cuda,          // the CUDA kernel on the GPU (device/cuda_backend)
};

struct CreffCall {
  CreffKernel kernel = CreffKernel::Fused;
  WarpSampling sampling = WarpSampling::Exact;
  // Ignored when `prepared` is given: the prepared keyframe carries its mode.
  CreffMode mode = CreffMode::Exact;
  int threads = 0;                             // <= 0: all cores
  const float* lr = nullptr;                   // C x h x w
  const float* key = nullptr;                  // C x H x W, raw (when `prepared` is null)
  const PreparedKeyframe* prepared = nullptr;  // the fused CPU kernel only
  const float* motion = nullptr;               // 2 x H x W
  // The decoder's pointwise head (CPU kernels): `out` then receives classes x H x W logits.
  // The fused kernel applies it block by block; the others apply pointwiseHeadPixels to their
  // whole output, so every kernel gives the same logits as its feature followed by that head.
  const CreffHead* head = nullptr;
};

// Runs the call's kernel into `out` (C x H x W, or classes x H x W with a head). Returns the
// kernel's time in milliseconds (for CUDA, device time without the copies). Throws CodedError
// (ERR_INVALID_ARG for a combination no kernel supports, ERR_CUDA_* on CUDA failures).
double runCreff(const CreffWeights& w, const CreffShape& s, const CreffCall& call, float* out);

}  // namespace arseg
