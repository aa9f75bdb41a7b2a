// The plain reference implementation of CReFF, written for clarity, not speed. Every tensor of
// docs/method.md's definition is materialised in C x H x W layout and each step is a direct loop:
//
//   U  = bilinear upsampling of F_l to H x W (align_corners=True)
//   Fw = F_k sampled bilinearly at p + M(p), zero outside           (mode Exact)
//   Q = dwconv_q(U), Kf = dwconv_k(Fw), V = dwconv_v(Fw)          (3x3, zero padding, bias)
//   s(p, o) = sum_c Q(c, p) Kf(c, p + o)   (Kf outside the image = 0, still in the softmax)
//   a(p, .) = softmax over the K x K offsets o
//   out(c, p) = U(c, p) + sum_o a(p, o) V(c, p + o)   (V outside = 0)
//
// In mode KeyframeConv the k and v convolutions are applied to F_k and their results warped.
// The fused CPU and CUDA kernels and PyTorch's formulation (python/) are tested against this.
#pragma once

#include "creff_types.h"

namespace arseg {

// lr: C x h x w; key: C x H x W; motion: 2 x H x W (dx plane, dy plane); out: C x H x W.
void creffReference(const CreffWeights& w, const CreffShape& s, const float* lr, const float* key, const float* motion,
                    WarpSampling sampling, CreffMode mode, float* out);

}  // namespace arseg
