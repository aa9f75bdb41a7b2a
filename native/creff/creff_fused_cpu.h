// The fused CPU kernel of CReFF: upsampling, warping, the three depthwise convolutions, scores,
// softmax, weighting and the residual in one pass over output tiles. Nothing of size
// H x W x K*K (weights or unfolded keys) is ever materialised: each tile keeps only its own
// inputs plus a halo of K/2 + 1 pixels, channel-last so that the inner loops (dot products and
// weighted sums over channels) are contiguous and vectorised. Tiles run on several threads.
#pragma once

#include <memory>
#include <vector>

#include "creff_types.h"

namespace arseg {

// The keyframe side of CReFF, prepared once per keyframe and reused for every frame of its GOP:
// the keyframe feature in channel-last layout, and for CreffMode::KeyframeConv also its k and v
// convolutions (which that mode warps instead of convolving the warped feature).
struct PreparedKeyframe {
  int channels = 0, height = 0, width = 0;
  CreffMode mode = CreffMode::Exact;
  std::vector<float> featureHwc;  // Exact: H x W x C
  std::vector<float> keyHwc;      // KeyframeConv: dwconv_k(F_k), H x W x C
  std::vector<float> valueHwc;    // KeyframeConv: dwconv_v(F_k), H x W x C
};

PreparedKeyframe prepareKeyframe(const CreffWeights& w, const float* key, int height, int width,
                                 CreffMode mode, int threads);

// lr: C x h x w; motion: 2 x H x W; out: C x H x W. threads <= 0: all cores.
void creffFusedCpu(const CreffWeights& w, const CreffShape& s, const float* lr,
                   const PreparedKeyframe& key, const float* motion, WarpSampling sampling,
                   float* out, int threads);

}  // namespace arseg
