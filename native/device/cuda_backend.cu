// The CUDA GPU as a DeviceBackend: device memory, copies, the kernels' launches and timing. The
// device code is in creff_cuda_kernel.cuh and labels_kernel.cuh (shared with the emulator that
// tests it without a GPU). The runtime is linked statically (CMakeLists.txt): the addon needs
// only the driver, and loads without one.
#include <cuda_runtime.h>

#include <string>

#include "../common/coded_error.h"
#include "cuda_driver.h"
#include "device_backend.h"

#ifndef ARSEG_CUDA_TOOLKIT_VERSION
#define ARSEG_CUDA_TOOLKIT_VERSION ""
#endif
#ifndef ARSEG_CUDA_ARCHITECTURES
#define ARSEG_CUDA_ARCHITECTURES ""
#endif
#ifndef ARSEG_CUDA_DRIVER_FLOOR
#define ARSEG_CUDA_DRIVER_FLOOR ""
#endif

namespace arseg {

namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw CodedError("ERR_CUDA", std::string(what) + ": " + cudaGetErrorString(err));
}

using cudakernel::kTile;
using cudakernel::Params;

template <int K>
__global__ void creffKernel(Params p) {
  extern __shared__ float smem[];
  cudakernel::creffBlock<K>(p, smem);
}

__global__ void depthwiseKernel(const float* in, const float* weight, const float* bias, float* out, int C, int H,
                                int W) {
  cudakernel::depthwiseAt(blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x, in, weight, bias, out, C, H, W);
}

__global__ void headKernel(devicekernel::HeadParams p) {
  devicekernel::headAt(p, blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x);
}

__global__ void labelsKernel(devicekernel::LabelsParams p) {
  devicekernel::labelAt(p, blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x);
}

constexpr int kThreads = 256;

unsigned blocksFor(size_t count) {
  const size_t blocks = (count + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffffu) throw CodedError("ERR_SHAPE", "too many elements for one CUDA launch");
  return static_cast<unsigned>(blocks);
}

template <int K>
void launchCreff(const Params& p) {
  const size_t shared = sizeof(float) * cudakernel::sharedFloats(K);
  check(cudaFuncSetAttribute(creffKernel<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
        "cudaFuncSetAttribute");
  const dim3 grid((p.W + kTile - 1) / kTile, (p.H + kTile - 1) / kTile);
  creffKernel<K><<<grid, kTile * kTile, shared>>>(p);
  check(cudaGetLastError(), "CReFF kernel launch");
}

class CudaBackend final : public DeviceBackend {
 public:
  CudaBackend() {
    check(cudaEventCreate(&start_), "cudaEventCreate");
    if (cudaEventCreate(&stop_) != cudaSuccess) {
      cudaEventDestroy(start_);
      check(cudaGetLastError(), "cudaEventCreate");
    }
  }
  ~CudaBackend() override {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  const char* name() const override { return "cuda"; }

  void* allocate(size_t bytes) override {
    void* p = nullptr;
    check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  void release(void* device) noexcept override { cudaFree(device); }

  void depthwise(const float* in, const float* weight, const float* bias, float* out, int channels, int height,
                 int width) override {
    const size_t n = static_cast<size_t>(channels) * height * width;
    depthwiseKernel<<<blocksFor(n), kThreads>>>(in, weight, bias, out, channels, height, width);
    check(cudaGetLastError(), "depthwise kernel launch");
  }
  void creff(const Params& p, int window) override {
    switch (window) {
      case 1: launchCreff<1>(p); break;
      case 3: launchCreff<3>(p); break;
      case 5: launchCreff<5>(p); break;
      case 7: launchCreff<7>(p); break;
      case 9: launchCreff<9>(p); break;
      case 11: launchCreff<11>(p); break;
      default:
        throw CodedError("ERR_UNSUPPORTED", "the CUDA kernel supports windows 1 to " +
                                                std::to_string(cudakernel::kMaxWindow) + "; use the CPU kernel");
    }
  }
  void head(const devicekernel::HeadParams& p) override {
    headKernel<<<blocksFor(p.plane), kThreads>>>(p);
    check(cudaGetLastError(), "head kernel launch");
  }
  void labels(const devicekernel::LabelsParams& p) override {
    labelsKernel<<<blocksFor(static_cast<size_t>(p.outH) * p.outW), kThreads>>>(p);
    check(cudaGetLastError(), "labels kernel launch");
  }
  void startTimer() override { check(cudaEventRecord(start_), "cudaEventRecord"); }
  double stopTimer() override {
    check(cudaEventRecord(stop_), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "CUDA kernels");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return ms;
  }

 protected:
  // Synchronous copies on the default stream: they wait for the kernels queued before them.
  void copyToDevice(void* device, const void* host, size_t bytes) override {
    check(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to the device");
  }
  void copyToHost(void* host, const void* device, size_t bytes) override {
    check(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
  }

 private:
  cudaEvent_t start_{}, stop_{};
};

CudaNeeds needs() {
  CudaNeeds n;
  n.built = true;
  n.runtimeVersion = CUDART_VERSION;
  n.driverFloor = ARSEG_CUDA_DRIVER_FLOOR;
  parseCudaArchitectures(ARSEG_CUDA_ARCHITECTURES, &n);
  return n;
}

}  // namespace

CudaBuildInfo cudaBuildInfo() {
  CudaBuildInfo info;
  info.built = true;
  info.runtimeVersion = CUDART_VERSION;
  info.toolkit = ARSEG_CUDA_TOOLKIT_VERSION;
  info.architectures = ARSEG_CUDA_ARCHITECTURES;
  info.driverFloor = ARSEG_CUDA_DRIVER_FLOOR;
  return info;
}

bool cudaUsable(std::string* reason, std::string* fix) {
  // The driver's own diagnosis first: the runtime's errors ("CUDA driver version is
  // insufficient for CUDA runtime version" on a machine with no driver at all) mislead.
  const CudaDiagnosis d = diagnoseCuda(cudaDriverFacts(), needs());
  if (!d.ok) {
    if (reason) *reason = d.reason;
    if (fix) *fix = d.fix;
    return false;
  }
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    if (reason)
      *reason = err != cudaSuccess ? std::string("the CUDA runtime cannot use the GPU: ") + cudaGetErrorString(err)
                                   : "no GPU: the CUDA runtime sees no device";
    if (fix) *fix = "check `nvidia-smi` and `ar-seg doctor`";
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return false;
  }
  return true;
}

std::unique_ptr<DeviceBackend> openCudaBackend() {
  std::string reason, fix;
  if (!cudaUsable(&reason, &fix)) throw CodedError("ERR_CUDA_UNAVAILABLE", unavailableMessage(reason, fix));
  return std::make_unique<CudaBackend>();
}

}  // namespace arseg
