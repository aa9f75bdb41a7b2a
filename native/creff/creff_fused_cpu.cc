#include "creff_fused_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../common/coded_error.h"
#include "../common/parallel_for.h"
#include "../postprocess/pointwise_head.h"
#include "sampling.h"

// The strip function is compiled for AVX-512, AVX2 + FMA (arch=haswell) and baseline x86-64; the
// loader picks the best the CPU supports (feature-based, so it also works under VMs that hide
// the CPU model). Everything it calls is forced inline: a helper compiled on its own would be
// compiled for the baseline only.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(ARSEG_NO_CLONES)
#define ARSEG_HOT __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define ARSEG_HOT
#endif

namespace arseg {

namespace {

constexpr int kStripW = 64;     // output columns per strip
constexpr int kSegmentH = 180;  // rows per work unit (each restarts its rings: K + 2 rows)

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
  const float* lr;     // C x h x w, as given
  const float* lrHwc;  // h x w x C, only where U cannot be made separably (see UColumns)
  const PreparedKeyframe& key;
  const float* motion;
  bool official;
  const CreffHead* head;  // null: write the fused feature
};

constexpr int kLanes = 16;
constexpr int kMaxWindow = 32;  // row pointers of a block's window (validateCreff: K <= 31)
#ifndef PFR
#define PFR 1
#endif  // the attention works on 16 pixels of a row at a time

// 16 floats as one value (GCC/Clang vector extension): one AVX-512 register, two AVX2 or four
// SSE registers. (On AVX2 GCC 12 keeps part of a window's accumulators in memory; AVX-512 is
// the target this kernel is tuned for, see common/simd.h for the per-width approach.)
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

__attribute__((always_inline)) inline Lanes loadLanes(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

typedef int32_t IntLanes __attribute__((vector_size(kLanes * sizeof(int32_t))));

typedef int32_t ShuffleMask __attribute__((vector_size(kLanes * sizeof(int32_t))));

// Lanes S .. S + 15 of the 32 floats in (a, b): a row shifted by S pixels, made from two aligned
// loads by a register shuffle. Loading it unaligned instead splits 15 of 16 loads across two
// cache lines, which halves the loads' throughput and limited the attention.
template <int S>
__attribute__((always_inline)) inline Lanes shifted(Lanes a, Lanes b) {
  if constexpr (S == 0) {
    return a;
  } else {
    return __builtin_shuffle(a, b, ShuffleMask{S, S + 1, S + 2, S + 3, S + 4, S + 5, S + 6, S + 7, S + 8, S + 9,
                                               S + 10, S + 11, S + 12, S + 13, S + 14, S + 15});
  }
}



// exp(x) for x <= 0 (softmax arguments after subtracting the maximum), on all lanes at once:
// x = n ln2 + r with |r| <= ln2 / 2, e^r by Cephes' expf polynomial (relative error ~1e-7),
// 2^n built in the exponent bits. Below -87 the result is 0, as expf's underflow.
__attribute__((always_inline)) inline Lanes expNonPositive(Lanes x) {
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
__attribute__((always_inline)) inline void gatherPlanar(const float* src, int channels, const BilinearTaps* taps,
                         const uint8_t* inside, int count, float* region, size_t stride, float* block) {
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
        std::memcpy(region + c * stride + p0, &v, sizeof v);  // one vector store
      else
        std::memcpy(region + c * stride + p0, &v, sizeof(float) * n);
    }
  }
}

// Rows are padded by kPad floats so that a row's last vector may run past its end.
constexpr int kPad = 16;


// acc[x] += w(x) * shifted<x>(a, b) for x in [0, N): the window row's K products of one vector.
template <int N, typename Weight, int X = 0>
__attribute__((always_inline)) inline void accumulateShifts(Lanes* acc, Lanes a, Lanes b, const Weight& w) {
  if constexpr (X < N) {
    acc[X] += w(X) * shifted<X>(a, b);
    accumulateShifts<N, Weight, X + 1>(acc, a, b, w);
  }
}

// Scores, softmax and weighted values for one block of kLanes pixels of output row i. The
// window width is a template parameter for the common sizes, so that the K independent score
// accumulators of a window row live in registers (with a runtime K they would be memory).
struct Block {
  const float* q;   // Q[0][y][j0]; channel stride qStride
  const float* const* kf;  // Kf rows y - R .. y + R, at column j0; channel stride kn
  const float* const* v;   // V rows, likewise
  const float* u;   // U[0][y][j0 + 1]; channel stride un
  size_t qStride, kn, un;
  int channels, valid;
  float* out;       // out[0][y][x0]; channel stride plane
  size_t plane;
};

template <int KS>
__attribute__((always_inline)) inline void attendBlock(const Block& b, int window, float* score) {
  const int K = KS > 0 ? KS : window;
  constexpr int kMaxAcc = KS > 0 ? KS : 8;
  // scores[oy * K + ox] = sum_c Q[c] * Kf[c][oy][ox]; ox in chunks of kMaxAcc accumulators
  for (int oy = 0; oy < K; ++oy) {
    for (int ox0 = 0; ox0 < K; ox0 += kMaxAcc) {
      const int m = K - ox0 < kMaxAcc ? K - ox0 : kMaxAcc;
      Lanes acc[kMaxAcc] = {};
      const float* q = b.q;
      const float* kr = b.kf[oy] + ox0;
      if constexpr (KS > 0 && KS <= kLanes + 1) {
        // kr is 64-byte aligned (the rings' rows are), so both loads are aligned.
        for (int c = 0; c < b.channels; ++c, q += b.qStride, kr += b.kn) {
          const Lanes qc = loadLanes(q);
          accumulateShifts<KS>(acc, loadLanes(kr), loadLanes(kr + kLanes), [&](int) __attribute__((always_inline)) { return qc; });
        }
      } else {
        for (int c = 0; c < b.channels; ++c, q += b.qStride, kr += b.kn) {
          const Lanes qc = loadLanes(q);
          for (int x = 0; x < (KS > 0 ? KS : m); ++x) acc[x] += qc * loadLanes(kr + x);
        }
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
  // out[c] = U[c] + sum_o a[o] * V[c][oy][ox]
  if constexpr (KS > 0 && KS <= kLanes + 1) {
    // kVChunk channels at a time, the window row's K weights in registers: two aligned loads
    // and K shuffles per K multiply-adds.
    constexpr int kVChunk = 8;
    for (int c0 = 0; c0 < b.channels; c0 += kVChunk) {
      const int n = b.channels - c0 < kVChunk ? b.channels - c0 : kVChunk;
      Lanes acc[kVChunk];
      for (int t = 0; t < kVChunk; ++t) acc[t] = t < n ? loadLanes(b.u + (c0 + t) * b.un) : Lanes{};
      for (int oy = 0; oy < K; ++oy) {
        Lanes w[KS];
        for (int x = 0; x < KS; ++x) w[x] = loadLanes(score + (oy * K + x) * kLanes);
        const float* vr = b.v[oy] + c0 * b.kn;
        for (int t = 0; t < n; ++t, vr += b.kn) {
          Lanes part[KS] = {};
          accumulateShifts<KS>(part, loadLanes(vr), loadLanes(vr + kLanes), [&](int x) __attribute__((always_inline)) { return w[x]; });
          Lanes sum = part[0];
          for (int x = 1; x < KS; ++x) sum += part[x];
          acc[t] += sum;
        }
      }
      for (int t = 0; t < n; ++t) {
        if (b.valid == kLanes) {
          std::memcpy(b.out + (c0 + t) * b.plane, &acc[t], sizeof(Lanes));  // one vector store
        } else {
          float lanes[kLanes];
          std::memcpy(lanes, &acc[t], sizeof(Lanes));
          std::copy(lanes, lanes + b.valid, b.out + (c0 + t) * b.plane);
        }
      }
    }
    return;
  }
  for (int c = 0; c < b.channels; ++c) {
    const size_t vc = c * b.kn;
    Lanes acc0 = loadLanes(b.u + c * b.un), acc1 = {}, acc2 = {}, acc3 = {};
    const float* a = score;
    for (int oy = 0; oy < K; ++oy) {
      const float* vr = b.v[oy] + vc;
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

// Rows of a C-channel strip, each stored planar (channel stride `stride`, the strip's columns
// padded by kPad so whole vectors may run past the end), kept in a ring of `slots` rows indexed
// by image row (negative rows included).
struct RowRing {
  std::vector<float> data;
  int slots = 1;
  size_t stride = 0, slotSize = 0;
  float* base = nullptr;
  void reset(int ringSlots, int channels, int cols) {
    slots = ringSlots;
    // Rows start on 64-byte boundaries (channel stride a multiple of kLanes floats, base
    // aligned), so a block's two loads of a row are aligned.
    stride = (static_cast<size_t>(cols + kPad + kLanes) + kLanes - 1) / kLanes * kLanes;
    slotSize = stride * channels;
    data.resize(slotSize * slots + kPad + kLanes);
    base = data.data();
    while (reinterpret_cast<uintptr_t>(base) % 64 != 0) ++base;
  }
  float* row(int y) { return base + static_cast<size_t>(((y % slots) + slots) % slots) * slotSize; }
};

// U's columns in blocks of kLanes: the LR columns each lane interpolates, relative to the
// block's first, with its weight; lanes outside the image are masked to 0. Bilinear upsampling
// is separable, so a row of U is made per channel from one vertically interpolated LR row
// (plain vector arithmetic) and a shuffle per block, with no per-pixel taps and no transposes.
struct UColumns {
  // kLanes entries per block (plain arrays: std::vector does not honour the vector types'
  // 64-byte alignment on every target, so these are read with unaligned loads)
  std::vector<int32_t> left, right;
  std::vector<float> weight, mask;
  std::vector<int> base;  // first LR column of each block, relative to `first`
  int first = 0, span = 0;
  bool separable = false;  // false when a block spans more than 2 x kLanes LR columns
};

struct Scratch {
  UColumns ucols;
  std::vector<float> lrRow;  // one channel's vertically interpolated LR row
  std::vector<BilinearTaps> taps;
  std::vector<uint8_t> inside;
  RowRing u, fw, kf, v, q;
  std::vector<float> score, vec;
  std::vector<float> block, logits;  // with a head: one block's fused feature and its logits
  std::vector<float> ones;  // mask of the Q convolution (every output pixel is inside)
  std::vector<float> mask;  // 1 where a Kf/V column is inside the image, else 0
};

// Depthwise 3x3 (bias) of three consecutive planar rows (columns one pixel further out than
// out's) into one row of `cols` columns, times mask. Whole vectors of kPad lanes: the extra
// lanes read and write the rows' padding.
__attribute__((always_inline)) inline void convolveRow(const float* r0, const float* r1, const float* r2, size_t inStride,
                        int cols, int channels, const float* weight, const float* bias,
                        const float* mask, float* out, size_t outStride) {
  for (int c = 0; c < channels; ++c) {
    const float* k = weight + c * 9;
    const float* a = r0 + c * inStride;
    const float* b = r1 + c * inStride;
    const float* d = r2 + c * inStride;
    float* o = out + c * outStride;
    const Lanes bias16 = Lanes{} + bias[c];
    for (int j = 0; j < cols; j += kPad) {
      // Rows are 64-byte aligned: two aligned loads and two shuffles per input row.
      const Lanes a0 = loadLanes(a + j), a1 = loadLanes(a + j + kLanes);
      const Lanes b0 = loadLanes(b + j), b1 = loadLanes(b + j + kLanes);
      const Lanes d0 = loadLanes(d + j), d1 = loadLanes(d + j + kLanes);
      Lanes acc = bias16 + k[0] * a0 + k[1] * shifted<1>(a0, a1) + k[2] * shifted<2>(a0, a1) +
                  k[3] * b0 + k[4] * shifted<1>(b0, b1) + k[5] * shifted<2>(b0, b1) +
                  k[6] * d0 + k[7] * shifted<1>(d0, d1) + k[8] * shifted<2>(d0, d1);
      acc *= loadLanes(mask + j);
      std::memcpy(o + j, &acc, sizeof acc);
    }
  }
}

__attribute__((always_inline)) inline void zeroRow(float* row, size_t stride, int channels) { std::fill(row, row + stride * channels, 0.f); }

// One strip: output columns [x0, x0 + sw), rows [y0, y1), computed top to bottom. Each row of
// U (1-pixel halo), the warped keyframe (K/2 + 1), Kf and V (K/2) is made once for the strip
// and kept in a ring of rows, so only the columns' halo is computed twice (square tiles
// recomputed ~60% more positions in the warp and the convolutions), and the working set (~0.4
// MB at C = 64) stays in L2.
ARSEG_HOT void processStrip(const Kernel& k, int x0, int sw, int y0, int y1, Scratch& sc, float* out) {
  const CreffShape& s = k.s;
  const CreffWeights& wt = k.w;
  const int C = s.channels, H = s.height, W = s.width, R = wt.window / 2, K = wt.window;
  const size_t plane = s.plane();
  const int uw = sw + 2, kw = sw + 2 * R, fwid = kw + 2;
  const float scaleY = alignCornersScale(s.lrHeight, H), scaleX = alignCornersScale(s.lrWidth, W);
  const bool exact = k.key.mode == CreffMode::Exact;
  sc.u.reset(3, C, uw);
  sc.fw.reset(exact ? 3 : 1, C, fwid);
  sc.kf.reset(K, C, kw);
  sc.v.reset(K, C, kw);
  sc.q.reset(1, C, sw);
  const size_t qStride = sc.q.stride;
  sc.taps.resize(fwid);
  sc.inside.resize(fwid);
  sc.vec.resize(static_cast<size_t>(kLanes) * C);
  sc.ones.assign(sw + kPad + kLanes, 1.f);
  sc.mask.assign(kw + kPad + kLanes, 0.f);
  for (int j = 0; j < kw; ++j) sc.mask[j] = (x0 - R + j >= 0 && x0 - R + j < W) ? 1.f : 0.f;
  sc.score.resize(static_cast<size_t>(K) * K * kLanes);
  UColumns& uc = sc.ucols;
  {
    const int blocks = (uw + kLanes - 1) / kLanes;
    uc.left.assign(blocks * kLanes, 0);
    uc.right.assign(blocks * kLanes, 0);
    uc.weight.assign(blocks * kLanes, 0.f);
    uc.mask.assign(blocks * kLanes, 0.f);
    uc.base.assign(blocks, 0);
    uc.separable = true;
    int lo = s.lrWidth, hi = 0;
    for (int bl = 0; bl < blocks; ++bl) {
      int l0[kLanes], l1[kLanes];
      int base = -1;
      for (int l = 0; l < kLanes; ++l) {
        const int x = x0 - 1 + bl * kLanes + l;
        const bool in = bl * kLanes + l < uw && x >= 0 && x < W;
        const float sx = std::min(std::max(x * scaleX, 0.f), static_cast<float>(s.lrWidth - 1));
        l0[l] = static_cast<int>(sx);
        l1[l] = std::min(l0[l] + 1, s.lrWidth - 1);
        uc.weight[bl * kLanes + l] = sx - l0[l];
        uc.mask[bl * kLanes + l] = in ? 1.f : 0.f;
        if (in && base < 0) base = l0[l];
      }
      if (base < 0) base = 0;
      for (int l = 0; l < kLanes; ++l) {
        if (uc.mask[bl * kLanes + l] == 0.f) l0[l] = l1[l] = base;
        if (l1[l] - base >= 2 * kLanes || l0[l] < base) uc.separable = false;
        uc.left[bl * kLanes + l] = l0[l] - base;
        uc.right[bl * kLanes + l] = l1[l] - base;
      }
      uc.base[bl] = base;
      lo = std::min(lo, base);
      hi = std::max(hi, base + 2 * kLanes);
    }
    uc.first = lo;
    uc.span = std::max(0, hi - lo);
    for (int& b : uc.base) b -= lo;
    sc.lrRow.assign(static_cast<size_t>(uc.span) + kLanes, 0.f);
  }

  auto gatherU = [&](int y) __attribute__((always_inline)) {
    float* row = sc.u.row(y);
    if (y < 0 || y >= H) return zeroRow(row, sc.u.stride, C);
    if (!uc.separable) {
      for (int j = 0; j < uw; ++j) {
        const int x = x0 - 1 + j;
        sc.inside[j] = x >= 0 && x < W;
        if (sc.inside[j]) sc.taps[j] = bilinearClamped(x * scaleX, y * scaleY, s.lrHeight, s.lrWidth);
      }
      gatherPlanar(k.lrHwc, C, sc.taps.data(), sc.inside.data(), uw, row, sc.u.stride, sc.vec.data());
      return;
    }
    const float sy = std::min(std::max(y * scaleY, 0.f), static_cast<float>(s.lrHeight - 1));
    const int y0l = static_cast<int>(sy), y1l = std::min(y0l + 1, s.lrHeight - 1);
    const float ay = sy - y0l;
    const int n = std::min(uc.span, s.lrWidth - uc.first);
    const size_t lrPlane = s.lrPlane();
    float* tmp = sc.lrRow.data();
    const int blocks = static_cast<int>(uc.base.size());
    for (int c = 0; c < C; ++c) {
      const float* r0 = k.lr + c * lrPlane + static_cast<size_t>(y0l) * s.lrWidth + uc.first;
      const float* r1 = k.lr + c * lrPlane + static_cast<size_t>(y1l) * s.lrWidth + uc.first;
      // Prefetch the channel's next LR row: the C planes' rows are C streams, too many for the
      // hardware prefetchers.
      const float* ahead = r1 + static_cast<size_t>(s.lrWidth);
      if (y1l + 1 < s.lrHeight)
        for (int i = 0; i < n; i += kLanes) __builtin_prefetch(ahead + i);
#pragma omp simd
      for (int i = 0; i < n; ++i) tmp[i] = (1.f - ay) * r0[i] + ay * r1[i];
      float* out = row + c * sc.u.stride;
      for (int bl = 0; bl < blocks; ++bl) {
        const Lanes t0 = loadLanes(tmp + uc.base[bl]), t1 = loadLanes(tmp + uc.base[bl] + kLanes);
        IntLanes li, ri;
        std::memcpy(&li, uc.left.data() + bl * kLanes, sizeof li);
        std::memcpy(&ri, uc.right.data() + bl * kLanes, sizeof ri);
        const Lanes left = __builtin_shuffle(t0, t1, li);
        const Lanes right = __builtin_shuffle(t0, t1, ri);
        const Lanes w = loadLanes(uc.weight.data() + bl * kLanes);
        const Lanes v = ((1.f - w) * left + w * right) * loadLanes(uc.mask.data() + bl * kLanes);
        std::memcpy(out + bl * kLanes, &v, sizeof v);
      }
    }
  };
  // The warp's taps for columns starting at image column xs.
  auto warpTaps = [&](int y, int xs, int count) __attribute__((always_inline)) {
    for (int j = 0; j < count; ++j) {
      const int x = xs + j;
      sc.inside[j] = x >= 0 && x < W;
      if (!sc.inside[j]) continue;
      const size_t p = static_cast<size_t>(y) * W + x;
      sc.taps[j] = bilinearZero(warpSource(x, k.motion[p], W, k.official),
                                warpSource(y, k.motion[plane + p], H, k.official), H, W);
    }
  };
  auto gatherFw = [&](int y) __attribute__((always_inline)) {
    float* row = sc.fw.row(y);
    if (y < 0 || y >= H) return zeroRow(row, sc.fw.stride, C);
    warpTaps(y, x0 - R - 1, fwid);
    gatherPlanar(k.key.feature.data(), C, sc.taps.data(), sc.inside.data(), fwid, row, sc.fw.stride, sc.vec.data());
  };
  auto makeKfV = [&](int y) __attribute__((always_inline)) {
    float* kfRow = sc.kf.row(y);
    float* vRow = sc.v.row(y);
    if (y < 0 || y >= H) {
      zeroRow(kfRow, sc.kf.stride, C);
      zeroRow(vRow, sc.v.stride, C);
      return;
    }
    if (exact) {
      const float* r0 = sc.fw.row(y - 1);
      const float* r1 = sc.fw.row(y);
      const float* r2 = sc.fw.row(y + 1);
      convolveRow(r0, r1, r2, sc.fw.stride, kw, C, wt.kWeight.data(), wt.kBias.data(), sc.mask.data(), kfRow, sc.kf.stride);
      convolveRow(r0, r1, r2, sc.fw.stride, kw, C, wt.vWeight.data(), wt.vBias.data(), sc.mask.data(), vRow, sc.v.stride);
    } else {  // KeyframeConv: warp the keyframe's precomputed k and v convolutions
      warpTaps(y, x0 - R, kw);
      gatherPlanar(k.key.keyConv.data(), C, sc.taps.data(), sc.inside.data(), kw, kfRow, sc.kf.stride, sc.vec.data());
      gatherPlanar(k.key.valueConv.data(), C, sc.taps.data(), sc.inside.data(), kw, vRow, sc.v.stride, sc.vec.data());
    }
  };

  int nextFw = y0 - R - 1, nextKf = y0 - R, nextU = y0 - 1;
  const float* kfRows[kMaxWindow];
  const float* vRows[kMaxWindow];
  const CreffHead* head = k.head;
  if (head) {
    sc.block.resize(static_cast<size_t>(C) * kLanes);
    sc.logits.resize(static_cast<size_t>(head->classes) * kLanes);
  }
  for (int y = y0; y < y1; ++y) {
    for (; nextKf <= y + R; ++nextKf) {
      if (exact)
        for (; nextFw <= nextKf + 1; ++nextFw) gatherFw(nextFw);
      makeKfV(nextKf);
    }
    for (; nextU <= y + 1; ++nextU) gatherU(nextU);
    // Q of row y (U is zero outside the image, so every pixel keeps its value).
    convolveRow(sc.u.row(y - 1), sc.u.row(y), sc.u.row(y + 1), sc.u.stride, sw, C, wt.qWeight.data(),
                wt.qBias.data(), sc.ones.data(), sc.q.row(0), qStride);
    for (int j0 = 0; j0 < sw; j0 += kLanes) {
      for (int oy = 0; oy < K; ++oy) {
        kfRows[oy] = sc.kf.row(y - R + oy) + j0;
        vRows[oy] = sc.v.row(y - R + oy) + j0;
      }
      const int valid = std::min(kLanes, sw - j0);
      float* const target = out + static_cast<size_t>(y) * W + x0 + j0;
      // With a head, the block's fused feature goes to a C x kLanes buffer in L1, and only its
      // logits are written out.
      const Block b{sc.q.row(0) + j0, kfRows, vRows, sc.u.row(y) + 1 + j0,
                    qStride, sc.kf.stride, sc.u.stride,
                    C, head ? kLanes : valid,
                    head ? sc.block.data() : target, head ? static_cast<size_t>(kLanes) : plane};
      switch (K) {
        case 3: attendBlock<3>(b, K, sc.score.data()); break;
        case 5: attendBlock<5>(b, K, sc.score.data()); break;
        case 7: attendBlock<7>(b, K, sc.score.data()); break;
        case 9: attendBlock<9>(b, K, sc.score.data()); break;
        default: attendBlock<0>(b, K, sc.score.data()); break;
      }
      if (head) {
        pointwiseHeadPixels(sc.block.data(), kLanes, C, kLanes, head->weight, head->bias, head->classes,
                            sc.logits.data(), kLanes);
        for (int c = 0; c < head->classes; ++c)
          std::memcpy(target + c * plane, sc.logits.data() + static_cast<size_t>(c) * kLanes, sizeof(float) * valid);
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
                   float* out, int threads, const CreffHead* head) {
  validateCreff(w, s);
  if (head && (head->classes < 1 || !head->weight || !head->bias))
    throw CodedError("ERR_INVALID_ARG", "the CReFF head needs weights, a bias and at least one class");
  if (key.channels != s.channels || key.height != s.height || key.width != s.width)
    throw CodedError("ERR_SHAPE", "the prepared keyframe is " + std::to_string(key.channels) + "x" +
                                      std::to_string(key.height) + "x" + std::to_string(key.width) +
                                      ", the frame needs " + std::to_string(s.channels) + "x" +
                                      std::to_string(s.height) + "x" + std::to_string(s.width));
  if (threads <= 0) threads = defaultThreads();
  // U is made separably from the planar LR feature when its columns allow (LR at most about
  // as wide as the output, the case CReFF is for); otherwise from a channel-last copy.
  static thread_local std::vector<float> lrHwc;
  const bool wideLr = s.lrWidth > s.width;
  if (wideLr) {  // kept per calling thread and reused: allocating it per call costs page faults
    lrHwc.resize(static_cast<size_t>(s.channels) * s.lrPlane());
    chwToHwc(lr, s.channels, s.lrHeight, s.lrWidth, lrHwc.data(), threads);
  }
  const Kernel kernel{w, s, lr, wideLr ? lrHwc.data() : nullptr, key, motion, sampling == WarpSampling::Official, head};
  const int strips = (s.width + kStripW - 1) / kStripW, segments = (s.height + kSegmentH - 1) / kSegmentH;
  std::vector<Scratch> scratch(std::min(threads, strips * segments));
  parallelFor(strips * segments, threads, [&](int task, int thread) {
    const int x0 = (task % strips) * kStripW, y0 = (task / strips) * kSegmentH;
    processStrip(kernel, x0, std::min(kStripW, s.width - x0), y0, std::min(s.height, y0 + kSegmentH),
                 scratch[thread], out);
  });
}

}  // namespace arseg
