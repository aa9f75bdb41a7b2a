// The fused CPU kernel of CReFF: upsampling, warping, the three depthwise convolutions, scores,
// softmax, weighting and the residual in one pass. Nothing of size H x W x K*K (weights or
// unfolded keys) is ever materialised. The output is made in vertical strips, top to bottom:
// each row of U, of the warped keyframe and of Kf and V is computed once per strip, planar
// (channel, column), and kept in a small ring of rows, and every inner loop runs along a row, so
// it vectorises over pixels with no horizontal reductions: the scores of a block of pixels for
// one window offset accumulate over channels in vector registers, and so do the weighted
// values. Strips run on several threads; the vector width is the CPU's (common/simd.h).
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

PreparedKeyframe prepareKeyframe(const CreffWeights& w, const float* key, int height, int width, CreffMode mode,
                                 int threads);

// The decoder's pointwise head (a 1x1 convolution: weight classes x C, bias classes) applied
// inside the kernel to each block of fused pixels while it is in L1, by pointwiseHeadPixels, so
// the fused head gives the logits of the kernel followed by pointwiseHeadPixels bit for bit,
// without writing the C x H x W feature (177 MB at CamVid size) and reading it back.
struct CreffHead {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int classes = 0;
};

// lr: C x h x w; motion: 2 x H x W; out: C x H x W, or classes x H x W logits with a head.
// threads <= 0: all cores.
void creffFusedCpu(const CreffWeights& w, const CreffShape& s, const float* lr, const PreparedKeyframe& key,
                   const float* motion, WarpSampling sampling, float* out, int threads,
                   const CreffHead* head = nullptr);

}  // namespace arseg
