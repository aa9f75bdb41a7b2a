// The decoder's head as a native kernel: a 1x1 convolution (classes x channels weights and a
// bias) from a planar feature to planar logits. It is a matrix product over the pixels, so the
// feature is read once, straight from its channel planes, with no reorder to a blocked layout
// and no copy of the output: the cost is one pass over the feature's memory.
#pragma once

#include <cstddef>

namespace arseg {

// feature: channels x height x width (planar); weight: classes x channels; bias: classes;
// logits: classes x height x width, not overlapping the feature. Each logit is
// (sum over c = 0..channels-1, in that order, of weight[k][c] * feature[c][p]) + bias[k], every
// product and sum rounded to float on its own (no fused multiply-add), so that the bits are the
// same at every SIMD level (ARSEG_SIMD) and on the device (labels_kernel.cuh, headAt): the
// device path's labels equal the CPU path's wherever the feature is the same. The head is bound
// by reading the feature, so the unfused products cost little (BENCHMARKS.md, "The pointwise
// head at every SIMD level"). threads <= 0: all cores.
void pointwiseHead(const float* feature, int channels, int height, int width, const float* weight,
                   const float* bias, int classes, float* logits, int threads);

// The same on `count` consecutive pixels of strided planes, on the calling thread: channel c of
// the input starts at feature + c * featureStride, class k of the output at
// logits + k * logitsStride. For kernels that apply the head to a tile of their own output.
void pointwiseHeadPixels(const float* feature, size_t featureStride, int channels, size_t count,
                         const float* weight, const float* bias, int classes, float* logits,
                         size_t logitsStride);

}  // namespace arseg
