// Lets the device code (creff/creff_cuda_kernel.cuh, postprocess/labels_kernel.cuh) compile
// twice: for the GPU with nvcc, and for the host with a C++ compiler, where emulated_backend.cc
// runs each block's threads as real threads meeting at a barrier for every __syncthreads(). The
// emulation is how the kernels' indexing, halos and synchronisation are tested without a GPU.
#pragma once

#ifdef __CUDACC__

#define ARSEG_DEVICE __device__ __forceinline__
#define ARSEG_SYNC() __syncthreads()
#define ARSEG_TID (threadIdx.x)
#define ARSEG_NTHREADS (blockDim.x)
#define ARSEG_BLOCK_X (blockIdx.x)
#define ARSEG_BLOCK_Y (blockIdx.y)
#define ARSEG_EXPF(x) __expf(x)
#define ARSEG_UNROLL _Pragma("unroll")
// Rounding spelt out where the GPU must give the CPU's bits: nvcc contracts a * b + c into one
// fused multiply-add by default, and so does the host compiler wherever the target has FMA.
// ARSEG_MUL and ARSEG_ADD are never contracted, on either.
#define ARSEG_MUL(a, b) __fmul_rn((a), (b))
#define ARSEG_ADD(a, b) __fadd_rn((a), (b))

#else

#include <cmath>

#include "../common/simd.h"

namespace arseg::emu {
// The emulated thread's coordinates, set by the emulator for each host thread.
struct ThreadContext {
  int tid = 0, nthreads = 1, blockX = 0, blockY = 0;
  void (*sync)(void*) = nullptr;
  void* syncState = nullptr;
};
extern thread_local ThreadContext context;
}  // namespace arseg::emu

#define ARSEG_DEVICE inline
#define ARSEG_SYNC() ::arseg::emu::context.sync(::arseg::emu::context.syncState)
#define ARSEG_TID (::arseg::emu::context.tid)
#define ARSEG_NTHREADS (::arseg::emu::context.nthreads)
#define ARSEG_BLOCK_X (::arseg::emu::context.blockX)
#define ARSEG_BLOCK_Y (::arseg::emu::context.blockY)
#define ARSEG_EXPF(x) std::exp(x)
#define ARSEG_UNROLL
   // The product rounded on its own (simd.h's unfused), as the CPU kernels round theirs, whatever
   // the host target.
#define ARSEG_MUL(a, b) (::arseg::unfused((a) * (b)))
#define ARSEG_ADD(a, b) ((a) + (b))

#endif
