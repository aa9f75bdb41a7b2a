// The device code that turns a feature into labels on the GPU: the decoder's pointwise head
// (pointwise_head.h) and the upsampling + arg-max (logits_to_labels.h). Shared by the GPU build
// (device/cuda_backend.cu) and the host emulator (device/emulated_backend.cc) through
// cuda_compat.h. Both are one thread per pixel with no shared memory: memory-bound passes over
// data already on the device.
//
// Bits: the labels equal the CPU kernels' for equal logits (labelAt repeats logitsToLabels'
// arithmetic term for term, with no contraction into fused multiply-adds). The head's sums are
// fused multiply-adds over the channels in order, as the CPU head computes them where the CPU
// has FMA (AVX2, AVX-512); its baseline path rounds each product and may differ in the last bit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../creff/sampling.h"
#include "../device/cuda_compat.h"

namespace arseg {
namespace devicekernel {

// Classes per pass over the channels: the accumulators of one pass stay in registers, and the
// feature is read classes / kHeadClassBlock times.
constexpr int kHeadClassBlock = 8;

struct HeadParams {
  const float* feature;  // channels x plane
  const float* weight;   // classes x channels
  const float* bias;     // classes
  float* logits;         // classes x plane
  int channels, classes;
  size_t plane;
};

// The logits of pixel i: (sum over c in order of weight[k][c] * feature[c][i]) + bias[k].
ARSEG_DEVICE void headAt(const HeadParams& p, size_t i) {
  if (i >= p.plane) return;
  for (int k0 = 0; k0 < p.classes; k0 += kHeadClassBlock) {
    const int n = p.classes - k0 < kHeadClassBlock ? p.classes - k0 : kHeadClassBlock;
    float acc[kHeadClassBlock];
    ARSEG_UNROLL
    for (int j = 0; j < kHeadClassBlock; ++j) acc[j] = 0.f;
    for (int c = 0; c < p.channels; ++c) {
      const float x = p.feature[static_cast<size_t>(c) * p.plane + i];
      ARSEG_UNROLL
      for (int j = 0; j < kHeadClassBlock; ++j)
        if (j < n) acc[j] = ARSEG_FMA(p.weight[static_cast<size_t>(k0 + j) * p.channels + c], x, acc[j]);
    }
    ARSEG_UNROLL
    for (int j = 0; j < kHeadClassBlock; ++j)
      if (j < n) p.logits[static_cast<size_t>(k0 + j) * p.plane + i] = ARSEG_ADD(acc[j], p.bias[k0 + j]);
  }
}

struct LabelsParams {
  const float* logits;  // classes x h x w
  uint8_t* labels;      // outH x outW
  int classes, h, w, outH, outW;
  bool halfPixel;  // LogitsUpsampling::HalfPixel, else AlignCorners
};

// The label of output pixel i: the first class with the greatest bilinearly upsampled logit
// (logitsToLabels, term for term); at equal sizes the plain arg-max over the planes.
ARSEG_DEVICE void labelAt(const LabelsParams& p, size_t i) {
  const size_t outPlane = static_cast<size_t>(p.outH) * p.outW;
  if (i >= outPlane) return;
  const size_t plane = static_cast<size_t>(p.h) * p.w;
  int best = 0;
  if (p.h == p.outH && p.w == p.outW) {
    float bestValue = p.logits[i];
    for (int c = 1; c < p.classes; ++c) {
      const float v = p.logits[c * plane + i];
      if (v > bestValue) {
        best = c;
        bestValue = v;
      }
    }
  } else {
    const int y = static_cast<int>(i / p.outW), x = static_cast<int>(i % p.outW);
    const BilinearTaps t = bilinearClamped(logitsSourceCoordinate(x, p.w, p.outW, p.halfPixel),
                                           logitsSourceCoordinate(y, p.h, p.outH, p.halfPixel), p.h, p.w);
    float bestValue = 0.f;
    for (int c = 0; c < p.classes; ++c) {
      const float* q = p.logits + c * plane;
      const float v =
          ARSEG_ADD(ARSEG_ADD(ARSEG_ADD(ARSEG_MUL(t.weight[0], q[t.offset[0]]), ARSEG_MUL(t.weight[1], q[t.offset[1]])),
                              ARSEG_MUL(t.weight[2], q[t.offset[2]])),
                    ARSEG_MUL(t.weight[3], q[t.offset[3]]));
      if (c == 0 || v > bestValue) {
        best = c;
        bestValue = v;
      }
    }
  }
  p.labels[i] = static_cast<uint8_t>(best);
}

}  // namespace devicekernel
}  // namespace arseg
