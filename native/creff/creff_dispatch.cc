#include "creff_dispatch.h"

#include <chrono>
#include <vector>

#include "../common/coded_error.h"
#include "../device/device_backend.h"
#include "../device/device_path.h"
#include "../postprocess/pointwise_head.h"
#include "creff_reference.h"

namespace arseg {

double runCreff(const CreffWeights& w, const CreffShape& s, const CreffCall& c, float* out) {
  if (c.prepared && c.kernel != CreffKernel::Fused)
    throw CodedError("ERR_INVALID_ARG",
                     "a prepared keyframe is for the fused CPU kernel; pass the raw feature otherwise");
  if (!c.prepared && !c.key) throw CodedError("ERR_INVALID_ARG", "no keyframe feature");
  if (c.head && c.kernel == CreffKernel::Cuda)
    throw CodedError("ERR_INVALID_ARG", "options.head is for the CPU kernels");
  if (c.kernel == CreffKernel::Cuda)
    return creffOnDevice(*openCudaBackend(), w, s, c.lr, c.key, c.motion, c.sampling, c.mode, out);

  const auto start = std::chrono::steady_clock::now();
  if (c.kernel == CreffKernel::Fused) {
    if (c.prepared) {
      creffFusedCpu(w, s, c.lr, *c.prepared, c.motion, c.sampling, out, c.threads, c.head);
    } else {
      const PreparedKeyframe key = prepareKeyframe(w, c.key, s.height, s.width, c.mode, c.threads);
      creffFusedCpu(w, s, c.lr, key, c.motion, c.sampling, out, c.threads, c.head);
    }
  } else {
    std::vector<float> feature;
    float* target = out;
    if (c.head) {
      feature.resize(size_t(s.channels) * s.plane());
      target = feature.data();
    }
    if (c.kernel == CreffKernel::Reference)
      creffReference(w, s, c.lr, c.key, c.motion, c.sampling, c.mode, target);
    else
      creffOnDevice(*openEmulatedBackend(), w, s, c.lr, c.key, c.motion, c.sampling, c.mode, target);
    if (c.head)  // on this thread: the reference and emulated kernels are slow test paths anyway
      pointwiseHeadPixels(target, s.plane(), s.channels, s.plane(), c.head->weight, c.head->bias, c.head->classes, out,
                          s.plane());
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace arseg
