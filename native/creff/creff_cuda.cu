// Host side of the fused CUDA CReFF kernel: device buffers, launches, timing. The device
// code is in creff_cuda_kernel.cuh (shared with the host emulator that tests it without a GPU).
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../common/coded_error.h"
#include "creff_cuda.h"
#include "creff_cuda_kernel.cuh"

namespace arseg {

namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw CodedError("ERR_CUDA", std::string(what) + ": " + cudaGetErrorString(err));
}

// A device allocation owned for the duration of one call.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t floats) {
    if (floats) check(cudaMalloc(&ptr_, floats * sizeof(float)), "cudaMalloc");
  }
  DeviceBuffer(const float* host, size_t floats) : DeviceBuffer(floats) {
    if (floats) check(cudaMemcpy(ptr_, host, floats * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  float* get() const { return ptr_; }

 private:
  float* ptr_ = nullptr;
};

class Event {
 public:
  Event() { check(cudaEventCreate(&event_), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(event_); }
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_{};
};

using cudakernel::kChunk;
using cudakernel::kMaxWindow;
using cudakernel::kTile;
using cudakernel::Params;

template <int K>
__global__ void creffKernel(Params p) {
  extern __shared__ float smem[];
  cudakernel::creffBlock<K>(p, smem);
}

__global__ void depthwiseKernel(const float* in, const float* weight, const float* bias, float* out,
                                int C, int H, int W) {
  cudakernel::depthwiseAt(blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x, in, weight,
                          bias, out, C, H, W);
}

template <int K>
void launch(const Params& p, cudaStream_t stream) {
  const size_t shared = sizeof(float) * cudakernel::sharedFloats(K);
  check(cudaFuncSetAttribute(creffKernel<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
        "cudaFuncSetAttribute");
  const dim3 grid((p.W + kTile - 1) / kTile, (p.H + kTile - 1) / kTile);
  creffKernel<K><<<grid, kTile * kTile, shared, stream>>>(p);
  check(cudaGetLastError(), "CReFF kernel launch");
}

}  // namespace

bool cudaCreffAvailable(std::string* why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    if (why)
      *why = err != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(err)
                                : "no CUDA device";
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return false;
  }
  return true;
}

double creffCuda(const CreffWeights& w, const CreffShape& s, const float* lr, const float* key,
                 const float* motion, WarpSampling sampling, CreffMode mode, float* out) {
  validateCreff(w, s);
  if (w.window > kMaxWindow)
    throw CodedError("ERR_UNSUPPORTED", "the CUDA kernel supports windows up to " +
                                            std::to_string(kMaxWindow) + "; use the CPU kernel");
  std::string why;
  if (!cudaCreffAvailable(&why)) throw CodedError("ERR_CUDA_UNAVAILABLE", why);
  const size_t C = s.channels, plane = s.plane();
  DeviceBuffer dLr(lr, C * s.lrPlane()), dKey(key, C * plane), dMotion(motion, 2 * plane);
  DeviceBuffer dOut(C * plane);
  DeviceBuffer qw(w.qWeight.data(), C * 9), qb(w.qBias.data(), C);
  DeviceBuffer kw(w.kWeight.data(), C * 9), kb(w.kBias.data(), C);
  DeviceBuffer vw(w.vWeight.data(), C * 9), vb(w.vBias.data(), C);
  const bool keyframeConv = mode == CreffMode::KeyframeConv;
  DeviceBuffer dKeyK(keyframeConv ? C * plane : 0), dKeyV(keyframeConv ? C * plane : 0);

  Params p{dLr.get(), dKey.get(), dKeyK.get(), dKeyV.get(), dMotion.get(), qw.get(), qb.get(),
           kw.get(), kb.get(), vw.get(), vb.get(), dOut.get(), s.channels, s.lrHeight, s.lrWidth,
           s.height, s.width, sampling == WarpSampling::Official, keyframeConv};
  Event start, stop;
  check(cudaEventRecord(start.get()), "cudaEventRecord");
  if (keyframeConv) {
    const int threads = 256;
    const unsigned blocks = static_cast<unsigned>((C * plane + threads - 1) / threads);
    depthwiseKernel<<<blocks, threads>>>(dKey.get(), kw.get(), kb.get(), dKeyK.get(), s.channels, s.height, s.width);
    depthwiseKernel<<<blocks, threads>>>(dKey.get(), vw.get(), vb.get(), dKeyV.get(), s.channels, s.height, s.width);
    check(cudaGetLastError(), "depthwise kernel launch");
  }
  switch (w.window) {
    case 1: launch<1>(p, nullptr); break;
    case 3: launch<3>(p, nullptr); break;
    case 5: launch<5>(p, nullptr); break;
    case 7: launch<7>(p, nullptr); break;
    case 9: launch<9>(p, nullptr); break;
    case 11: launch<11>(p, nullptr); break;
    default: throw CodedError("ERR_UNSUPPORTED", "unsupported CUDA window");
  }
  check(cudaEventRecord(stop.get()), "cudaEventRecord");
  check(cudaEventSynchronize(stop.get()), "CReFF kernel");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "cudaEventElapsedTime");
  check(cudaMemcpy(out, dOut.get(), C * plane * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
  return ms;
}

}  // namespace arseg
