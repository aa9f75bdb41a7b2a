// Used when the addon is built without nvcc (and by binding.gyp, the compiler-only fallback):
// CUDA is reported unavailable with the reason, never faked. The driver is still asked
// (cuda_driver.h), so that a machine without a driver or GPU hears that first.
#include "../common/coded_error.h"
#include "cuda_driver.h"
#include "device_backend.h"

namespace arseg {

CudaBuildInfo cudaBuildInfo() { return CudaBuildInfo{}; }

bool cudaUsable(std::string* reason, std::string* fix) {
  const CudaDiagnosis d = diagnoseCuda(cudaDriverFacts(), CudaNeeds{});
  if (reason) *reason = d.reason;
  if (fix) *fix = d.fix;
  return false;
}

std::unique_ptr<DeviceBackend> openCudaBackend() {
  std::string reason, fix;
  cudaUsable(&reason, &fix);
  throw CodedError("ERR_CUDA_UNAVAILABLE", unavailableMessage(reason, fix));
}

}  // namespace arseg
