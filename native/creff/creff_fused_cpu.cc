#include "creff_fused_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../common/coded_error.h"
#include "../common/parallel_for.h"
#include "../common/simd.h"
#include "../postprocess/pointwise_head.h"
#include "sampling.h"

// The strip function is a template over the vector width (common/simd.h), compiled for AVX-512
// (16 floats), AVX2 + FMA (8) and baseline x86-64 (4); simdLevel() picks one at run time. The
// blocks of pixels the attention works on are one vector wide, so every accumulator is one
// register on every target (a 16-float type on AVX2 made GCC keep them in memory: 4x slower).
// Everything the strip function calls is forced inline (ARSEG_INLINE): a helper compiled on its
// own would be compiled for the baseline only, and 64-byte vectors passed between code compiled
// for different targets do not even agree on the calling convention.

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

constexpr int kMaxWindow = 32;  // row pointers of a block's window (validateCreff: K <= 31)
// Rows are 64-byte aligned and padded so that whole vectors, and the second vector of a shifted
// pair, may run past a row's end (16 floats: one AVX-512 vector, the widest).
constexpr int kAlign = 16;
constexpr int kPad = 2 * kAlign;

// Lanes S .. S + N - 1 of the 2N floats in (a, b): a row shifted by S pixels, made from two
// aligned loads by a register shuffle. Loading it unaligned instead splits most loads across
// two cache lines, which halves the loads' throughput and limited the attention.
template <typename L, int S, int... i>
ARSEG_INLINE typename L::F shiftedBy(typename L::F a, typename L::F b, std::integer_sequence<int, i...>) {
  return __builtin_shuffle(a, b, typename L::I{(S + i)...});
}

template <typename L, int S>
ARSEG_INLINE typename L::F shifted(typename L::F a, typename L::F b) {
  if constexpr (S == 0)
    return a;
  else if constexpr (S == L::kCount)
    return b;
  else
    return shiftedBy<L, S>(a, b, std::make_integer_sequence<int, L::kCount>{});
}

// acc[x] += w(x) * shifted<x>(a, b) for x in [0, K): a window row's K products of one vector,
// into K accumulators, or alternately into acc[0] and acc[1] when `two`.
template <typename L, int K, bool Two, typename Weight, int X = 0>
ARSEG_INLINE void accumulateShifts(typename L::F* acc, typename L::F a, typename L::F b, const Weight& w) {
  if constexpr (X < K) {
    acc[Two ? (X & 1) : X] += w(X) * shifted<L, X>(a, b);
    accumulateShifts<L, K, Two, Weight, X + 1>(acc, a, b, w);
  }
}

// exp(x) for x <= 0 (softmax arguments after subtracting the maximum), on all lanes at once:
// x = n ln2 + r with |r| <= ln2 / 2, e^r by Cephes' expf polynomial (relative error ~1e-7),
// 2^n built in the exponent bits. Below -87 the result is 0, as expf's underflow.
template <typename L>
ARSEG_INLINE typename L::F expNonPositive(typename L::F x) {
  typedef typename L::F F;
  typedef typename L::I I;
  x = x < -87.f ? F{} - 87.f : x;
  // n = round(x / ln2): for x <= 0, truncating x / ln2 - 0.5 toward zero rounds half down
  const F n = __builtin_convertvector(__builtin_convertvector(x * 1.44269504088896341f - 0.5f, I), F);
  const F r = x - n * 0.693359375f + n * 2.12194440e-4f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  F scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Stores the first `valid` lanes of v at p (all of them in one vector store when valid == N):
// a whole vector at the end of a channel's row could overwrite the next channel's, written
// already.
template <typename L>
ARSEG_INLINE void storeValid(float* p, typename L::F v, int valid) {
  if (valid == L::kCount) {
    storeLanes<L>(p, v);
  } else {
    float lanes[L::kCount];
    storeLanes<L>(lanes, v);
    std::copy(lanes, lanes + valid, p);
  }
}

// Fills the planar region[c][pos] (`count` positions; channel stride `stride`) from the
// channel-last `src`: the four taps of each position are summed as contiguous channel vectors
// into a block of N positions, which is then transposed into the planes. `block` holds
// N x channels floats.
template <typename L>
ARSEG_INLINE void gatherPlanar(const float* src, int channels, const BilinearTaps* taps, const uint8_t* inside,
                               int count, float* region, size_t stride, float* block) {
  constexpr int N = L::kCount;
  for (int p0 = 0; p0 < count; p0 += N) {
    const int n = std::min(N, count - p0);
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
    for (int q = n; q < N; ++q)
      std::fill(block + static_cast<size_t>(q) * channels, block + static_cast<size_t>(q + 1) * channels, 0.f);
    for (int c = 0; c < channels; ++c) {
      typename L::F v;
      for (int q = 0; q < N; ++q) v[q] = block[static_cast<size_t>(q) * channels + c];
      storeValid<L>(region + c * stride + p0, v, n);
    }
  }
}

// Scores, softmax and weighted values for one block of N pixels of an output row. The window
// width is a template parameter for the common sizes, so that the K independent score
// accumulators of a window row live in registers (with a runtime K they would be memory).
struct Block {
  const float* q;          // Q at the block's first pixel; channel stride qStride
  const float* const* kf;  // Kf rows y - R .. y + R, at the block's column; channel stride kn
  const float* const* v;   // V rows, likewise
  const float* u;          // U at the block's pixels; channel stride un
  size_t qStride, kn, un;
  int channels, valid;
  float* out;  // the block's first pixel in output plane 0; channel stride plane
  size_t plane;
};

// softmax over the window, per pixel, on all lanes at once
template <typename L>
ARSEG_INLINE void softmaxWindow(float* score, int K2) {
  typedef typename L::F F;
  constexpr int N = L::kCount;
  F peak = loadLanes<L>(score);
  for (int o = 1; o < K2; ++o) {
    const F x = loadLanes<L>(score + o * N);
    peak = x > peak ? x : peak;
  }
  F total = {};
  for (int o = 0; o < K2; ++o) {
    const F e = expNonPositive<L>(loadLanes<L>(score + o * N) - peak);
    storeLanes<L>(score + o * N, e);
    total += e;
  }
  const F inv = 1.f / total;
  for (int o = 0; o < K2; ++o) storeLanes<L>(score + o * N, loadLanes<L>(score + o * N) * inv);
}

template <typename L, int KS>
ARSEG_INLINE void attendBlock(const Block& b, int window, float* score) {
  typedef typename L::F F;
  constexpr int N = L::kCount;
  // The shifted-pair path needs the window's K shifts within two vectors and a compile-time K.
  constexpr bool kShifts = KS > 0 && KS <= N + 1;
  const int K = KS > 0 ? KS : window;
  constexpr int kMaxAcc = KS > 0 ? KS : 8;
  // scores[oy * K + ox] = sum_c Q[c] * Kf[c][oy][ox]; ox in chunks of kMaxAcc accumulators
  for (int oy = 0; oy < K; ++oy) {
    for (int ox0 = 0; ox0 < K; ox0 += kMaxAcc) {
      const int m = K - ox0 < kMaxAcc ? K - ox0 : kMaxAcc;
      F acc[kMaxAcc] = {};
      const float* q = b.q;
      const float* kr = b.kf[oy] + ox0;
      if constexpr (kShifts) {
        // kr is aligned (the rings' rows are), so both loads are aligned.
        for (int c = 0; c < b.channels; ++c, q += b.qStride, kr += b.kn) {
          const F qc = loadLanes<L>(q);
          accumulateShifts<L, KS, false>(acc, loadLanes<L>(kr), loadLanes<L>(kr + N),
                                         [&](int) ARSEG_INLINE_LAMBDA { return qc; });
        }
      } else {
        for (int c = 0; c < b.channels; ++c, q += b.qStride, kr += b.kn) {
          const F qc = loadLanes<L>(q);
          for (int x = 0; x < (KS > 0 ? KS : m); ++x) acc[x] += qc * loadLanes<L>(kr + x);
        }
      }
      for (int x = 0; x < m; ++x) storeLanes<L>(score + static_cast<size_t>(oy * K + ox0 + x) * N, acc[x]);
    }
  }
  softmaxWindow<L>(score, K * K);
  // out[c] = U[c] + sum_o a[o] * V[c][oy][ox]
  if constexpr (kShifts) {
    // kChunk channels at a time with the window row's K weights in registers: two aligned loads
    // and K shuffles per K multiply-adds, each V row loaded once. The chunk and the two partial
    // sums per channel keep the accumulators within 16 registers on AVX2.
    constexpr int kChunk = N >= 16 ? 8 : 4;
    for (int c0 = 0; c0 < b.channels; c0 += kChunk) {
      const int n = b.channels - c0 < kChunk ? b.channels - c0 : kChunk;
      F acc[kChunk];
      for (int t = 0; t < kChunk; ++t) acc[t] = t < n ? loadLanes<L>(b.u + (c0 + t) * b.un) : F{};
      for (int oy = 0; oy < K; ++oy) {
        F w[KS];
        for (int x = 0; x < KS; ++x) w[x] = loadLanes<L>(score + (oy * K + x) * N);
        const float* vr = b.v[oy] + c0 * b.kn;
        for (int t = 0; t < n; ++t, vr += b.kn) {
          F part[2] = {acc[t], F{}};
          accumulateShifts<L, KS, true>(part, loadLanes<L>(vr), loadLanes<L>(vr + N),
                                        [&](int x) ARSEG_INLINE_LAMBDA { return w[x]; });
          acc[t] = part[0] + part[1];
        }
      }
      for (int t = 0; t < n; ++t) storeValid<L>(b.out + (c0 + t) * b.plane, acc[t], b.valid);
    }
    return;
  }
  for (int c = 0; c < b.channels; ++c) {
    const size_t vc = c * b.kn;
    F acc0 = loadLanes<L>(b.u + c * b.un), acc1 = {}, acc2 = {}, acc3 = {};
    const float* a = score;
    for (int oy = 0; oy < K; ++oy) {
      const float* vr = b.v[oy] + vc;
      int ox = 0;
      for (; ox + 4 <= K; ox += 4, a += 4 * N) {
        acc0 += loadLanes<L>(a) * loadLanes<L>(vr + ox);
        acc1 += loadLanes<L>(a + N) * loadLanes<L>(vr + ox + 1);
        acc2 += loadLanes<L>(a + 2 * N) * loadLanes<L>(vr + ox + 2);
        acc3 += loadLanes<L>(a + 3 * N) * loadLanes<L>(vr + ox + 3);
      }
      for (; ox < K; ++ox, a += N) acc1 += loadLanes<L>(a) * loadLanes<L>(vr + ox);
    }
    storeValid<L>(b.out + c * b.plane, (acc0 + acc1) + (acc2 + acc3), b.valid);
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
    // Rows start on 64-byte boundaries (channel stride a multiple of kAlign floats, base
    // aligned), so a block's two loads of a row are aligned.
    stride = (static_cast<size_t>(cols + kPad) + kAlign - 1) / kAlign * kAlign;
    slotSize = stride * channels;
    data.resize(slotSize * slots + kAlign);
    base = data.data();
    while (reinterpret_cast<uintptr_t>(base) % (kAlign * sizeof(float)) != 0) ++base;
  }
  float* row(int y) { return base + static_cast<size_t>(((y % slots) + slots) % slots) * slotSize; }
};

// U's columns in blocks of N: the LR columns each lane interpolates, relative to the block's
// first, with its weight; lanes outside the image are masked to 0. Bilinear upsampling is
// separable, so a row of U is made per channel from one vertically interpolated LR row (plain
// vector arithmetic) and a shuffle per block, with no per-pixel taps and no transposes.
struct UColumns {
  // N entries per block (plain arrays, read with unaligned loads: std::vector does not honour
  // the vector types' alignment on every target)
  std::vector<int32_t> left, right;
  std::vector<float> weight, mask;
  std::vector<int> base;  // first LR column of each block, relative to `first`
  int first = 0, span = 0;
  bool separable = false;  // false when a block spans 2N LR columns or more
};

struct Scratch {
  UColumns ucols;
  std::vector<float> lrRow;  // one channel's vertically interpolated LR row
  std::vector<BilinearTaps> taps;
  std::vector<uint8_t> inside;
  RowRing u, fw, kf, v, q;
  RowRing fused;  // with a head: one output row's fused feature, for the head
  std::vector<float> score, vec;
  std::vector<float> ones;  // mask of the Q convolution (every output pixel is inside)
  std::vector<float> mask;  // 1 where a Kf/V column is inside the image, else 0
};

// Depthwise 3x3 (bias) of three consecutive planar rows (columns one pixel further out than
// out's) into one row of `cols` columns, times mask. Whole vectors: the extra lanes read and
// write the rows' padding. The rows are aligned: two aligned loads and two shuffles per input
// row instead of three unaligned loads.
template <typename L>
ARSEG_INLINE void convolveRow(const float* r0, const float* r1, const float* r2, size_t inStride, int cols,
                              int channels, const float* weight, const float* bias, const float* mask, float* out,
                              size_t outStride) {
  typedef typename L::F F;
  constexpr int N = L::kCount;
  for (int c = 0; c < channels; ++c) {
    const float* k = weight + c * 9;
    const float* a = r0 + c * inStride;
    const float* b = r1 + c * inStride;
    const float* d = r2 + c * inStride;
    float* o = out + c * outStride;
    const F biasLanes = F{} + bias[c];
    for (int j = 0; j < cols; j += N) {
      const F a0 = loadLanes<L>(a + j), a1 = loadLanes<L>(a + j + N);
      const F b0 = loadLanes<L>(b + j), b1 = loadLanes<L>(b + j + N);
      const F d0 = loadLanes<L>(d + j), d1 = loadLanes<L>(d + j + N);
      const F acc = biasLanes + k[0] * a0 + k[1] * shifted<L, 1>(a0, a1) + k[2] * shifted<L, 2>(a0, a1) + k[3] * b0 +
                    k[4] * shifted<L, 1>(b0, b1) + k[5] * shifted<L, 2>(b0, b1) + k[6] * d0 +
                    k[7] * shifted<L, 1>(d0, d1) + k[8] * shifted<L, 2>(d0, d1);
      storeLanes<L>(o + j, acc * loadLanes<L>(mask + j));
    }
  }
}

ARSEG_INLINE void zeroRow(float* row, size_t stride, int channels) { std::fill(row, row + stride * channels, 0.f); }

// Where each lane of U's column blocks reads the LR row (see UColumns).
template <typename L>
void planUColumns(UColumns& uc, const CreffShape& s, int x0, int uw, float scaleX) {
  constexpr int N = L::kCount;
  const int blocks = (uw + N - 1) / N;
  uc.left.assign(blocks * N, 0);
  uc.right.assign(blocks * N, 0);
  uc.weight.assign(blocks * N, 0.f);
  uc.mask.assign(blocks * N, 0.f);
  uc.base.assign(blocks, 0);
  uc.separable = true;
  int lo = s.lrWidth, hi = 0;
  for (int bl = 0; bl < blocks; ++bl) {
    int l0[N], l1[N];
    int base = -1;
    for (int l = 0; l < N; ++l) {
      const int x = x0 - 1 + bl * N + l;
      const bool in = bl * N + l < uw && x >= 0 && x < s.width;
      const float sx = std::min(std::max(x * scaleX, 0.f), static_cast<float>(s.lrWidth - 1));
      l0[l] = static_cast<int>(sx);
      l1[l] = std::min(l0[l] + 1, s.lrWidth - 1);
      uc.weight[bl * N + l] = sx - l0[l];
      uc.mask[bl * N + l] = in ? 1.f : 0.f;
      if (in && base < 0) base = l0[l];
    }
    if (base < 0) base = 0;
    for (int l = 0; l < N; ++l) {
      if (uc.mask[bl * N + l] == 0.f) l0[l] = l1[l] = base;
      if (l1[l] - base >= 2 * N || l0[l] < base) uc.separable = false;
      uc.left[bl * N + l] = l0[l] - base;
      uc.right[bl * N + l] = l1[l] - base;
    }
    uc.base[bl] = base;
    lo = std::min(lo, base);
    hi = std::max(hi, base + 2 * N);
  }
  uc.first = lo;
  uc.span = std::max(0, hi - lo);
  for (int& b : uc.base) b -= lo;
}

// One strip: output columns [x0, x0 + sw), rows [y0, y1), computed top to bottom. Each row of
// U (1-pixel halo), the warped keyframe (K/2 + 1), Kf and V (K/2) is made once for the strip
// and kept in a ring of rows, so only the columns' halo is computed twice (square tiles
// recomputed ~60% more positions in the warp and the convolutions), and the working set (~0.4
// MB at C = 64) stays in L2.
template <typename L>
ARSEG_INLINE void processStripAt(const Kernel& k, int x0, int sw, int y0, int y1, Scratch& sc, float* out) {
  typedef typename L::F F;
  typedef typename L::I I;
  constexpr int N = L::kCount;
  const CreffShape& s = k.s;
  const CreffWeights& wt = k.w;
  const int C = s.channels, H = s.height, W = s.width, R = wt.window / 2, K = wt.window;
  const size_t plane = s.plane();
  const int uw = sw + 2, kw = sw + 2 * R, fwid = kw + 2;
  const float scaleY = alignCornersScale(s.lrHeight, H), scaleX = alignCornersScale(s.lrWidth, W);
  const bool exact = k.key.mode == CreffMode::Exact;
  const CreffHead* head = k.head;
  sc.u.reset(3, C, uw);
  sc.fw.reset(exact ? 3 : 1, C, fwid);
  sc.kf.reset(K, C, kw);
  sc.v.reset(K, C, kw);
  sc.q.reset(1, C, sw);
  if (head) sc.fused.reset(1, C, sw);
  const size_t qStride = sc.q.stride;
  sc.taps.resize(fwid);
  sc.inside.resize(fwid);
  sc.vec.resize(static_cast<size_t>(N) * C);
  sc.ones.assign(sw + kPad, 1.f);
  sc.mask.assign(kw + kPad, 0.f);
  for (int j = 0; j < kw; ++j) sc.mask[j] = (x0 - R + j >= 0 && x0 - R + j < W) ? 1.f : 0.f;
  sc.score.resize(static_cast<size_t>(K) * K * N);
  UColumns& uc = sc.ucols;
  planUColumns<L>(uc, s, x0, uw, scaleX);
  sc.lrRow.assign(static_cast<size_t>(uc.span) + N, 0.f);

  auto gatherU = [&](int y) ARSEG_INLINE_LAMBDA {
    float* row = sc.u.row(y);
    if (y < 0 || y >= H) return zeroRow(row, sc.u.stride, C);
    if (!uc.separable) {
      for (int j = 0; j < uw; ++j) {
        const int x = x0 - 1 + j;
        sc.inside[j] = x >= 0 && x < W;
        if (sc.inside[j]) sc.taps[j] = bilinearClamped(x * scaleX, y * scaleY, s.lrHeight, s.lrWidth);
      }
      gatherPlanar<L>(k.lrHwc, C, sc.taps.data(), sc.inside.data(), uw, row, sc.u.stride, sc.vec.data());
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
        for (int i = 0; i < n; i += 16) __builtin_prefetch(ahead + i);
#pragma omp simd
      for (int i = 0; i < n; ++i) tmp[i] = (1.f - ay) * r0[i] + ay * r1[i];
      float* dst = row + c * sc.u.stride;
      for (int bl = 0; bl < blocks; ++bl) {
        const F t0 = loadLanes<L>(tmp + uc.base[bl]), t1 = loadLanes<L>(tmp + uc.base[bl] + N);
        I li, ri;
        std::memcpy(&li, uc.left.data() + bl * N, sizeof li);
        std::memcpy(&ri, uc.right.data() + bl * N, sizeof ri);
        const F left = __builtin_shuffle(t0, t1, li);
        const F right = __builtin_shuffle(t0, t1, ri);
        const F w = loadLanes<L>(uc.weight.data() + bl * N);
        storeLanes<L>(dst + bl * N, ((1.f - w) * left + w * right) * loadLanes<L>(uc.mask.data() + bl * N));
      }
    }
  };
  // The warp's taps for columns starting at image column xs.
  auto warpTaps = [&](int y, int xs, int count) ARSEG_INLINE_LAMBDA {
    for (int j = 0; j < count; ++j) {
      const int x = xs + j;
      sc.inside[j] = x >= 0 && x < W;
      if (!sc.inside[j]) continue;
      const size_t p = static_cast<size_t>(y) * W + x;
      sc.taps[j] = bilinearZero(warpSource(x, k.motion[p], W, k.official),
                                warpSource(y, k.motion[plane + p], H, k.official), H, W);
    }
  };
  auto gatherFw = [&](int y) ARSEG_INLINE_LAMBDA {
    float* row = sc.fw.row(y);
    if (y < 0 || y >= H) return zeroRow(row, sc.fw.stride, C);
    warpTaps(y, x0 - R - 1, fwid);
    gatherPlanar<L>(k.key.feature.data(), C, sc.taps.data(), sc.inside.data(), fwid, row, sc.fw.stride, sc.vec.data());
  };
  auto makeKfV = [&](int y) ARSEG_INLINE_LAMBDA {
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
      convolveRow<L>(r0, r1, r2, sc.fw.stride, kw, C, wt.kWeight.data(), wt.kBias.data(), sc.mask.data(), kfRow,
                     sc.kf.stride);
      convolveRow<L>(r0, r1, r2, sc.fw.stride, kw, C, wt.vWeight.data(), wt.vBias.data(), sc.mask.data(), vRow,
                     sc.v.stride);
    } else {  // KeyframeConv: warp the keyframe's precomputed k and v convolutions
      warpTaps(y, x0 - R, kw);
      gatherPlanar<L>(k.key.keyConv.data(), C, sc.taps.data(), sc.inside.data(), kw, kfRow, sc.kf.stride,
                      sc.vec.data());
      gatherPlanar<L>(k.key.valueConv.data(), C, sc.taps.data(), sc.inside.data(), kw, vRow, sc.v.stride,
                      sc.vec.data());
    }
  };

  int nextFw = y0 - R - 1, nextKf = y0 - R, nextU = y0 - 1;
  const float* kfRows[kMaxWindow];
  const float* vRows[kMaxWindow];
  for (int y = y0; y < y1; ++y) {
    for (; nextKf <= y + R; ++nextKf) {
      if (exact)
        for (; nextFw <= nextKf + 1; ++nextFw) gatherFw(nextFw);
      makeKfV(nextKf);
    }
    for (; nextU <= y + 1; ++nextU) gatherU(nextU);
    // Q of row y (U is zero outside the image, so every pixel keeps its value).
    convolveRow<L>(sc.u.row(y - 1), sc.u.row(y), sc.u.row(y + 1), sc.u.stride, sw, C, wt.qWeight.data(),
                   wt.qBias.data(), sc.ones.data(), sc.q.row(0), qStride);
    // With a head, the row's fused feature goes to a C x sw buffer (in L1 at C = 64), and only
    // its logits are written out.
    float* const target = out + static_cast<size_t>(y) * W + x0;
    float* const fusedRow = head ? sc.fused.row(0) : target;
    const size_t fusedStride = head ? sc.fused.stride : plane;
    for (int j0 = 0; j0 < sw; j0 += N) {
      for (int oy = 0; oy < K; ++oy) {
        kfRows[oy] = sc.kf.row(y - R + oy) + j0;
        vRows[oy] = sc.v.row(y - R + oy) + j0;
      }
      const Block b{sc.q.row(0) + j0, kfRows,      vRows, sc.u.row(y) + 1 + j0, qStride,
                    sc.kf.stride,     sc.u.stride, C,     std::min(N, sw - j0), fusedRow + j0,
                    fusedStride};
      switch (K) {
        case 3: attendBlock<L, 3>(b, K, sc.score.data()); break;
        case 5: attendBlock<L, 5>(b, K, sc.score.data()); break;
        case 7: attendBlock<L, 7>(b, K, sc.score.data()); break;
        case 9: attendBlock<L, 9>(b, K, sc.score.data()); break;
        default: attendBlock<L, 0>(b, K, sc.score.data()); break;
      }
    }
    if (head) pointwiseHeadPixels(fusedRow, fusedStride, C, sw, head->weight, head->bias, head->classes, target, plane);
  }
}

void processStrip(const Kernel& k, int x0, int sw, int y0, int y1, Scratch& sc, float* out) {
  simdDispatch([&](auto lanes) ARSEG_INLINE_LAMBDA { processStripAt<decltype(lanes)>(k, x0, sw, y0, y1, sc, out); });
}

}  // namespace

PreparedKeyframe prepareKeyframe(const CreffWeights& w, const float* key, int height, int width, CreffMode mode,
                                 int threads) {
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

void creffFusedCpu(const CreffWeights& w, const CreffShape& s, const float* lr, const PreparedKeyframe& key,
                   const float* motion, WarpSampling sampling, float* out, int threads, const CreffHead* head) {
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
    processStrip(kernel, x0, std::min(kStripW, s.width - x0), y0, std::min(s.height, y0 + kSegmentH), scratch[thread],
                 out);
  });
}

}  // namespace arseg
