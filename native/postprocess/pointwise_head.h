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
// device path's HR and LR frames get the CPU path's labels. Unfused, the head takes up to 1.4x
// as long on AVX2/AVX-512 with 64 channels (BENCHMARKS.md, "The pointwise head and the labels
// tables"): a few per cent of an HR frame. threads <= 0: all cores.
void pointwiseHead(const float* feature, int channels, int height, int width, const float* weight, const float* bias,
                   int classes, float* logits, int threads);

// The same sums on `count` consecutive pixels of strided planes, on the calling thread: channel
// c of the input starts at feature + c * featureStride, class k of the output at
// logits + k * logitsStride. For kernels that apply the head to a tile of their own output (the
// fused CReFF kernel, on the AR frames' fused feature while it is in cache). Where the CPU has
// them (AVX2, AVX-512) the products are fused multiply-adds: there the head is compute-bound,
// and exact agreement with the device buys nothing, as the fused feature itself is not the
// device's bit for bit (CReFF's sums run in another order there).
void pointwiseHeadPixels(const float* feature, size_t featureStride, int channels, size_t count, const float* weight,
                         const float* bias, int classes, float* logits, size_t logitsStride);

}  // namespace arseg
