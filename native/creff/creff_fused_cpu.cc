#include "creff_fused_cpu.h"

#include <algorithm>
#include <cmath>

#include "../common/coded_error.h"
#include "../common/parallel_for.h"
#include "sampling.h"

// The hot tile function is compiled twice, for x86-64-v3 (AVX2 + FMA) and baseline x86-64,
// and the loader picks one at start-up, so one prebuilt binary is fast on modern CPUs and still
// runs on old ones.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(ARSEG_NO_CLONES)
#define ARSEG_HOT __attribute__((target_clones("arch=haswell", "default")))
#else
#define ARSEG_HOT
#endif

namespace arseg {

namespace {

constexpr int kTileH = 16;
constexpr int kTileW = 32;

// Depthwise weights tap-major ([9][C]) so that each tap's loop over channels is contiguous.
std::vector<float> tapMajor(const std::vector<float>& weight, int channels) {
  std::vector<float> out(weight.size());
  for (int c = 0; c < channels; ++c)
    for (int t = 0; t < 9; ++t) out[t * channels + c] = weight[c * 9 + t];
  return out;
}

void chwToHwc(const float* chw, int c, int h, int w, float* hwc, int threads) {
  const size_t plane = static_cast<size_t>(h) * w;
  parallelFor(h, threads, [&](int y, int) {
    for (int x = 0; x < w; ++x) {
      const size_t p = static_cast<size_t>(y) * w + x;
      float* dst = hwc + p * c;
      for (int ch = 0; ch < c; ++ch) dst[ch] = chw[ch * plane + p];
    }
  });
}

// Depthwise 3x3 convolution (zero padding, bias) of a channel-last image.
void depthwiseHwc(const float* in, int c, int h, int w, const std::vector<float>& tapWeights,
                  const std::vector<float>& bias, float* out, int threads) {
  parallelFor(h, threads, [&](int y, int) {
    for (int x = 0; x < w; ++x) {
      float* dst = out + (static_cast<size_t>(y) * w + x) * c;
      std::copy(bias.begin(), bias.end(), dst);
      for (int t = 0; t < 9; ++t) {
        const int yy = y + t / 3 - 1, xx = x + t % 3 - 1;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const float* src = in + (static_cast<size_t>(yy) * w + xx) * c;
        const float* k = tapWeights.data() + t * c;
#pragma omp simd
        for (int ch = 0; ch < c; ++ch) dst[ch] += k[ch] * src[ch];
      }
    }
  });
}

struct Kernel {
  const CreffShape& s;
  const float* lrHwc;
  const PreparedKeyframe& key;
  const float* motion;
  bool official;
  int window;
  std::vector<float> qT, kT, vT;  // tap-major weights
  const std::vector<float>& qBias;
  const std::vector<float>& kBias;
  const std::vector<float>& vBias;
};

struct Scratch {
  std::vector<float> u, q, fw, kf, v, out, score;
};

// Sums the four bilinear taps of `src` (channel-last) into dst[0..C).
inline void gather4(const float* src, const BilinearTaps& t, int c, float* dst) {
  const float* a = src + static_cast<size_t>(t.offset[0]) * c;
  const float* b = src + static_cast<size_t>(t.offset[1]) * c;
  const float* d = src + static_cast<size_t>(t.offset[2]) * c;
  const float* e = src + static_cast<size_t>(t.offset[3]) * c;
  const float w0 = t.weight[0], w1 = t.weight[1], w2 = t.weight[2], w3 = t.weight[3];
#pragma omp simd
  for (int ch = 0; ch < c; ++ch) dst[ch] = w0 * a[ch] + w1 * b[ch] + w2 * d[ch] + w3 * e[ch];
}

ARSEG_HOT void processTile(const Kernel& k, int ty0, int tx0, int th, int tw, Scratch& sc,
                           float* out) {
  const CreffShape& s = k.s;
  const int C = s.channels, H = s.height, W = s.width, R = k.window / 2, K = k.window;
  const size_t plane = s.plane();
  const float scaleY = alignCornersScale(s.lrHeight, H), scaleX = alignCornersScale(s.lrWidth, W);
  auto inside = [&](int y, int x) { return y >= 0 && y < H && x >= 0 && x < W; };

  // U over the tile plus a 1-pixel halo (for the q convolution); zero outside the image.
  const int uh = th + 2, uw = tw + 2;
  sc.u.resize(static_cast<size_t>(uh) * uw * C);
  for (int i = 0; i < uh; ++i)
    for (int j = 0; j < uw; ++j) {
      const int y = ty0 - 1 + i, x = tx0 - 1 + j;
      float* dst = sc.u.data() + (static_cast<size_t>(i) * uw + j) * C;
      if (!inside(y, x)) {
        std::fill(dst, dst + C, 0.f);
        continue;
      }
      gather4(k.lrHwc, bilinearClamped(x * scaleX, y * scaleY, s.lrHeight, s.lrWidth), C, dst);
    }

  // Q over the tile.
  sc.q.resize(static_cast<size_t>(th) * tw * C);
  for (int i = 0; i < th; ++i)
    for (int j = 0; j < tw; ++j) {
      float* dst = sc.q.data() + (static_cast<size_t>(i) * tw + j) * C;
      std::copy(k.qBias.begin(), k.qBias.end(), dst);
      for (int t = 0; t < 9; ++t) {
        const float* src = sc.u.data() + (static_cast<size_t>(i + t / 3) * uw + (j + t % 3)) * C;
        const float* wq = k.qT.data() + t * C;
#pragma omp simd
        for (int c = 0; c < C; ++c) dst[c] += wq[c] * src[c];
      }
    }

  // Kf and V over the tile plus a K/2 halo (the attention window); zero outside the image.
  const int kh = th + 2 * R, kw = tw + 2 * R;
  sc.kf.resize(static_cast<size_t>(kh) * kw * C);
  sc.v.resize(sc.kf.size());
  auto warpTaps = [&](int y, int x) {
    const size_t p = static_cast<size_t>(y) * W + x;
    return bilinearZero(warpSource(x, k.motion[p], W, k.official),
                        warpSource(y, k.motion[plane + p], H, k.official), H, W);
  };
  if (k.key.mode == CreffMode::Exact) {
    // The warped keyframe over one more pixel of halo (for the k and v convolutions).
    const int fh = kh + 2, fwid = kw + 2;
    sc.fw.resize(static_cast<size_t>(fh) * fwid * C);
    for (int i = 0; i < fh; ++i)
      for (int j = 0; j < fwid; ++j) {
        const int y = ty0 - R - 1 + i, x = tx0 - R - 1 + j;
        float* dst = sc.fw.data() + (static_cast<size_t>(i) * fwid + j) * C;
        if (!inside(y, x))
          std::fill(dst, dst + C, 0.f);
        else
          gather4(k.key.featureHwc.data(), warpTaps(y, x), C, dst);
      }
    for (int i = 0; i < kh; ++i)
      for (int j = 0; j < kw; ++j) {
        const size_t at = (static_cast<size_t>(i) * kw + j) * C;
        float* kd = sc.kf.data() + at;
        float* vd = sc.v.data() + at;
        if (!inside(ty0 - R + i, tx0 - R + j)) {
          std::fill(kd, kd + C, 0.f);
          std::fill(vd, vd + C, 0.f);
          continue;
        }
        std::copy(k.kBias.begin(), k.kBias.end(), kd);
        std::copy(k.vBias.begin(), k.vBias.end(), vd);
        for (int t = 0; t < 9; ++t) {
          const float* src = sc.fw.data() + (static_cast<size_t>(i + t / 3) * fwid + (j + t % 3)) * C;
          const float* wk = k.kT.data() + t * C;
          const float* wv = k.vT.data() + t * C;
#pragma omp simd
          for (int c = 0; c < C; ++c) {
            kd[c] += wk[c] * src[c];
            vd[c] += wv[c] * src[c];
          }
        }
      }
  } else {  // KeyframeConv: warp the keyframe's precomputed k and v convolutions
    for (int i = 0; i < kh; ++i)
      for (int j = 0; j < kw; ++j) {
        const int y = ty0 - R + i, x = tx0 - R + j;
        const size_t at = (static_cast<size_t>(i) * kw + j) * C;
        if (!inside(y, x)) {
          std::fill(sc.kf.data() + at, sc.kf.data() + at + C, 0.f);
          std::fill(sc.v.data() + at, sc.v.data() + at + C, 0.f);
          continue;
        }
        const BilinearTaps taps = warpTaps(y, x);
        gather4(k.key.keyHwc.data(), taps, C, sc.kf.data() + at);
        gather4(k.key.valueHwc.data(), taps, C, sc.v.data() + at);
      }
  }

  // Attention: scores over the K x K window, softmax, weighted values, residual.
  sc.score.resize(static_cast<size_t>(K) * K);
  sc.out.resize(static_cast<size_t>(th) * tw * C);
  float* score = sc.score.data();
  for (int i = 0; i < th; ++i)
    for (int j = 0; j < tw; ++j) {
      const float* q = sc.q.data() + (static_cast<size_t>(i) * tw + j) * C;
      float peak = -INFINITY;
      for (int oy = 0; oy < K; ++oy)
        for (int ox = 0; ox < K; ++ox) {
          const float* kv = sc.kf.data() + (static_cast<size_t>(i + oy) * kw + (j + ox)) * C;
          float acc = 0.f;
#pragma omp simd reduction(+ : acc)
          for (int c = 0; c < C; ++c) acc += q[c] * kv[c];
          score[oy * K + ox] = acc;
          peak = std::max(peak, acc);
        }
      float total = 0.f;
      for (int o = 0; o < K * K; ++o) total += (score[o] = std::exp(score[o] - peak));
      const float inv = 1.f / total;
      float* dst = sc.out.data() + (static_cast<size_t>(i) * tw + j) * C;
      const float* u = sc.u.data() + (static_cast<size_t>(i + 1) * uw + (j + 1)) * C;
      std::copy(u, u + C, dst);
      for (int oy = 0; oy < K; ++oy)
        for (int ox = 0; ox < K; ++ox) {
          const float a = score[oy * K + ox] * inv;
          const float* vv = sc.v.data() + (static_cast<size_t>(i + oy) * kw + (j + ox)) * C;
#pragma omp simd
          for (int c = 0; c < C; ++c) dst[c] += a * vv[c];
        }
    }

  // Back to C x H x W.
  for (int c = 0; c < C; ++c)
    for (int i = 0; i < th; ++i) {
      float* row = out + c * plane + static_cast<size_t>(ty0 + i) * W + tx0;
      const float* src = sc.out.data() + static_cast<size_t>(i) * tw * C + c;
      for (int j = 0; j < tw; ++j) row[j] = src[static_cast<size_t>(j) * C];
    }
}

}  // namespace

PreparedKeyframe prepareKeyframe(const CreffWeights& w, const float* key, int height, int width,
                                 CreffMode mode, int threads) {
  if (threads <= 0) threads = defaultThreads();
  PreparedKeyframe p;
  p.channels = w.channels;
  p.height = height;
  p.width = width;
  p.mode = mode;
  const size_t n = static_cast<size_t>(height) * width * w.channels;
  std::vector<float> hwc(n);
  chwToHwc(key, w.channels, height, width, hwc.data(), threads);
  if (mode == CreffMode::Exact) {
    p.featureHwc = std::move(hwc);
  } else {
    p.keyHwc.resize(n);
    p.valueHwc.resize(n);
    depthwiseHwc(hwc.data(), w.channels, height, width, tapMajor(w.kWeight, w.channels), w.kBias,
                 p.keyHwc.data(), threads);
    depthwiseHwc(hwc.data(), w.channels, height, width, tapMajor(w.vWeight, w.channels), w.vBias,
                 p.valueHwc.data(), threads);
  }
  return p;
}

void creffFusedCpu(const CreffWeights& w, const CreffShape& s, const float* lr,
                   const PreparedKeyframe& key, const float* motion, WarpSampling sampling,
                   float* out, int threads) {
  validateCreff(w, s);
  if (key.channels != s.channels || key.height != s.height || key.width != s.width)
    throw CodedError("ERR_SHAPE", "the prepared keyframe is " + std::to_string(key.channels) + "x" +
                                      std::to_string(key.height) + "x" + std::to_string(key.width) +
                                      ", the frame needs " + std::to_string(s.channels) + "x" +
                                      std::to_string(s.height) + "x" + std::to_string(s.width));
  if (threads <= 0) threads = defaultThreads();
  std::vector<float> lrHwc(static_cast<size_t>(s.channels) * s.lrPlane());
  chwToHwc(lr, s.channels, s.lrHeight, s.lrWidth, lrHwc.data(), threads);
  const Kernel kernel{s,
                      lrHwc.data(),
                      key,
                      motion,
                      sampling == WarpSampling::Official,
                      w.window,
                      tapMajor(w.qWeight, w.channels),
                      tapMajor(w.kWeight, w.channels),
                      tapMajor(w.vWeight, w.channels),
                      w.qBias,
                      w.kBias,
                      w.vBias};
  const int tilesY = (s.height + kTileH - 1) / kTileH, tilesX = (s.width + kTileW - 1) / kTileW;
  std::vector<Scratch> scratch(std::min(threads, tilesY * tilesX));
  parallelFor(tilesY * tilesX, threads, [&](int tile, int thread) {
    const int ty0 = (tile / tilesX) * kTileH, tx0 = (tile % tilesX) * kTileW;
    processTile(kernel, ty0, tx0, std::min(kTileH, s.height - ty0), std::min(kTileW, s.width - tx0),
                scratch[thread], out);
  });
}

}  // namespace arseg
