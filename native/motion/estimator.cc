#include "estimator.h"

#include <algorithm>
#include <cmath>

#include "../common/simd.h"

namespace arseg {

// --- geometry -------------------------------------------------------------------------------

int coarsestLevel(int frameWidth, int frameHeight, const EstimatorOptions& o) {
  int level = o.finestLevel;
  while (level + 1 <= o.maxLevel && std::min(frameWidth >> (level + 1), frameHeight >> (level + 1)) >= o.minCoarseSide)
    ++level;
  return level;
}

bool frameLargeEnough(int frameWidth, int frameHeight, const EstimatorOptions& o) {
  return (frameWidth >> o.finestLevel) >= kPatch && (frameHeight >> o.finestLevel) >= kPatch;
}

std::vector<int> patchOrigins(int size, int patchStride) {
  std::vector<int> out;
  for (int x = 0; x + kPatch <= size; x += patchStride) out.push_back(x);
  if (out.empty() || out.back() != size - kPatch) out.push_back(size - kPatch);
  return out;
}

void PyramidLevel::resize(int w, int h) {
  width = w;
  height = h;
  // Rows rounded up to 16 floats; 16 floats of slack so that a full-vector load that starts in
  // the last row's border stays inside the allocation.
  stride = (w + 2 * kPad + 15) / 16 * 16;
  storage.resize(static_cast<size_t>(h + 2 * kPad) * stride + 16);
}

void PyramidLevel::padBorder() {
  float* o = origin();
  for (int y = 0; y < height; ++y) {
    float* row = o + static_cast<ptrdiff_t>(y) * stride;
    std::fill(row - kPad, row, row[0]);
    std::fill(row + width, row - kPad + stride, row[width - 1]);
  }
  const float* first = o - kPad;
  const float* last = o - kPad + static_cast<ptrdiff_t>(height - 1) * stride;
  for (int y = 1; y <= kPad; ++y) {
    std::copy(first, first + stride, o - kPad - static_cast<ptrdiff_t>(y) * stride);
    std::copy(last, last + stride, o - kPad + static_cast<ptrdiff_t>(height - 1 + y) * stride);
  }
}

namespace {

// Fields of one level's patches: origins along x and y, offsets, and whether each matched.
struct PatchField {
  std::vector<int> ox, oy;
  std::vector<float> u, v;
  std::vector<uint8_t> ok;
  size_t count() const { return ox.size() * oy.size(); }
};

// --- vectorised parts (templates over the vector width) -------------------------------------

// Loads patch elements e .. e + N - 1 of an 8-wide patch whose row 0, column 0 is at `p`
// (element e is row e / 8, column e % 8; e is a multiple of N, or of 8 when N = 16).
template <typename L>
ARSEG_INLINE typename L::F loadPatchRows(const float* p, ptrdiff_t stride, int e) {
  const float* at = p + static_cast<ptrdiff_t>(e >> 3) * stride + (e & 7);
  if constexpr (L::kCount <= kPatch) {
    return loadLanes<L>(at);
  } else {
    // Two rows in one vector: the first 8 lanes of each row's 16-float load (one vshuff32x4).
    static_assert(L::kCount == 2 * kPatch, "a vector holds one or two patch rows");
    const typename L::F a = loadLanes<L>(at), b = loadLanes<L>(at + stride);
    const typename L::I pick = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    return __builtin_shuffle(a, b, pick);
  }
}

// v + v with lanes i and i ^ h swapped: after h = N/2, N/4, ..., 1 every lane holds the sum.
template <typename L, int h, size_t... i>
ARSEG_INLINE typename L::F butterfly(typename L::F v, std::index_sequence<i...>) {
  const typename L::I swap = {static_cast<int32_t>(i ^ h)...};
  return v + __builtin_shuffle(v, swap);
}

template <typename L>
ARSEG_INLINE float sumLanes(typename L::F v) {
  constexpr auto seq = std::make_index_sequence<L::kCount>{};
  if constexpr (L::kCount >= 16) v = butterfly<L, 8>(v, seq);
  if constexpr (L::kCount >= 8) v = butterfly<L, 4>(v, seq);
  v = butterfly<L, 2>(v, seq);
  v = butterfly<L, 1>(v, seq);
  return v[0];
}

template <typename L>
ARSEG_INLINE typename L::F splat(float x) {
  return typename L::F{} + x;  // a scalar operand is broadcast (one vbroadcastss)
}

// floor() without libm: the baseline x86-64 target has no rounding instruction, and a floorf
// call per sample would dominate. |x| is far below 2^31 here.
ARSEG_INLINE float floorFast(float x) {
  const float t = static_cast<float>(static_cast<int>(x));
  return t > x ? t - 1.f : t;
}

// Lanes 0, 2, 4... (odd = false) or 1, 3, 5... (odd = true) of the 2N floats a, b.
template <typename L, size_t... i>
ARSEG_INLINE typename L::F everyOther(typename L::F a, typename L::F b, bool odd, std::index_sequence<i...>) {
  const typename L::I even = {static_cast<int32_t>(2 * i)...};
  const typename L::I next = {static_cast<int32_t>(2 * i + 1)...};
  return __builtin_shuffle(a, b, odd ? next : even);
}

// Sums of horizontal pairs of the 2N floats at p: (p[0] + p[1], p[2] + p[3], ...).
template <typename L>
ARSEG_INLINE typename L::F pairSums(typename L::F a, typename L::F b) {
  constexpr auto seq = std::make_index_sequence<L::kCount>{};
  return everyOther<L>(a, b, false, seq) + everyOther<L>(a, b, true, seq);
}

template <typename L>
ARSEG_INLINE typename L::F loadBytes(const uint8_t* p) {
  typename L::B b;
  std::memcpy(&b, p, sizeof b);
  return __builtin_convertvector(b, typename L::F);
}

// One row filtered by [1 3 3 1] / 8 and decimated: out[x] = (in[2x-1] + 3 in[2x] + 3 in[2x+1] +
// in[2x+2]) / 8, in this order of operations (the reference does the same).
template <typename L>
ARSEG_INLINE void decimateRow(const float* in, float* out, int w) {
  constexpr int N = L::kCount;
  constexpr auto seq = std::make_index_sequence<N>{};
  const typename L::F three = splat<L>(3.f), eighth = splat<L>(0.125f);
  int x = 0;
  for (; x + N <= w; x += N) {
    const typename L::F a0 = loadLanes<L>(in + 2 * x - 2), a1 = loadLanes<L>(in + 2 * x - 2 + N);
    const typename L::F b0 = loadLanes<L>(in + 2 * x), b1 = loadLanes<L>(in + 2 * x + N);
    const typename L::F c0 = loadLanes<L>(in + 2 * x + 2), c1 = loadLanes<L>(in + 2 * x + 2 + N);
    const typename L::F left = everyOther<L>(a0, a1, true, seq);    // in[2x - 1]
    const typename L::F even = everyOther<L>(b0, b1, false, seq);   // in[2x]
    const typename L::F odd = everyOther<L>(b0, b1, true, seq);     // in[2x + 1]
    const typename L::F right = everyOther<L>(c0, c1, false, seq);  // in[2x + 2]
    storeLanes<L>(out + x, ((left + right) + three * (even + odd)) * eighth);
  }
  for (; x < w; ++x) out[x] = ((in[2 * x - 1] + in[2 * x + 2]) + 3.f * (in[2 * x] + in[2 * x + 1])) * 0.125f;
}

// The vertical half: rows r0 .. r3 (consecutive rows of w floats from `rows`) combined as above.
template <typename L>
ARSEG_INLINE void combineRows(const float* rows, int w, float* out) {
  constexpr int N = L::kCount;
  const float *r0 = rows, *r1 = rows + w, *r2 = rows + 2 * w, *r3 = rows + 3 * w;
  const typename L::F three = splat<L>(3.f), eighth = splat<L>(0.125f);
  int x = 0;
  for (; x + N <= w; x += N) {
    const typename L::F outer = loadLanes<L>(r0 + x) + loadLanes<L>(r3 + x);
    const typename L::F inner = loadLanes<L>(r1 + x) + loadLanes<L>(r2 + x);
    storeLanes<L>(out + x, (outer + three * inner) * eighth);
  }
  for (; x < w; ++x) out[x] = ((r0[x] + r3[x]) + 3.f * (r1[x] + r2[x])) * 0.125f;
}

// The same from two 8-bit rows (the half-resolution level straight from the luma plane).
template <typename L>
ARSEG_INLINE void boxRowBytes(const uint8_t* a, const uint8_t* b, float* out, int w) {
  constexpr int N = L::kCount;
  const typename L::F quarter = splat<L>(0.25f);
  int x = 0;
  for (; x + N <= w; x += N) {
    const typename L::F top = pairSums<L>(loadBytes<L>(a + 2 * x), loadBytes<L>(a + 2 * x + N));
    const typename L::F bottom = pairSums<L>(loadBytes<L>(b + 2 * x), loadBytes<L>(b + 2 * x + N));
    storeLanes<L>(out + x, quarter * (top + bottom));
  }
  for (; x < w; ++x)
    out[x] = 0.25f * ((float(a[2 * x]) + float(a[2 * x + 1])) + (float(b[2 * x]) + float(b[2 * x + 1])));
}

template <typename L>
ARSEG_INLINE void buildPyramidT(const uint8_t* luma, ptrdiff_t linesize, int width, int height,
                                const EstimatorOptions& o, LumaPyramid& out) {
  const int top = coarsestLevel(width, height, o);
  out.frameWidth = width;
  out.frameHeight = height;
  out.finest = o.finestLevel;
  out.levels.resize(top - o.finestLevel + 1);
  // The finest level straight from the 8-bit plane: the mean of each 2^f x 2^f block (integer
  // sums, exact, then one scaling).
  {
    PyramidLevel& lv = out.levels[0];
    const int f = o.finestLevel, n = 1 << f;
    lv.resize(width >> f, height >> f);
    const float scale = 1.f / static_cast<float>(n * n);
    for (int y = 0; y < lv.height; ++y) {
      float* dst = lv.origin() + static_cast<ptrdiff_t>(y) * lv.stride;
      const uint8_t* src = luma + static_cast<ptrdiff_t>(y) * n * linesize;
      if (n == 1) {
        for (int x = 0; x < lv.width; ++x) dst[x] = src[x];
      } else if (n == 2) {
        boxRowBytes<L>(src, src + linesize, dst, lv.width);
      } else {
        for (int x = 0; x < lv.width; ++x) {
          int s = 0;
          for (int dy = 0; dy < n; ++dy)
            for (int dx = 0; dx < n; ++dx) s += src[static_cast<ptrdiff_t>(dy) * linesize + x * n + dx];
          dst[x] = static_cast<float>(s) * scale;
        }
      }
    }
    lv.padBorder();
  }
  // Each coarser level: the [1 3 3 1] / 8 filter along both axes, then every other pixel
  // (output x covers 2x - 1 .. 2x + 2 of the level below, whose border is replicated). A plain
  // 2x2 mean aliases fine texture into false patterns that the coarse search then follows.
  std::vector<float> across;
  for (size_t k = 1; k < out.levels.size(); ++k) {
    const PyramidLevel& below = out.levels[k - 1];
    PyramidLevel& lv = out.levels[k];
    lv.resize(below.width / 2, below.height / 2);
    const int rows = 2 * lv.height + 2;  // rows -1 .. 2h of the level below
    across.resize(static_cast<size_t>(rows) * lv.width);
    for (int r = 0; r < rows; ++r)
      decimateRow<L>(below.origin() + static_cast<ptrdiff_t>(r - 1) * below.stride,
                     across.data() + static_cast<size_t>(r) * lv.width, lv.width);
    for (int y = 0; y < lv.height; ++y)
      combineRows<L>(across.data() + static_cast<size_t>(2 * y) * lv.width, lv.width,
                     lv.origin() + static_cast<ptrdiff_t>(y) * lv.stride);
    lv.padBorder();
  }
}

// Sums over one patch of the previous picture sampled bilinearly at integer position `ref`
// plus fraction (fx, fy): sum R, sum gx R, sum gy R, sum (R - T)^2. Each of the 9 rows the
// patch touches is interpolated horizontally once, then pairs of rows vertically (the same
// arithmetic as four-corner interpolation: top + fy (bottom - top), top and bottom from
// a + fx (b - a)).
template <typename L>
ARSEG_INLINE void accumulatePass(typename L::F r, int e, const float* T, const float* gx, const float* gy,
                                 typename L::F& aR, typename L::F& aX, typename L::F& aY, typename L::F& aD) {
  aR += r;
  aX += loadLanes<L>(gx + e) * r;
  aY += loadLanes<L>(gy + e) * r;
  const typename L::F diff = r - loadLanes<L>(T + e);
  aD += diff * diff;
}

template <typename L>
ARSEG_INLINE void patchPass(const float* ref, ptrdiff_t stride, float fx, float fy, const float* T, const float* gx,
                            const float* gy, float sums[4]) {
  using F = typename L::F;
  constexpr int N = L::kCount;
  const F wx = splat<L>(fx), wy = splat<L>(fy);
  F aR = splat<L>(0.f), aX = aR, aY = aR, aD = aR;
  // The horizontal interpolation of the row (two rows when N = 16) starting at `row`.
  auto across = [&](const float* row) ARSEG_INLINE_LAMBDA {
    const F a = loadPatchRows<L>(row, stride, 0), b = loadPatchRows<L>(row + 1, stride, 0);
    return a + wx * (b - a);
  };
  if constexpr (N <= kPatch) {
    // One or two vectors per row: row r's horizontal interpolation serves rows r - 1 and r.
    for (int c = 0; c < kPatch; c += N) {
      F top = across(ref + c);
      for (int r = 0; r < kPatch; ++r) {
        const F bottom = across(ref + (r + 1) * stride + c);
        accumulatePass<L>(top + wy * (bottom - top), r * kPatch + c, T, gx, gy, aR, aX, aY, aD);
        top = bottom;
      }
    }
  } else {
    // Two rows per vector: pairs (0, 1), (2, 3)... interpolated horizontally, the pairs (1, 2),
    // (3, 4)... taken from them by one lane shuffle (row 8 loaded on its own).
    const typename L::I upperThenLower = {8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
    F pair = across(ref);
    for (int k = 0; k < kPatch / 2; ++k) {
      const float* nextRow = ref + (2 * k + 2) * stride;
      // Rows 2k + 2, 2k + 3 (row 8 alone at the end: its upper lanes are not used).
      const F next = k + 1 < kPatch / 2
                         ? across(nextRow)
                         : loadLanes<L>(nextRow) + wx * (loadLanes<L>(nextRow + 1) - loadLanes<L>(nextRow));
      const F shifted = __builtin_shuffle(pair, next, upperThenLower);  // rows 2k + 1, 2k + 2
      accumulatePass<L>(pair + wy * (shifted - pair), 2 * k * kPatch, T, gx, gy, aR, aX, aY, aD);
      pair = next;
    }
  }
  sums[0] = sumLanes<L>(aR);
  sums[1] = sumLanes<L>(aX);
  sums[2] = sumLanes<L>(aY);
  sums[3] = sumLanes<L>(aD);
}

// The mean-normalised squared difference alone, at a whole-pixel position (block matching):
// the samples are the previous picture's pixels, no interpolation.
template <typename L>
ARSEG_INLINE float wholePixelSsd(const float* ref, ptrdiff_t stride, const float* T, float sT) {
  using F = typename L::F;
  constexpr int N = L::kCount;
  F aR = splat<L>(0.f), aD = aR;
  for (int e = 0; e < kPatch * kPatch; e += N) {
    const F r = loadPatchRows<L>(ref, stride, e);
    const F diff = r - loadLanes<L>(T + e);
    aR += r;
    aD += diff * diff;
  }
  const float dm = sumLanes<L>(aR) - sT;
  return sumLanes<L>(aD) - dm * dm / (kPatch * kPatch);
}

struct PatchConstants {
  float sT, sGx, sGy, sGxT, sGyT;
  float hxx, hxy, hyy;  // centred, with the ridge
  float varT;
};

// The template (T), its gradients (central differences) and their sums, for the patch of the
// current picture at integer origin `p`.
template <typename L>
ARSEG_INLINE PatchConstants preparePatch(const float* p, ptrdiff_t stride, float* T, float* gx, float* gy) {
  using F = typename L::F;
  constexpr int N = L::kCount;
  F sT = splat<L>(0.f), sT2 = sT, sX = sT, sY = sT, sXT = sT, sYT = sT, hxx = sT, hxy = sT, hyy = sT;
  const F half = splat<L>(0.5f);
  for (int e = 0; e < kPatch * kPatch; e += N) {
    const F t = loadPatchRows<L>(p, stride, e);
    const F x = half * (loadPatchRows<L>(p + 1, stride, e) - loadPatchRows<L>(p - 1, stride, e));
    const F y = half * (loadPatchRows<L>(p + stride, stride, e) - loadPatchRows<L>(p - stride, stride, e));
    storeLanes<L>(T + e, t);
    storeLanes<L>(gx + e, x);
    storeLanes<L>(gy + e, y);
    sT += t;
    sT2 += t * t;
    sX += x;
    sY += y;
    sXT += x * t;
    sYT += y * t;
    hxx += x * x;
    hxy += x * y;
    hyy += y * y;
  }
  constexpr float n = kPatch * kPatch;
  PatchConstants k;
  k.sT = sumLanes<L>(sT);
  k.sGx = sumLanes<L>(sX);
  k.sGy = sumLanes<L>(sY);
  k.sGxT = sumLanes<L>(sXT);
  k.sGyT = sumLanes<L>(sYT);
  k.hxx = sumLanes<L>(hxx) - k.sGx * k.sGx / n + kHessianRidge;
  k.hxy = sumLanes<L>(hxy) - k.sGx * k.sGy / n;
  k.hyy = sumLanes<L>(hyy) - k.sGy * k.sGy / n + kHessianRidge;
  const float meanT = k.sT / n;
  k.varT = sumLanes<L>(sT2) / n - meanT * meanT;
  return k;
}

// Moves every patch of one level from its start (pf.u, pf.v) by inverse search. `alt`, when not
// null, holds a second start per patch, taken where it matches better; `radius` > 0 also tries
// every whole-pixel offset within it around the start (block matching on the coarsest level,
// where the search would otherwise only see motion within a pixel or two), each costing
// kOffsetPenalty per squared pixel more so that a patch with no texture stays put.
template <typename L>
ARSEG_INLINE void searchLevel(const PyramidLevel& cur, const PyramidLevel& ref, const float* altU, const float* altV,
                              int radius, int iterations, const uint8_t* need, PatchField& pf) {
  alignas(64) float T[kPatch * kPatch], gx[kPatch * kPatch], gy[kPatch * kPatch];
  constexpr float n = kPatch * kPatch;
  const ptrdiff_t cs = cur.stride, rs = ref.stride;
  const size_t nx = pf.ox.size();
  for (size_t i = 0; i < pf.oy.size(); ++i) {
    const int y0 = pf.oy[i];
    const float loY = minOffset(y0), hiY = maxOffset(y0, cur.height);
    for (size_t j = 0; j < nx; ++j) {
      const int x0 = pf.ox[j];
      const size_t k = i * nx + j;
      if (need && !need[k]) continue;
      const float loX = minOffset(x0), hiX = maxOffset(x0, cur.width);
      const PatchConstants c = preparePatch<L>(cur.origin() + y0 * cs + x0, cs, T, gx, gy);
      const float det = c.hxx * c.hyy - c.hxy * c.hxy;
      const float invDet = det > 0.f ? 1.f / det : 0.f;
      // Sums at offset (u, v), clamped into the border, for a patch at (x0, y0).
      float sums[4];
      auto pass = [&](float& u, float& v) ARSEG_INLINE_LAMBDA {
        u = std::min(std::max(u, loX), hiX);
        v = std::min(std::max(v, loY), hiY);
        const float px = x0 + u, py = y0 + v;
        const float fxi = floorFast(px), fyi = floorFast(py);
        const float* at = ref.origin() + static_cast<ptrdiff_t>(fyi) * rs + static_cast<ptrdiff_t>(fxi);
        patchPass<L>(at, rs, px - fxi, py - fyi, T, gx, gy, sums);
        const float dm = sums[0] - c.sT;
        return sums[3] - dm * dm / n;  // mean-normalised SSD
      };
      float u = pf.u[k], v = pf.v[k];
      float ssd = pass(u, v);
      if (altU || radius > 0) {
        float best = ssd;
        const float u0 = u, v0 = v;
        if (altU) {
          float au = altU[k], av = altV[k];
          const float cost = pass(au, av);
          if (cost < best) {
            best = cost;
            u = au;
            v = av;
          }
        }
        // From a whole-pixel start (the coarsest level's zero) every candidate is whole pixels.
        const bool whole = u0 == floorFast(u0) && v0 == floorFast(v0);
        for (int dv = -radius; dv <= radius; ++dv) {
          for (int du = -radius; du <= radius; ++du) {
            if (du == 0 && dv == 0) continue;
            float cu = u0 + du, cv = v0 + dv;
            float ssdHere;
            if (whole) {
              cu = std::min(std::max(cu, loX), hiX);  // the bounds are whole pixels too
              cv = std::min(std::max(cv, loY), hiY);
              ssdHere = wholePixelSsd<L>(
                  ref.origin() + static_cast<ptrdiff_t>(y0 + cv) * rs + static_cast<ptrdiff_t>(x0 + cu), rs, T, c.sT);
            } else {
              ssdHere = pass(cu, cv);
            }
            const float cost = ssdHere + kOffsetPenalty * static_cast<float>(du * du + dv * dv);
            if (cost < best) {
              best = cost;
              u = cu;
              v = cv;
            }
          }
        }
        ssd = pass(u, v);  // the chosen start's sums for the first step
      }
      const float startU = u, startV = v, startSsd = ssd;
      for (int it = 0; it < iterations; ++it) {
        // b = sum (g - mean g) e with e = R - T - (mean R - mean T); sum e = 0.
        const float dm = (sums[0] - c.sT) / n;
        const float bx = sums[1] - c.sGxT - dm * c.sGx;
        const float by = sums[2] - c.sGyT - dm * c.sGy;
        u -= (c.hyy * bx - c.hxy * by) * invDet;
        v -= (c.hxx * by - c.hxy * bx) * invDet;
        ssd = pass(u, v);
      }
      if (ssd > startSsd) {
        u = startU;
        v = startV;
        ssd = startSsd;
      }
      pf.u[k] = u;
      pf.v[k] = v;
      const float residual = ssd / n;
      pf.ok[k] = !(residual > kUnmatchedVariance && residual > kUnmatchedShare * c.varT);
    }
  }
}

// --- scalar parts ---------------------------------------------------------------------------

inline float bilinear(const PyramidLevel& lv, float x, float y) {
  const float lo = -(kPad - 1);
  x = std::min(std::max(x, lo), static_cast<float>(lv.width + kPad - 2));
  y = std::min(std::max(y, lo), static_cast<float>(lv.height + kPad - 2));
  const float fx = floorFast(x), fy = floorFast(y);
  const float* p = lv.origin() + static_cast<ptrdiff_t>(fy) * lv.stride + static_cast<ptrdiff_t>(fx);
  const float ax = x - fx, ay = y - fy;
  const float top = p[0] + ax * (p[1] - p[0]);
  const float bottom = p[lv.stride] + ax * (p[lv.stride + 1] - p[lv.stride]);
  return top + ay * (bottom - top);
}

// Where a query coordinate falls between patch centres along one axis: the centres of patches
// `lo` and `hi` = lo + 1 around it and the weight of `hi` (before the first centre or after the
// last, that patch alone: lo = hi). `q` is clamped into [0, size - 1] first.
struct Between {
  int lo, hi;
  float t;
};

std::vector<Between> betweenCentres(const std::vector<int>& o, std::vector<float>& q, int size) {
  std::vector<Between> out(q.size());
  const int n = static_cast<int>(o.size());
  constexpr float half = 0.5f * (kPatch - 1);
  for (size_t k = 0; k < q.size(); ++k) {
    q[k] = std::min(std::max(q[k], 0.f), static_cast<float>(size - 1));
    // The last centre at or before q.
    int lo = static_cast<int>(
                 std::upper_bound(o.begin(), o.end(), q[k] - half, [](float v, int origin) { return v < origin; }) -
                 o.begin()) -
             1;
    if (lo < 0) {
      out[k] = {0, 0, 0.f};
    } else if (lo >= n - 1) {
      out[k] = {n - 1, n - 1, 0.f};
    } else {
      const float c0 = o[lo] + half, c1 = o[lo + 1] + half;
      out[k] = {lo, lo + 1, (q[k] - c0) / (c1 - c0)};
    }
  }
  return out;
}

// Query points (xs[j], ys[i]) on one level, clamped into it, and where each falls between the
// level's patch centres: computed once per level and read both by the marking of the patches a
// partial estimate needs and by densifyGrid.
struct QueryGrid {
  std::vector<float> xs, ys;
  std::vector<Between> cols, rows;
};

QueryGrid queryGrid(const std::vector<int>& ox, const std::vector<int>& oy, int width, int height,
                    std::vector<float> xs, std::vector<float> ys) {
  QueryGrid q;
  q.cols = betweenCentres(ox, xs, width);
  q.rows = betweenCentres(oy, ys, height);
  q.xs = std::move(xs);
  q.ys = std::move(ys);
  return q;
}

// The field at the points of `q` on a level, from the four
// patches whose centres surround each point: their bilinear weights, each multiplied by how well
// that patch explains the point (1 / max(1, |previous(q + u) - current(q)|)), so that the field
// is smooth where the patches agree and follows the right patch at a motion boundary.
// `emit(i, j, u, v, matched)`; matched: the matched patches carry at least half the weight.
// `need`, if not null, holds one flag per point (row-major): only flagged points are computed.
template <typename Emit>
void densifyGrid(const PyramidLevel& cur, const PyramidLevel& ref, const PatchField& pf, const QueryGrid& q,
                 const uint8_t* need, Emit&& emit) {
  const std::vector<float>& xs = q.xs;
  const std::vector<float>& ys = q.ys;
  const std::vector<Between>& cols = q.cols;
  const std::vector<Between>& rows = q.rows;
  const size_t nx = pf.ox.size();
  for (size_t i = 0; i < ys.size(); ++i) {
    const float qy = ys[i];
    const Between& r = rows[i];
    for (size_t j = 0; j < xs.size(); ++j) {
      if (need && !need[i * xs.size() + j]) continue;
      const float qx = xs[j];
      const Between& c = cols[j];
      const float here = bilinear(cur, qx, qy);
      float su = 0.f, sv = 0.f, sw = 0.f, sm = 0.f;
      const int pis[2] = {r.lo, r.hi}, pjs[2] = {c.lo, c.hi};
      const float bys[2] = {1.f - r.t, r.t}, bxs[2] = {1.f - c.t, c.t};
      for (int a = 0; a < 2; ++a) {
        for (int b = 0; b < 2; ++b) {
          const size_t k = pis[a] * nx + pjs[b];
          const float diff = std::fabs(bilinear(ref, qx + pf.u[k], qy + pf.v[k]) - here);
          const float w = bys[a] * bxs[b] / std::max(1.f, diff);
          su += w * pf.u[k];
          sv += w * pf.v[k];
          sw += w;
          sm += pf.ok[k] ? w : 0.f;
        }
      }
      emit(i, j, su / sw, sv / sw, sm >= 0.5f * sw);
    }
  }
}

}  // namespace

void buildPyramid(const uint8_t* luma, ptrdiff_t linesize, int width, int height, const EstimatorOptions& o,
                  LumaPyramid& out) {
  simdDispatch([&](auto lanes)
                   ARSEG_INLINE_LAMBDA { buildPyramidT<decltype(lanes)>(luma, linesize, width, height, o, out); });
}

void estimateField(const LumaPyramid& prev, const LumaPyramid& cur, const MotionGrid* prior, int stride,
                   const EstimatorOptions& o, FieldEstimate& out, const std::vector<uint8_t>* wanted) {
  out.field = MotionGrid(cur.frameWidth, cur.frameHeight, stride);
  out.matched.assign(out.field.size(), 0);
  const int levels = static_cast<int>(cur.levels.size());
  MotionGrid& g = out.field;
  // Output cells: their centres in the finest level's pixels.
  const float outScale = static_cast<float>(1 << cur.finest);
  const float shift = 0.5f * (outScale - 1);
  std::vector<float> outXs(g.width), outYs(g.height);
  for (int j = 0; j < g.width; ++j) outXs[j] = (g.centre(j) - shift) / outScale;
  for (int i = 0; i < g.height; ++i) outYs[i] = (g.centre(i) - shift) / outScale;
  // Patch centres of a level in the next coarser level's pixels (its pixel x covers this
  // level's 2x, 2x + 1).
  auto centresBelow = [](const std::vector<int>& origins) {
    std::vector<float> q(origins.size());
    for (size_t j = 0; j < q.size(); ++j) q[j] = (origins[j] + 0.5f * (kPatch - 1) - 0.5f) / 2;
    return q;
  };
  std::vector<std::vector<int>> ox(levels), oy(levels);
  for (int k = 0; k < levels; ++k) {
    ox[k] = patchOrigins(cur.levels[k].width, o.patchStride);
    oy[k] = patchOrigins(cur.levels[k].height, o.patchStride);
  }
  // The points each level is sampled at: level 0 at the output cells, level k + 1 at level k's
  // patch centres (the start of their search).
  std::vector<QueryGrid> queries(levels);
  queries[0] = queryGrid(ox[0], oy[0], cur.levels[0].width, cur.levels[0].height, std::move(outXs), std::move(outYs));
  for (int k = 0; k + 1 < levels; ++k)
    queries[k + 1] = queryGrid(ox[k + 1], oy[k + 1], cur.levels[k + 1].width, cur.levels[k + 1].height,
                               centresBelow(ox[k]), centresBelow(oy[k]));
  // With `wanted`: the patches each level must search, from the finest down. A patch's search
  // depends only on its start (the coarser field at its centre, from the four coarser patches
  // around it) and the pictures, so searching just these gives the wanted cells the values of
  // a full search, bit for bit.
  std::vector<std::vector<uint8_t>> need(wanted ? levels : 0);
  if (wanted) {
    if (wanted->size() != g.size()) {
      out.field = MotionGrid();
      out.matched.clear();
      return;
    }
    // Marks the patches that densifyGrid reads for the flagged points of `q`.
    auto mark = [](const QueryGrid& q, size_t nx, size_t ny, const uint8_t* flags, std::vector<uint8_t>& patches) {
      patches.assign(nx * ny, 0);
      for (size_t i = 0; i < q.rows.size(); ++i)
        for (size_t j = 0; j < q.cols.size(); ++j) {
          if (!flags[i * q.cols.size() + j]) continue;
          const Between &r = q.rows[i], &c = q.cols[j];
          patches[r.lo * nx + c.lo] = 1;
          patches[r.lo * nx + c.hi] = 1;
          patches[r.hi * nx + c.lo] = 1;
          patches[r.hi * nx + c.hi] = 1;
        }
    };
    mark(queries[0], ox[0].size(), oy[0].size(), wanted->data(), need[0]);
    for (int k = 0; k + 1 < levels; ++k)
      mark(queries[k + 1], ox[k + 1].size(), oy[k + 1].size(), need[k].data(), need[k + 1]);
  }
  PatchField coarser, pf;
  std::vector<float> altU, altV;
  for (int k = levels - 1; k >= 0; --k) {
    const PyramidLevel& lc = cur.levels[k];
    const PyramidLevel& lr = prev.levels[k];
    const int level = cur.finest + k;
    const uint8_t* needHere = wanted ? need[k].data() : nullptr;
    pf.ox = ox[k];
    pf.oy = oy[k];
    pf.u.assign(pf.count(), 0.f);
    pf.v.assign(pf.count(), 0.f);
    pf.ok.assign(pf.count(), 0);
    const bool usePrior = k == levels - 1 && prior && !prior->empty();
    if (usePrior) {
      altU.resize(pf.count());
      altV.resize(pf.count());
    }
    const float scale = static_cast<float>(1 << level);
    const size_t nx = pf.ox.size();
    if (k < levels - 1) {
      densifyGrid(cur.levels[k + 1], prev.levels[k + 1], coarser, queries[k + 1], needHere,
                  [&](size_t i, size_t j, float u, float v, bool) {
                    pf.u[i * nx + j] = 2.f * u;
                    pf.v[i * nx + j] = 2.f * v;
                  });
    } else if (usePrior) {
      for (size_t i = 0; i < pf.oy.size(); ++i) {
        for (size_t j = 0; j < nx; ++j) {
          // Patch centre in frame pixels, then in the prior's cells.
          const float cx = pf.ox[j] + 0.5f * (kPatch - 1), cy = pf.oy[i] + 0.5f * (kPatch - 1);
          const float fx = cx * scale + 0.5f * (scale - 1), fy = cy * scale + 0.5f * (scale - 1);
          const float half = 0.5f * (prior->stride - 1);
          float px, py;
          prior->sample((fx - half) / prior->stride, (fy - half) / prior->stride, px, py);
          altU[i * nx + j] = px / scale;
          altV[i * nx + j] = py / scale;
        }
      }
    }
    simdDispatch([&](auto lanes) ARSEG_INLINE_LAMBDA {
      searchLevel<decltype(lanes)>(lc, lr, usePrior ? altU.data() : nullptr, usePrior ? altV.data() : nullptr,
                                   k == levels - 1 ? o.coarseRadius : o.fineRadius, o.iterations, needHere, pf);
    });
    std::swap(coarser, pf);
  }
  densifyGrid(cur.levels[0], prev.levels[0], coarser, queries[0], wanted ? wanted->data() : nullptr,
              [&](size_t i, size_t j, float u, float v, bool matched) {
                const size_t idx = i * g.width + j;
                g.dx[idx] = u * outScale;
                g.dy[idx] = v * outScale;
                out.matched[idx] = matched;
              });
}

bool MotionEstimator::push(const uint8_t* luma, ptrdiff_t linesize, int width, int height, int stride, bool want,
                           FieldEstimate& out) {
  if (!frameLargeEnough(width, height, options_)) {
    reset();
    return false;
  }
  buildPyramid(luma, linesize, width, height, options_, cur_);
  const bool sameSize = havePrev_ && prev_.frameWidth == width && prev_.frameHeight == height;
  bool done = false;
  if (want && sameSize) {
    const bool priorFits = !prior_.empty() && prior_.width == (width + prior_.stride - 1) / prior_.stride &&
                           prior_.height == (height + prior_.stride - 1) / prior_.stride;
    estimateField(prev_, cur_, priorFits ? &prior_ : nullptr, stride, options_, out);
    prior_ = out.field;
    done = true;
  } else if (!sameSize) {
    prior_ = MotionGrid();  // a new chain: no steady motion to assume
  }                         // (a skipped picture keeps the older field as the guess)
  std::swap(prev_, cur_);
  havePrev_ = true;
  return done;
}

void MotionEstimator::reset() {
  havePrev_ = false;
  prior_ = MotionGrid();
}

void estimatedVectors(const FieldEstimate& estimate, std::vector<int32_t>& out) {
  const MotionGrid& g = estimate.field;
  out.clear();
  out.reserve(g.size() * 10);
  const int s = g.stride;
  for (int i = 0; i < g.height; ++i) {
    for (int j = 0; j < g.width; ++j) {
      const size_t k = static_cast<size_t>(i) * g.width + j;
      // dst is the block's centre: the rasteriser's block [dst - s/2, dst + s/2) is this cell.
      const int dstX = j * s + s / 2, dstY = i * s + s / 2;
      const int mx = static_cast<int>(std::lround(g.dx[k] * kEstimatedMotionScale));
      const int my = static_cast<int>(std::lround(g.dy[k] * kEstimatedMotionScale));
      const int32_t row[10] = {-1,
                               s,
                               s,
                               dstX + static_cast<int>(std::lround(g.dx[k])),
                               dstY + static_cast<int>(std::lround(g.dy[k])),
                               dstX,
                               dstY,
                               mx,
                               my,
                               kEstimatedMotionScale};
      out.insert(out.end(), row, row + 10);
    }
  }
}

}  // namespace arseg
