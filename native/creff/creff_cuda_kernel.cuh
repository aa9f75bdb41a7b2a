// The device code of the fused CUDA CReFF kernel, shared by the GPU build (device/cuda_backend.cu) and
// the host emulator (device/emulated_backend.cc) through device/cuda_compat.h.
//
// One block computes a kTile x kTile tile of output pixels, one thread per pixel, in two passes
// over chunks of kChunk channels:
//   pass 1: for each chunk, the block stages in shared memory the upsampled LR feature over the
//           tile (+1 halo) and the warped keyframe over the tile (+K/2+1 halo), convolves them
//           into Q (per thread) and Kf (tile + K/2 halo), and every thread adds the chunk's
//           contribution to its K*K scores, kept in registers;
//   softmax in registers;
//   pass 2: for each chunk, the block stages the warped keyframe again, convolves it into V,
//           and every thread accumulates its weighted values and writes U + A.
// Shared memory is laid out [channel][position], so neighbouring threads touch neighbouring
// words. Nothing of size H x W x K*K exists anywhere. In mode KeyframeConv the k and v
// convolutions of the keyframe are computed once (depthwiseAt) and warped instead.
#pragma once

#include <cstddef>

#include "../device/cuda_compat.h"
#include "sampling.h"

namespace arseg {
namespace cudakernel {

constexpr int kTile = 16;
constexpr int kChunk = 8;
constexpr int kMaxWindow = 11;

struct Params {
  const float* lr;
  const float* key;   // Exact: F_k
  const float* keyK;  // KeyframeConv: dwconv_k(F_k)
  const float* keyV;  // KeyframeConv: dwconv_v(F_k)
  const float* motion;
  const float *qw, *qb, *kw, *kb, *vw, *vb;  // C x 9, C
  float* out;
  int C, h, w, H, W;
  bool official;
  bool keyframeConv;
};

// Floats of shared memory a block needs for window K.
constexpr size_t sharedFloats(int K) {
  return static_cast<size_t>(kChunk) *
         ((kTile + K + 1) * (kTile + K + 1) + (kTile + K - 1) * (kTile + K - 1) + (kTile + 2) * (kTile + 2));
}

ARSEG_DEVICE int imin(int a, int b) { return a < b ? a : b; }

ARSEG_DEVICE float sampleTaps(const float* plane, const BilinearTaps& t) {
  return t.weight[0] * plane[t.offset[0]] + t.weight[1] * plane[t.offset[1]] + t.weight[2] * plane[t.offset[2]] +
         t.weight[3] * plane[t.offset[3]];
}

ARSEG_DEVICE BilinearTaps warpTapsAt(const Params& p, int y, int x) {
  const size_t i = static_cast<size_t>(y) * p.W + x;
  const size_t plane = static_cast<size_t>(p.H) * p.W;
  return bilinearZero(warpSource(x, p.motion[i], p.W, p.official), warpSource(y, p.motion[plane + i], p.H, p.official),
                      p.H, p.W);
}

// Stages `source` warped (channels c0..c0+n) over the square region of side `side` at (y0, x0)
// into smem[cc * side * side + pos]; zero outside the image.
ARSEG_DEVICE void stageWarped(const Params& p, const float* source, int c0, int n, int y0, int x0, int side,
                              float* smem) {
  const size_t plane = static_cast<size_t>(p.H) * p.W;
  for (int pos = ARSEG_TID; pos < side * side; pos += ARSEG_NTHREADS) {
    const int y = y0 + pos / side, x = x0 + pos % side;
    const bool inside = y >= 0 && y < p.H && x >= 0 && x < p.W;
    BilinearTaps t{};
    if (inside) t = warpTapsAt(p, y, x);
    for (int cc = 0; cc < n; ++cc)
      smem[cc * side * side + pos] = inside ? sampleTaps(source + (c0 + cc) * plane, t) : 0.f;
  }
}

// Depthwise 3x3 of a staged region (side + 2, origin one pixel further out) into a region of
// `side`; zero where the output position is outside the image.
ARSEG_DEVICE void convolveStaged(const Params& p, const float* in, int c0, int n, int y0, int x0, int side,
                                 const float* weight, const float* bias, float* out) {
  const int inSide = side + 2;
  for (int pos = ARSEG_TID; pos < side * side; pos += ARSEG_NTHREADS) {
    const int i = pos / side, j = pos % side;
    const int y = y0 + i, x = x0 + j;
    const bool inside = y >= 0 && y < p.H && x >= 0 && x < p.W;
    for (int cc = 0; cc < n; ++cc) {
      float acc = 0.f;
      if (inside) {
        const int c = c0 + cc;
        acc = bias[c];
        const float* src = in + cc * inSide * inSide;
        ARSEG_UNROLL
        for (int t = 0; t < 9; ++t) acc += weight[c * 9 + t] * src[(i + t / 3) * inSide + (j + t % 3)];
      }
      out[cc * side * side + pos] = acc;
    }
  }
}

// Stages Kf (pass 1) or V (pass 2) of channels c0..c0+n over the tile plus its K/2 halo into
// `kv`: the warped keyframe convolved with (weight, bias), or in KeyframeConv mode the warped
// precomputed convolution `convolved`. Ends with the block synchronised.
ARSEG_DEVICE void stageWindow(const Params& p, const float* convolved, const float* weight, const float* bias, int c0,
                              int n, int y0, int x0, int R, float* fw, float* kv) {
  const int KS = kTile + 2 * R, FS = KS + 2;
  if (p.keyframeConv) {
    stageWarped(p, convolved, c0, n, y0 - R, x0 - R, KS, kv);
  } else {
    stageWarped(p, p.key, c0, n, y0 - R - 1, x0 - R - 1, FS, fw);
    ARSEG_SYNC();
    convolveStaged(p, fw, c0, n, y0 - R, x0 - R, KS, weight, bias, kv);
  }
  ARSEG_SYNC();
}

// The whole kernel for the block at (ARSEG_BLOCK_X, ARSEG_BLOCK_Y), run by each of its
// kTile * kTile threads; `smem` is the block's shared memory (sharedFloats(K)).
template <int K>
ARSEG_DEVICE void creffBlock(const Params& p, float* smem) {
  constexpr int R = K / 2;
  constexpr int KS = kTile + 2 * R;   // Kf / V region side
  constexpr int FS = KS + 2;          // warped region side
  constexpr int US = kTile + 2;       // U region side
  float* fw = smem;                   // kChunk x FS x FS
  float* kv = fw + kChunk * FS * FS;  // kChunk x KS x KS (Kf, then V)
  float* us = kv + kChunk * KS * KS;  // kChunk x US x US

  const int tid = ARSEG_TID;
  const int tx = tid % kTile, ty = tid / kTile;
  const int x0 = ARSEG_BLOCK_X * kTile, y0 = ARSEG_BLOCK_Y * kTile;
  const int x = x0 + tx, y = y0 + ty;
  const bool mine = x < p.W && y < p.H;
  const size_t plane = static_cast<size_t>(p.H) * p.W;
  const size_t lrPlane = static_cast<size_t>(p.h) * p.w;
  const float scaleY = alignCornersScale(p.h, p.H), scaleX = alignCornersScale(p.w, p.W);

  float score[K * K];
  ARSEG_UNROLL
  for (int o = 0; o < K * K; ++o) score[o] = 0.f;

  // Pass 1: scores.
  for (int c0 = 0; c0 < p.C; c0 += kChunk) {
    const int n = imin(kChunk, p.C - c0);
    for (int pos = tid; pos < US * US; pos += ARSEG_NTHREADS) {  // U, tile + 1 halo
      const int uy = y0 - 1 + pos / US, ux = x0 - 1 + pos % US;
      const bool inside = uy >= 0 && uy < p.H && ux >= 0 && ux < p.W;
      BilinearTaps t{};
      if (inside) t = bilinearClamped(ux * scaleX, uy * scaleY, p.h, p.w);
      for (int cc = 0; cc < n; ++cc) us[cc * US * US + pos] = inside ? sampleTaps(p.lr + (c0 + cc) * lrPlane, t) : 0.f;
    }
    stageWindow(p, p.keyK, p.kw, p.kb, c0, n, y0, x0, R, fw, kv);
    if (mine) {
      for (int cc = 0; cc < n; ++cc) {
        const int c = c0 + cc;
        float q = p.qb[c];
        const float* u = us + cc * US * US;
        ARSEG_UNROLL
        for (int t = 0; t < 9; ++t) q += p.qw[c * 9 + t] * u[(ty + t / 3) * US + (tx + t % 3)];
        const float* kf = kv + cc * KS * KS;
        ARSEG_UNROLL
        for (int oy = 0; oy < K; ++oy) {
          ARSEG_UNROLL
          for (int ox = 0; ox < K; ++ox) score[oy * K + ox] += q * kf[(ty + oy) * KS + (tx + ox)];
        }
      }
    }
    ARSEG_SYNC();
  }

  // Softmax over the window, in registers.
  float peak = score[0];
  ARSEG_UNROLL
  for (int o = 1; o < K * K; ++o) peak = score[o] > peak ? score[o] : peak;
  float total = 0.f;
  ARSEG_UNROLL
  for (int o = 0; o < K * K; ++o) {
    score[o] = ARSEG_EXPF(score[o] - peak);
    total += score[o];
  }
  const float inv = 1.f / total;

  // Pass 2: weighted values and the residual.
  const BilinearTaps self = bilinearClamped(x * scaleX, y * scaleY, p.h, p.w);
  for (int c0 = 0; c0 < p.C; c0 += kChunk) {
    const int n = imin(kChunk, p.C - c0);
    stageWindow(p, p.keyV, p.vw, p.vb, c0, n, y0, x0, R, fw, kv);
    if (mine) {
      for (int cc = 0; cc < n; ++cc) {
        const int c = c0 + cc;
        const float* v = kv + cc * KS * KS;
        float acc = 0.f;
        ARSEG_UNROLL
        for (int oy = 0; oy < K; ++oy) {
          ARSEG_UNROLL
          for (int ox = 0; ox < K; ++ox) acc += score[oy * K + ox] * v[(ty + oy) * KS + (tx + ox)];
        }
        p.out[c * plane + static_cast<size_t>(y) * p.W + x] = sampleTaps(p.lr + c * lrPlane, self) + acc * inv;
      }
    }
    ARSEG_SYNC();
  }
}

// One element of a depthwise 3x3 convolution (zero padding, bias) of a C x H x W tensor.
ARSEG_DEVICE void depthwiseAt(size_t i, const float* in, const float* weight, const float* bias, float* out, int C,
                              int H, int W) {
  const size_t plane = static_cast<size_t>(H) * W;
  if (i >= plane * C) return;
  const int c = static_cast<int>(i / plane);
  const int y = static_cast<int>((i % plane) / W), x = static_cast<int>(i % W);
  float acc = bias[c];
  for (int t = 0; t < 9; ++t) {
    const int yy = y + t / 3 - 1, xx = x + t % 3 - 1;
    if (yy >= 0 && yy < H && xx >= 0 && xx < W) acc += weight[c * 9 + t] * in[c * plane + yy * W + xx];
  }
  out[i] = acc;
}

}  // namespace cudakernel
}  // namespace arseg
