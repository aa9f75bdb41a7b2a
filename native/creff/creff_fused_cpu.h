// The fused CPU kernel of CReFF: upsampling, warping, the three depthwise convolutions, scores,
// softmax, weighting and the residual in one pass over output tiles. Nothing of size
// H x W x K*K (weights or unfolded keys) is ever materialised: each tile keeps only its own
// inputs plus a halo of K/2 + 1 pixels, planar (channel, row, column), and every inner loop runs
// along a row of the tile, so it vectorises over pixels with no horizontal reductions: the
// scores of a row for one window offset accumulate over channels in vector registers, and so do
// the weighted values. Tiles run on several threads.
#pragma once

#include <memory>
#include <vector>

#include "creff_types.h"

namespace arseg {

// The keyframe side of CReFF, prepared once per keyframe and reused for every frame of its GOP:
// the keyframe feature channel-last (so the warp's four taps read contiguous channel vectors),
// and for CreffMode::KeyframeConv its k and v convolutions instead (which that mode warps).
struct PreparedKeyframe {
  int channels = 0, height = 0, width = 0;
  CreffMode mode = CreffMode::Exact;
  std::vector<float> feature;    // Exact: F_k, H x W x C
  std::vector<float> keyConv;    // KeyframeConv: dwconv_k(F_k), H x W x C
  std::vector<float> valueConv;  // KeyframeConv: dwconv_v(F_k), H x W x C
};

PreparedKeyframe prepareKeyframe(const CreffWeights& w, const float* key, int height, int width,
                                 CreffMode mode, int threads);

// lr: C x h x w; motion: 2 x H x W; out: C x H x W. threads <= 0: all cores.
void creffFusedCpu(const CreffWeights& w, const CreffShape& s, const float* lr,
                   const PreparedKeyframe& key, const float* motion, WarpSampling sampling,
                   float* out, int threads);

}  // namespace arseg
