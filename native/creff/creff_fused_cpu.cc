#include "creff_fused_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../common/coded_error.h"
#include "../common/parallel_for.h"
#include "sampling.h"

// The tile function is compiled for AVX-512, AVX2 and baseline x86-64; the loader picks the
// best the CPU supports (feature-based, so it also works under VMs that hide the CPU model).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(ARSEG_NO_CLONES)
#define ARSEG_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ARSEG_HOT
#endif

namespace arseg {

namespace {

constexpr int kTileH = 16;
constexpr int kTileW = 64;

// Depthwise 3x3 convolution (zero padding, bias) of a C x H x W tensor, row-vectorised.
void depthwisePlanar(const float* in, int c, int h, int w, const std::vector<float>& weight,
                     const std::vector<float>& bias, float* out, int threads) {
  const size_t plane = static_cast<size_t>(h) * w;
  parallelFor(c, threads, [&](int ch, int) {
    const float* src = in + ch * plane;
    const float* k = weight.data() + ch * 9;
    float* dst = out + ch * plane;
    for (int y = 0; y < h; ++y) {
      float* row = dst + static_cast<size_t>(y) * w;
      std::fill(row, row + w, bias[ch]);
      for (int dy = -1; dy <= 1; ++dy) {
        const int yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        const float* s = src + static_cast<size_t>(yy) * w;
        for (int dx = -1; dx <= 1; ++dx) {
          const float kv = k[(dy + 1) * 3 + (dx + 1)];
          const int x0 = std::max(0, -dx), x1 = std::min(w, w - dx);
#pragma omp simd
          for (int x = x0; x < x1; ++x) row[x] += kv * s[x + dx];
        }
      }
    }
  });
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

struct Kernel {
  const CreffWeights& w;
  const CreffShape& s;
  const float* lr;  // h x w x C (channel-last)
  const PreparedKeyframe& key;
  const float* motion;
  bool official;
};

struct Scratch {
  std::vector<BilinearTaps> taps;
  std::vector<uint8_t> inside;
  std::vector<float> u, q, fw, kf, v, score, vec;
  std::vector<float> ones;  // all-ones mask of the Q convolution
  std::vector<float> mask;  // 1 where a Kf/V position is inside the image, else 0
};

constexpr int kLanes = 16;  // the attention works on 16 pixels of a row at a time

// 16 floats as one value (GCC/Clang vector extension): one AVX-512 register, two AVX2 or four
// SSE registers, so the attention's accumulators stay in registers on every clone.
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

inline Lanes loadLanes(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

typedef int32_t IntLanes __attribute__((vector_size(kLanes * sizeof(int32_t))));

// exp(x) for x <= 0 (softmax arguments after subtracting the maximum), on all lanes at once:
// x = n ln2 + r with |r| <= ln2 / 2, e^r by Cephes' expf polynomial (relative error ~1e-7),
// 2^n built in the exponent bits. Below -87 the result is 0, as expf's underflow.
inline Lanes expNonPositive(Lanes x) {
  x = x < -87.f ? Lanes{} - 87.f : x;
  // n = round(x / ln2): for x <= 0, truncating x / ln2 - 0.5 toward zero rounds half down
  const Lanes n = __builtin_convertvector(__builtin_convertvector(x * 1.44269504088896341f - 0.5f, IntLanes), Lanes);
  const Lanes r = x - n * 0.693359375f + n * 2.12194440e-4f;
  Lanes p = Lanes{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const IntLanes bits = (__builtin_convertvector(n, IntLanes) + 127) << 23;
  Lanes scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Fills the planar region[c][pos] (`count` positions) from the channel-last `src`: the four
// taps of each position are summed as contiguous channel vectors into a block of kLanes
// positions, which is then transposed into the planes kLanes positions at a time. `block` holds
// kLanes x channels floats.
inline void gatherPlanar(const float* src, int channels, const BilinearTaps* taps,
                         const uint8_t* inside, int count, float* region, float* block) {
  for (int p0 = 0; p0 < count; p0 += kLanes) {
    const int n = std::min(kLanes, count - p0);
    for (int q = 0; q < n; ++q) {
      float* vec = block + static_cast<size_t>(q) * channels;
      const int p = p0 + q;
      if (!inside[p]) {
        std::fill(vec, vec + channels, 0.f);
        continue;
      }
      const BilinearTaps& t = taps[p];
      const float* a = src + static_cast<size_t>(t.offset[0]) * channels;
      const float* b = src + static_cast<size_t>(t.offset[1]) * channels;
      const float* d = src + static_cast<size_t>(t.offset[2]) * channels;
      const float* e = src + static_cast<size_t>(t.offset[3]) * channels;
      const float w0 = t.weight[0], w1 = t.weight[1], w2 = t.weight[2], w3 = t.weight[3];
#pragma omp simd
      for (int c = 0; c < channels; ++c) vec[c] = w0 * a[c] + w1 * b[c] + w2 * d[c] + w3 * e[c];
    }
    for (int q = n; q < kLanes; ++q) std::fill(block + static_cast<size_t>(q) * channels, block + static_cast<size_t>(q + 1) * channels, 0.f);
    // Only the n valid lanes are stored: a full vector at the end of channel c's plane would
    // overwrite the start of channel c + 1's, written already.
    for (int c = 0; c < channels; ++c) {
      Lanes v;
      for (int q = 0; q < kLanes; ++q) v[q] = block[static_cast<size_t>(q) * channels + c];
      if (n == kLanes)
        std::memcpy(region + static_cast<size_t>(c) * count + p0, &v, sizeof v);  // one vector store
      else
        std::memcpy(region + static_cast<size_t>(c) * count + p0, &v, sizeof(float) * n);
    }
  }
}

// Depthwise 3x3 (bias) of a planar region `in` (rows x cols, origin one pixel further out than
// `out`'s) into out (rows-2 x cols-2), times mask (1 inside the image, 0 outside). Each row is
// computed in whole vectors of kPad lanes: the extra lanes read and write into the next row,
// which is computed afterwards, or into the buffers' padding (kPad floats at the end of `in`,
// `mask` and `out`), so no scalar remainder loop is needed.
constexpr int kPad = 16;

inline void convolveRegion(const float* in, int rows, int cols, int channels, const float* weight,
                           const float* bias, const float* mask, float* out) {
  const int orows = rows - 2, ocols = cols - 2;
  for (int c = 0; c < channels; ++c) {
    const float* src = in + static_cast<size_t>(c) * rows * cols;
    const float* k = weight + c * 9;
    float* dst = out + static_cast<size_t>(c) * orows * ocols;
    const Lanes bias16 = Lanes{} + bias[c];
    for (int i = 0; i < orows; ++i) {
      float* o = dst + static_cast<size_t>(i) * ocols;
      const float* m = mask + static_cast<size_t>(i) * ocols;
      const float* r0 = src + static_cast<size_t>(i) * cols;
      const float* r1 = r0 + cols;
      const float* r2 = r1 + cols;
      for (int j = 0; j < ocols; j += kPad) {
        Lanes acc = bias16 + k[0] * loadLanes(r0 + j) + k[1] * loadLanes(r0 + j + 1) +
                    k[2] * loadLanes(r0 + j + 2) + k[3] * loadLanes(r1 + j) +
                    k[4] * loadLanes(r1 + j + 1) + k[5] * loadLanes(r1 + j + 2) +
                    k[6] * loadLanes(r2 + j) + k[7] * loadLanes(r2 + j + 1) + k[8] * loadLanes(r2 + j + 2);
        acc *= loadLanes(m + j);
        std::memcpy(o + j, &acc, sizeof acc);
      }
    }
  }
}

// Scores, softmax and weighted values for one block of kLanes pixels of output row i. The
// window width is a template parameter for the common sizes, so that the K independent score
// accumulators of a window row live in registers (with a runtime K they would be memory).
struct Block {
  const float* q;   // Q[0][i][j0]; channel stride qStride
  const float* kf;  // Kf[0][i][j0]; channel stride kn, row stride kw
  const float* v;   // V[0][i][j0]
  const float* u;   // U[0][i + 1][j0 + 1]; channel stride un
  size_t qStride, kn, un;
  int kw, channels, valid;
  float* out;       // out[0][y][x0]; channel stride plane
  size_t plane;
};

template <int KS>
inline void attendBlock(const Block& b, int window, float* score) {
  const int K = KS > 0 ? KS : window;
  constexpr int kMaxAcc = KS > 0 ? KS : 8;
  // scores[oy * K + ox] = sum_c Q[c] * Kf[c][oy][ox]; ox in chunks of kMaxAcc accumulators
  for (int oy = 0; oy < K; ++oy) {
    for (int ox0 = 0; ox0 < K; ox0 += kMaxAcc) {
      const int m = K - ox0 < kMaxAcc ? K - ox0 : kMaxAcc;
      Lanes acc[kMaxAcc] = {};
      const float* q = b.q;
      const float* kr = b.kf + static_cast<size_t>(oy) * b.kw + ox0;
      for (int c = 0; c < b.channels; ++c, q += b.qStride, kr += b.kn) {
        const Lanes qc = loadLanes(q);
        for (int x = 0; x < (KS > 0 ? KS : m); ++x) acc[x] += qc * loadLanes(kr + x);
      }
      for (int x = 0; x < m; ++x) std::memcpy(score + static_cast<size_t>(oy * K + ox0 + x) * kLanes, &acc[x], sizeof(Lanes));
    }
  }
  // softmax over the window, per pixel, on all lanes at once
  const int K2 = K * K;
  Lanes peak = loadLanes(score);
  for (int o = 1; o < K2; ++o) {
    const Lanes x = loadLanes(score + o * kLanes);
    peak = x > peak ? x : peak;
  }
  Lanes total = {};
  for (int o = 0; o < K2; ++o) {
    const Lanes e = expNonPositive(loadLanes(score + o * kLanes) - peak);
    std::memcpy(score + o * kLanes, &e, sizeof e);
    total += e;
  }
  const Lanes inv = 1.f / total;
  for (int o = 0; o < K2; ++o) {
    const Lanes a = loadLanes(score + o * kLanes) * inv;
    std::memcpy(score + o * kLanes, &a, sizeof a);
  }
  // out[c] = U[c] + sum_o a[o] * V[c][oy][ox], four independent accumulators
  for (int c = 0; c < b.channels; ++c) {
    const float* vc = b.v + c * b.kn;
    Lanes acc0 = loadLanes(b.u + c * b.un), acc1 = {}, acc2 = {}, acc3 = {};
    const float* a = score;
    for (int oy = 0; oy < K; ++oy) {
      const float* vr = vc + static_cast<size_t>(oy) * b.kw;
      int ox = 0;
      for (; ox + 4 <= K; ox += 4, a += 4 * kLanes) {
        acc0 += loadLanes(a) * loadLanes(vr + ox);
        acc1 += loadLanes(a + kLanes) * loadLanes(vr + ox + 1);
        acc2 += loadLanes(a + 2 * kLanes) * loadLanes(vr + ox + 2);
        acc3 += loadLanes(a + 3 * kLanes) * loadLanes(vr + ox + 3);
      }
      for (; ox < K; ++ox, a += kLanes) acc1 += loadLanes(a) * loadLanes(vr + ox);
    }
    const Lanes sum = (acc0 + acc1) + (acc2 + acc3);
    if (b.valid == kLanes) {
      std::memcpy(b.out + c * b.plane, &sum, sizeof sum);  // one vector store
    } else {
      float lanes[kLanes];
      std::memcpy(lanes, &sum, sizeof sum);
      std::copy(lanes, lanes + b.valid, b.out + c * b.plane);
    }
  }
}

ARSEG_HOT void processTile(const Kernel& k, int ty0, int tx0, int th, int tw, Scratch& sc,
                           float* out) {
  const CreffShape& s = k.s;
  const CreffWeights& wt = k.w;
  const int C = s.channels, H = s.height, W = s.width, R = wt.window / 2, K = wt.window;
  const size_t plane = s.plane();
  auto inside = [&](int y, int x) { return y >= 0 && y < H && x >= 0 && x < W; };

  // U over the tile plus a 1-pixel halo (for the q convolution), zero outside the image.
  const int uh = th + 2, uw = tw + 2, un = uh * uw;
  const float scaleY = alignCornersScale(s.lrHeight, H), scaleX = alignCornersScale(s.lrWidth, W);
  sc.taps.resize(std::max<size_t>(sc.taps.size(), static_cast<size_t>(th + 2 * R + 2) * (tw + 2 * R + 2)));
  sc.inside.resize(sc.taps.size());
  for (int i = 0; i < uh; ++i)
    for (int j = 0; j < uw; ++j) {
      const int y = ty0 - 1 + i, x = tx0 - 1 + j, p = i * uw + j;
      sc.inside[p] = inside(y, x);
      if (sc.inside[p]) sc.taps[p] = bilinearClamped(x * scaleX, y * scaleY, s.lrHeight, s.lrWidth);
    }
  // Scratch regions are padded by kLanes floats: the last block of a row reads (and ignores)
  // up to kLanes - 1 lanes past the row.
  sc.u.resize(static_cast<size_t>(C) * un + kLanes + kPad + 2);
  sc.vec.resize(static_cast<size_t>(kLanes) * C);
  gatherPlanar(k.lr, C, sc.taps.data(), sc.inside.data(), un, sc.u.data(), sc.vec.data());

  // Q over the tile (U is zero outside the image, so every pixel keeps its value).
  sc.q.resize(static_cast<size_t>(C) * th * tw + kLanes + kPad);
  sc.ones.assign(static_cast<size_t>(th) * tw + kPad, 1.f);
  convolveRegion(sc.u.data(), uh, uw, C, wt.qWeight.data(), wt.qBias.data(), sc.ones.data(), sc.q.data());
  // The U positions' inside flags are done with: the array now flags the warp's positions.
  std::vector<uint8_t>& warpInside = sc.inside;

  // Kf and V over the tile plus a K/2 halo, zero outside the image.
  const int kh = th + 2 * R, kw = tw + 2 * R, kn = kh * kw;
  sc.kf.resize(static_cast<size_t>(C) * kn + kLanes + kPad);
  sc.v.resize(sc.kf.size());
  auto warpTaps = [&](int y, int x) {
    const size_t p = static_cast<size_t>(y) * W + x;
    return bilinearZero(warpSource(x, k.motion[p], W, k.official),
                        warpSource(y, k.motion[plane + p], H, k.official), H, W);
  };
  std::vector<float>& mask = sc.mask;
  mask.assign(static_cast<size_t>(kn) + kPad, 0.f);
  for (int i = 0; i < kh; ++i)
    for (int j = 0; j < kw; ++j) mask[i * kw + j] = inside(ty0 - R + i, tx0 - R + j);
  if (k.key.mode == CreffMode::Exact) {
    // The warped keyframe over one more pixel of halo (for the k and v convolutions).
    const int fh = kh + 2, fwid = kw + 2, fn = fh * fwid;
    for (int i = 0; i < fh; ++i)
      for (int j = 0; j < fwid; ++j) {
        const int y = ty0 - R - 1 + i, x = tx0 - R - 1 + j, p = i * fwid + j;
        warpInside[p] = inside(y, x);
        if (warpInside[p]) sc.taps[p] = warpTaps(y, x);
      }
    sc.fw.resize(static_cast<size_t>(C) * fn + kPad + 2);
    gatherPlanar(k.key.feature.data(), C, sc.taps.data(), warpInside.data(), fn, sc.fw.data(), sc.vec.data());
    convolveRegion(sc.fw.data(), fh, fwid, C, wt.kWeight.data(), wt.kBias.data(), mask.data(), sc.kf.data());
    convolveRegion(sc.fw.data(), fh, fwid, C, wt.vWeight.data(), wt.vBias.data(), mask.data(), sc.v.data());
  } else {  // KeyframeConv: warp the keyframe's precomputed k and v convolutions
    for (int p = 0; p < kn; ++p) {
      warpInside[p] = mask[p] != 0.f;
      if (mask[p]) sc.taps[p] = warpTaps(ty0 - R + p / kw, tx0 - R + p % kw);
    }
    gatherPlanar(k.key.keyConv.data(), C, sc.taps.data(), warpInside.data(), kn, sc.kf.data(), sc.vec.data());
    gatherPlanar(k.key.valueConv.data(), C, sc.taps.data(), warpInside.data(), kn, sc.v.data(), sc.vec.data());
  }

  // Attention, one output row at a time, in blocks of kLanes pixels along the row.
  sc.score.resize(static_cast<size_t>(K) * K * kLanes);
  for (int i = 0; i < th; ++i) {
    for (int j0 = 0; j0 < tw; j0 += kLanes) {
      const Block b{sc.q.data() + static_cast<size_t>(i) * tw + j0,
                    sc.kf.data() + static_cast<size_t>(i) * kw + j0,
                    sc.v.data() + static_cast<size_t>(i) * kw + j0,
                    sc.u.data() + static_cast<size_t>(i + 1) * uw + 1 + j0,
                    static_cast<size_t>(th) * tw, static_cast<size_t>(kn), static_cast<size_t>(un),
                    kw, C, std::min(kLanes, tw - j0),
                    out + static_cast<size_t>(ty0 + i) * W + tx0 + j0, plane};
      switch (K) {
        case 3: attendBlock<3>(b, K, sc.score.data()); break;
        case 5: attendBlock<5>(b, K, sc.score.data()); break;
        case 7: attendBlock<7>(b, K, sc.score.data()); break;
        case 9: attendBlock<9>(b, K, sc.score.data()); break;
        default: attendBlock<0>(b, K, sc.score.data()); break;
      }
    }
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
  if (mode == CreffMode::Exact) {
    p.feature.resize(n);
    chwToHwc(key, w.channels, height, width, p.feature.data(), threads);
  } else {
    std::vector<float> conv(n);
    p.keyConv.resize(n);
    p.valueConv.resize(n);
    depthwisePlanar(key, w.channels, height, width, w.kWeight, w.kBias, conv.data(), threads);
    chwToHwc(conv.data(), w.channels, height, width, p.keyConv.data(), threads);
    depthwisePlanar(key, w.channels, height, width, w.vWeight, w.vBias, conv.data(), threads);
    chwToHwc(conv.data(), w.channels, height, width, p.valueConv.data(), threads);
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
  // The channel-last copy of the LR feature is kept per calling thread and reused from call to
  // call: allocating it anew each frame cost ~10% of the kernel in page faults at CamVid size.
  static thread_local std::vector<float> lrHwc;
  lrHwc.resize(static_cast<size_t>(s.channels) * s.lrPlane());
  chwToHwc(lr, s.channels, s.lrHeight, s.lrWidth, lrHwc.data(), threads);
  const Kernel kernel{w, s, lrHwc.data(), key, motion, sampling == WarpSampling::Official};
  const int tilesY = (s.height + kTileH - 1) / kTileH, tilesX = (s.width + kTileW - 1) / kTileW;
  std::vector<Scratch> scratch(std::min(threads, tilesY * tilesX));
  parallelFor(tilesY * tilesX, threads, [&](int tile, int thread) {
    const int ty0 = (tile / tilesX) * kTileH, tx0 = (tile % tilesX) * kTileW;
    processTile(kernel, ty0, tx0, std::min(kTileH, s.height - ty0), std::min(kTileW, s.width - tx0),
                scratch[thread], out);
  });
}

}  // namespace arseg
