// Used when the addon is built without nvcc: CUDA is reported unavailable, never faked.
#include "../common/coded_error.h"
#include "creff_cuda.h"

namespace arseg {

bool cudaCreffAvailable(std::string* why) {
  if (why) *why = "this build of ar-seg-native has no CUDA kernels (nvcc was not found when it was built)";
  return false;
}

double creffCuda(const CreffWeights&, const CreffShape&, const float*, const float*, const float*,
                 WarpSampling, CreffMode, float*) {
  throw CodedError("ERR_CUDA_UNAVAILABLE",
                   "this build of ar-seg-native has no CUDA kernels (nvcc was not found when it was built)");
}

}  // namespace arseg
