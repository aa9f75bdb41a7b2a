// The device, emulated on the CPU: "device memory" is host memory, copies are memcpy (counted
// like the GPU's, so byte counts can be checked anywhere), and the kernels are the device code
// of creff_cuda_kernel.cuh and labels_kernel.cuh compiled for the host. The CReFF kernel's
// blocks run their kTile x kTile threads as real threads meeting at a barrier for each
// __syncthreads(), with the block's shared memory poisoned with NaN before each block, so
// indexing, halo and synchronisation mistakes show up as wrong (or NaN) results. Slow; tests.
#pragma once

#include "device_backend.h"

namespace arseg {

class EmulatedBackend final : public DeviceBackend {
 public:
  const char* name() const override { return "cuda-emulated"; }
  void* allocate(size_t bytes) override;
  void release(void* device) noexcept override;
  void depthwise(const float* in, const float* weight, const float* bias, float* out, int channels, int height,
                 int width) override;
  void creff(const cudakernel::Params& p, int window) override;
  void head(const devicekernel::HeadParams& p) override;
  void labels(const devicekernel::LabelsParams& p) override;
  void startTimer() override;
  double stopTimer() override;

 protected:
  void copyToDevice(void* device, const void* host, size_t bytes) override;
  void copyToHost(void* host, const void* device, size_t bytes) override;

 private:
  double started_ = 0;
};

}  // namespace arseg
