#include "creff_reference.h"

#include <cmath>
#include <vector>

#include "sampling.h"

namespace arseg {

namespace {

// Depthwise 3x3 convolution with bias and zero padding, C x H x W -> C x H x W.
void depthwise3x3(const float* in, int c, int h, int w, const std::vector<float>& weight,
                  const std::vector<float>& bias, float* out) {
  for (int ch = 0; ch < c; ++ch) {
    const float* src = in + static_cast<size_t>(ch) * h * w;
    const float* k = weight.data() + ch * 9;
    float* dst = out + static_cast<size_t>(ch) * h * w;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        float acc = bias[ch];
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int yy = y + dy, xx = x + dx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w) acc += k[(dy + 1) * 3 + (dx + 1)] * src[yy * w + xx];
          }
        dst[y * w + x] = acc;
      }
  }
}

// Samples every channel of `in` (C x H x W) at p + M(p), zero outside.
void warp(const float* in, int c, int h, int w, const float* motion, bool official, float* out) {
  const size_t plane = static_cast<size_t>(h) * w;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t p = static_cast<size_t>(y) * w + x;
      const float sx = warpSource(x, motion[p], w, official);
      const float sy = warpSource(y, motion[plane + p], h, official);
      const BilinearTaps t = bilinearZero(sx, sy, h, w);
      for (int ch = 0; ch < c; ++ch) {
        const float* src = in + ch * plane;
        out[ch * plane + p] = t.weight[0] * src[t.offset[0]] + t.weight[1] * src[t.offset[1]] +
                              t.weight[2] * src[t.offset[2]] + t.weight[3] * src[t.offset[3]];
      }
    }
}

}  // namespace

void creffReference(const CreffWeights& wt, const CreffShape& s, const float* lr, const float* key, const float* motion,
                    WarpSampling sampling, CreffMode mode, float* out) {
  validateCreff(wt, s);
  const int C = s.channels, H = s.height, W = s.width, h = s.lrHeight, w = s.lrWidth;
  const size_t plane = s.plane();
  const bool official = sampling == WarpSampling::Official;

  // 1. U: upsample F_l (align_corners=True).
  std::vector<float> U(C * plane);
  const float scaleY = alignCornersScale(h, H), scaleX = alignCornersScale(w, W);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const BilinearTaps t = bilinearClamped(x * scaleX, y * scaleY, h, w);
      for (int c = 0; c < C; ++c) {
        const float* src = lr + c * s.lrPlane();
        U[c * plane + y * W + x] = t.weight[0] * src[t.offset[0]] + t.weight[1] * src[t.offset[1]] +
                                   t.weight[2] * src[t.offset[2]] + t.weight[3] * src[t.offset[3]];
      }
    }

  // 2-3. Q from U; Kf and V from the warped keyframe (or warped from the convolved keyframe).
  std::vector<float> Q(C * plane), Kf(C * plane), V(C * plane), tmp(C * plane);
  depthwise3x3(U.data(), C, H, W, wt.qWeight, wt.qBias, Q.data());
  if (mode == CreffMode::Exact) {
    warp(key, C, H, W, motion, official, tmp.data());
    depthwise3x3(tmp.data(), C, H, W, wt.kWeight, wt.kBias, Kf.data());
    depthwise3x3(tmp.data(), C, H, W, wt.vWeight, wt.vBias, V.data());
  } else {
    depthwise3x3(key, C, H, W, wt.kWeight, wt.kBias, tmp.data());
    warp(tmp.data(), C, H, W, motion, official, Kf.data());
    depthwise3x3(key, C, H, W, wt.vWeight, wt.vBias, tmp.data());
    warp(tmp.data(), C, H, W, motion, official, V.data());
  }

  // 4-5. Local attention over the K x K window, then the residual.
  const int R = wt.window / 2, K2 = wt.window * wt.window;
  std::vector<double> score(K2);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t p = static_cast<size_t>(y) * W + x;
      for (int o = 0; o < K2; ++o) {
        const int yy = y + o / wt.window - R, xx = x + o % wt.window - R;
        double acc = 0;  // an offset outside the image scores exactly 0
        if (yy >= 0 && yy < H && xx >= 0 && xx < W)
          for (int c = 0; c < C; ++c) acc += double(Q[c * plane + p]) * Kf[c * plane + yy * W + xx];
        score[o] = acc;
      }
      double peak = score[0];
      for (int o = 1; o < K2; ++o) peak = std::fmax(peak, score[o]);
      double total = 0;
      for (int o = 0; o < K2; ++o) total += (score[o] = std::exp(score[o] - peak));
      for (int c = 0; c < C; ++c) {
        double acc = 0;
        for (int o = 0; o < K2; ++o) {
          const int yy = y + o / wt.window - R, xx = x + o % wt.window - R;
          if (yy >= 0 && yy < H && xx >= 0 && xx < W) acc += score[o] / total * V[c * plane + yy * W + xx];
        }
        out[c * plane + p] = static_cast<float>(U[c * plane + p] + acc);
      }
    }
}

}  // namespace arseg
