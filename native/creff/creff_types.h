// CReFF (Cross Resolution Feature Fusion), shared definitions: weights, problem shape, options.
// The exact semantics are in docs/method.md ("CReFF, step by step") and restated in
// creff_reference.h, the plain implementation every other kernel is tested against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace arseg {

// Three depthwise 3x3 convolutions with bias (q on the upsampled LR feature; k and v on the
// warped keyframe feature) and the attention window.
struct CreffWeights {
  int channels = 0;
  int window = 7;                     // K, odd
  std::vector<float> qWeight, qBias;  // C x 3 x 3, C
  std::vector<float> kWeight, kBias;
  std::vector<float> vWeight, vBias;
};

// How the warp turns a displacement into a sampling position.
enum class WarpSampling {
  // Sample F_k at (x + Mx, y + My) in pixels, bilinear, zero outside: docs/method.md's definition.
  Exact,
  // The official implementation: the grid is normalised by W-1 and H-1 but grid_sample runs
  // with align_corners=False, i.e. it samples at (x + Mx) * W / (W - 1) - 0.5 (same for y).
  // Offered so that converted official checkpoints see what they were trained with.
  Official,
};

enum class CreffMode {
  Exact,         // k and v convolutions on the warped keyframe feature (the reference formulation)
  KeyframeConv,  // k and v convolutions on the keyframe feature once, then warped (faster, approximate)
};

struct CreffShape {
  int channels = 0;
  int lrHeight = 0, lrWidth = 0;  // F_l: C x h x w
  int height = 0, width = 0;      // F_k, M (2 x H x W), output: C x H x W
  size_t plane() const { return static_cast<size_t>(height) * width; }
  size_t lrPlane() const { return static_cast<size_t>(lrHeight) * lrWidth; }
};

// Throws CodedError(ERR_SHAPE / ERR_INVALID_ARG) naming what disagrees.
void validateCreff(const CreffWeights& w, const CreffShape& s);

}  // namespace arseg
