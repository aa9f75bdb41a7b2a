// Runs the CUDA CReFF kernel's device code (creff_cuda_kernel.cuh) on the CPU: every block's
// kTile x kTile threads are real threads that meet at a barrier for each __syncthreads(), and
// the block's shared memory is poisoned with NaN before each block, so indexing, halo and
// synchronisation mistakes show up as wrong (or NaN) results. Slow; for tests only.
#pragma once

#include "creff_types.h"

namespace arseg {

void creffCudaEmulated(const CreffWeights& w, const CreffShape& s, const float* lr, const float* key,
                       const float* motion, WarpSampling sampling, CreffMode mode, float* out);

}  // namespace arseg
