// The device code that turns a feature into labels on the GPU: the decoder's pointwise head
// (pointwise_head.h) and the upsampling + arg-max (logits_to_labels.h). Shared by the GPU build
// (device/cuda_backend.cu) and the host emulator (device/emulated_backend.cc) through
// cuda_compat.h. Both are one thread per pixel with no shared memory: memory-bound passes over
// data already on the device.
//
// Bits: the same as the CPU kernels' at every SIMD level. The head sums each rounded product
// over the channels in order, as pointwiseHead does (no fused multiply-add there either); the
// labels go through the CPU's own tap tables (labels_taps.h, computed on the host and uploaded
// once per size) with logitsToLabels' products and sums, term for term. So a feature gives the
// CPU path's logits and labels exactly; ARSEG_MUL and ARSEG_ADD (cuda_compat.h) keep nvcc from
// fusing them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/bilinear_axis.h"
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

// The logits of pixel i: (sum over c in order of weight[k][c] * feature[c][i]) + bias[k], each
// product and sum rounded on its own, as pointwiseHead computes them at every SIMD level.
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
        if (j < n) acc[j] = ARSEG_ADD(acc[j], ARSEG_MUL(p.weight[static_cast<size_t>(k0 + j) * p.channels + c], x));
    }
    ARSEG_UNROLL
    for (int j = 0; j < kHeadClassBlock; ++j)
      if (j < n) p.logits[static_cast<size_t>(k0 + j) * p.plane + i] = ARSEG_ADD(acc[j], p.bias[k0 + j]);
  }
}

struct LabelsParams {
  const float* logits;      // classes x h x w
  uint8_t* labels;          // outH x outW
  const AxisTaps* rows;     // outH: LabelsTaps::rows, on the device
  const AxisTaps* columns;  // outW: LabelsTaps::columns, on the device
  int classes, h, w, outH, outW;
  int columnTaps;  // LabelsTaps::columnTaps
  bool identity;   // LabelsTaps::identity: the plain arg-max (rows and columns not read)
};

// The label of output pixel i: the first class with the greatest value through the tables
// (labels_taps.h's formula, which logitsToLabels computes row by row; here per pixel, the same
// products and sums in the same order); with `identity` the plain arg-max over the planes.
ARSEG_DEVICE void labelAt(const LabelsParams& p, size_t i) {
  const size_t outPlane = static_cast<size_t>(p.outH) * p.outW;
  if (i >= outPlane) return;
  const size_t plane = static_cast<size_t>(p.h) * p.w;
  int best = 0;
  if (p.identity) {
    float bestValue = p.logits[i];
    for (int c = 1; c < p.classes; ++c) {
      const float v = p.logits[c * plane + i];
      if (v > bestValue) {
        best = c;
        bestValue = v;
      }
    }
  } else {
    const AxisTaps& v = p.rows[i / p.outW];
    const AxisTaps& u = p.columns[i % p.outW];
    float bestValue = 0.f;
    for (int c = 0; c < p.classes; ++c) {
      const float* q = p.logits + c * plane;
      float value = 0.f;
      for (int b = 0; b < p.columnTaps; ++b) {
        float t = 0.f;
        for (int a = 0; a < v.count; ++a)
          t = ARSEG_ADD(t, ARSEG_MUL(v.weight[a], q[static_cast<size_t>(v.index[a]) * p.w + u.index[b]]));
        const float term = ARSEG_MUL(u.weight[b], t);
        value = b == 0 ? term : ARSEG_ADD(value, term);
      }
      if (c == 0 || value > bestValue) {
        best = c;
        bestValue = value;
      }
    }
  }
  p.labels[i] = static_cast<uint8_t>(best);
}

}  // namespace devicekernel
}  // namespace arseg
