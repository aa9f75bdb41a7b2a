#include "block_field.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../common/recycled_storage.h"
#include "../common/simd.h"

namespace arseg {

namespace {

// ceil(a / b) for b > 0 and any sign of a, in integers.
inline int ceilDiv(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// ceil(a / 2^shift), the same for power-of-two strides without a division per block edge
// (an arithmetic shift floors: ceil(a / b) = -floor(-a / b)).
inline int ceilShift(int a, int shift) { return -((-a) >> shift); }

// Sizes the grid of slot s for this frame (keeping its storage) and empties its slot.
void resetSlot(BlockField& field, int s, int gw, int gh, int stride) {
  MotionGrid& g = field.vec[s];
  g.width = gw;
  g.height = gh;
  g.stride = stride;
  const size_t n = static_cast<size_t>(gw) * gh;
  // Displacements of empty cells are never used (composeStep masks them out): storage of an
  // earlier reader's grids when its own is too small (recycled_storage.h), not zero-filled anew.
  sizeForOverwrite(g.dx, n);
  sizeForOverwrite(g.dy, n);
  // Every cell empty: one memset over the cells it held (assign(n, 0) stored the ints one by
  // one); resize zero-fills those beyond. Slot 1, emptied per frame, would be filled twice.
  std::vector<int32_t>& ref = field.ref[s];
  const size_t kept = std::min(ref.size(), n);
  ref.resize(n);
  if (kept) std::memset(ref.data(), 0, kept * sizeof(int32_t));
}

// Two or four lanes (GCC/Clang vector extensions: SSE registers on x86-64, NEON on Arm).
typedef int32_t Int2 __attribute__((vector_size(8)));
typedef float Float2 __attribute__((vector_size(8)));
typedef float Float4 __attribute__((vector_size(16)));

// The bits of `v` twice, for a 64-bit store into two adjacent cells.
template <typename T>
inline uint64_t pairOf(T v) {
  static_assert(sizeof(T) == 4, "a cell holds 32 bits");
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return static_cast<uint64_t>(bits) * 0x100000001ull;
}

// ceilBy(a): ceil(a / (2 * stride)); floorBy(a) the floor; aligned(x0, y0, w, h): whether
// doubled edges x0, y0 and sizes w, h put every edge of the block on a cell boundary.
// fastStrideShift: log2(stride) for a power-of-two stride (the 2 x 2 cell fast path), else -1;
// kShift the same as a constant (strides 4 and 8: their fast loop keeps fewer values), or -1.
template <int kShift, typename CeilDiv, typename FloorDiv, typename Aligned>
void rasterise(const int32_t* vectors, const int32_t* refs, size_t count, int frameWidth, int frameHeight, int stride,
               int fastStrideShift, BlockField& field, CeilDiv ceilBy, FloorDiv floorBy, Aligned aligned) {
  const int gw = (frameWidth + stride - 1) / stride, gh = (frameHeight + stride - 1) / stride;
  resetSlot(field, 0, gw, gh, stride);
  field.ref[1].clear();  // slot 1 comes with the first vector that has source > 0
  // Per slot: where its cells' displacements and distances go (slot 1: once it exists).
  float* slotX[2] = {field.vec[0].dx.data(), nullptr};
  float* slotY[2] = {field.vec[0].dy.data(), nullptr};
  int32_t* slotRef[2] = {field.ref[0].data(), nullptr};

  const int off = stride - 1;
  int lastScale = 0;
  bool scaleIsPowerOfTwo = false;
  float inverseScale = 0.f;
  // The fast path's scale: the last power of two seen (4 in H.264 and HEVC until one differs).
  int fastScale = 4;
  float fastInverse = 0.25f;
  // Fast path: a block of exactly 2 x 2 cells whose edges lie on cell boundaries (a macroblock
  // at stride 8, an 8x8 block at stride 4), wholly inside the grid, of a slot that exists, with
  // the fast scale: most vectors of a codec. Its cells are those of the general bounds
  // (j0 = floor((2 dst - 2 stride) / (2 stride)) = dst / stride - 1, j1 = j0 + 1), found with one
  // shift, tested with unsigned compares and written with 64-bit stores of both columns.
  const bool fastStride = kShift >= 0 || fastStrideShift >= 0;
  const int fastShift = kShift >= 0 ? kShift : fastStride ? fastStrideShift : 0;
  const int fastMask = kShift >= 0 ? (1 << kShift) - 1 : stride - 1;
  const uint64_t fastWH = static_cast<uint64_t>(static_cast<uint32_t>(2 << fastShift)) * 0x100000001ull;
  // j0 < fastJ, i0 < fastI: j0 + 1 and i0 + 1 in the grid too; 0 takes no block (other strides,
  // grids narrower than 2 cells).
  const unsigned fastJ = fastStride ? static_cast<unsigned>(std::max(gw - 1, 0)) : 0u;
  const unsigned fastI = fastStride ? static_cast<unsigned>(std::max(gh - 1, 0)) : 0u;
  // Any other vector: the general bounds, out of line so that the fast loop keeps its values in
  // registers (a call per vector that is not 2 x 2 cells, the few of a codec).
  auto general = [&](const int32_t* row, int32_t ref) __attribute__((noinline)) {
    const int source = row[0];
    const int w = row[1], h = row[2];
    const int dstX = row[5], dstY = row[6];
    const int scale = row[9];
    if ((ref == 0) | (w <= 0) | (h <= 0) | (scale <= 0)) return;  // no prediction, or malformed
    const int slot = source > 0 ? 1 : 0;
    if (slot == 1 && !slotRef[1]) {
      resetSlot(field, 1, gw, gh, stride);
      slotX[1] = field.vec[1].dx.data();
      slotY[1] = field.vec[1].dy.data();
      slotRef[1] = field.ref[1].data();
    }
    // The block spans [dst - size/2, dst + size/2) in pixels (dst is its centre); cell j's centre
    // is j * stride + (stride - 1) / 2. Doubling everything keeps the bounds in integers:
    // the cells inside are those with 2 * x0 <= 2 * j * stride + stride - 1 < 2 * x1.
    const int x0 = 2 * dstX - w, x1 = 2 * dstX + w;  // doubled block edges
    const int y0 = 2 * dstY - h, y1 = 2 * dstY + h;
    int j0, j1, i0, i1;
    if (aligned(x0, y0, w, h)) {
      // Edges on cell boundaries (a macroblock or larger at stride 8, 4): the cells are those
      // the block's pixels span, the same as the general bounds give, with fewer operations.
      j0 = floorBy(x0);
      i0 = floorBy(y0);
      j1 = floorBy(x1) - 1;
      i1 = floorBy(y1) - 1;
      if ((j0 < 0) | (i0 < 0) | (j1 >= gw) | (i1 >= gh)) {
        j0 = std::max(0, j0);
        i0 = std::max(0, i0);
        j1 = std::min(gw - 1, j1);
        i1 = std::min(gh - 1, i1);
        if ((j0 > j1) | (i0 > i1)) return;
      }
    } else {
      j0 = std::max(0, ceilBy(x0 - off));
      j1 = std::min(gw - 1, ceilBy(x1 - off) - 1);
      i0 = std::max(0, ceilBy(y0 - off));
      i1 = std::min(gh - 1, ceilBy(y1 - off) - 1);
      if ((j0 > j1) | (i0 > i1)) return;
    }
    // (motion_x, motion_y) / motion_scale; a power-of-two scale (4 in H.264 and HEVC) as a
    // multiplication by its reciprocal, which is exact, not a division per block.
    if (scale != lastScale) {
      lastScale = scale;
      scaleIsPowerOfTwo = (scale & (scale - 1)) == 0;
      inverseScale = 1.f / static_cast<float>(scale);
      if (scaleIsPowerOfTwo) {
        fastScale = scale;
        fastInverse = inverseScale;
      }
    }
    const float mx = scaleIsPowerOfTwo ? static_cast<float>(row[7]) * inverseScale : static_cast<float>(row[7]) / scale;
    const float my = scaleIsPowerOfTwo ? static_cast<float>(row[8]) * inverseScale : static_cast<float>(row[8]) / scale;
    const size_t k = static_cast<size_t>(i0) * gw + j0;
    float* dx = slotX[slot] + k;
    float* dy = slotY[slot] + k;
    int32_t* cellRef = slotRef[slot] + k;
    const int nj = j1 - j0 + 1;
    // Blocks cover mostly 2 x 2 cells or 1 (a macroblock at stride 8, 4): the compiler's
    // vectorised loops, with their checks, cost more than the stores for them.
    if (nj == 2 && i1 == i0 + 1) {
      dx[0] = dx[1] = dx[gw] = dx[gw + 1] = mx;
      dy[0] = dy[1] = dy[gw] = dy[gw + 1] = my;
      cellRef[0] = cellRef[1] = cellRef[gw] = cellRef[gw + 1] = ref;
    } else if (nj == 1 && i1 == i0) {
      dx[0] = mx;
      dy[0] = my;
      cellRef[0] = ref;
    } else {
      for (int i = i0; i <= i1; ++i, dx += gw, dy += gw, cellRef += gw) {
        std::fill_n(dx, nj, mx);
        std::fill_n(dy, nj, my);
        std::fill_n(cellRef, nj, ref);
      }
    }
  };
  // The fast loop's copies of what `general` may change (it creates slot 1, meets new scales):
  // locals whose address nothing takes stay in registers across the stores to the grids.
  float *x0 = slotX[0], *x1 = slotX[1], *y0 = slotY[0], *y1 = slotY[1];
  int32_t *r0 = slotRef[0], *r1 = slotRef[1];
  int scale4 = fastScale;
  Float2 inverse4 = {fastInverse, fastInverse};
  const size_t cells = static_cast<size_t>(gw);  // a row of cells (gw is the lambda's)
  const int32_t* const end = refs + count;
  for (const int32_t* row = vectors; refs != end; row += 10, ++refs) {
    const int32_t ref = *refs;
    uint64_t wh;  // w and h in one compare (the constant is the same in either byte order)
    std::memcpy(&wh, row + 1, sizeof wh);
    const int dstX = row[5], dstY = row[6];
    const bool second = row[0] > 0;
    int32_t* cellRef = second ? r1 : r0;
    const unsigned j0 = static_cast<unsigned>((dstX >> fastShift) - 1);
    const unsigned i0 = static_cast<unsigned>((dstY >> fastShift) - 1);
    if (wh == fastWH && ((dstX | dstY) & fastMask) == 0 && j0 < fastJ && i0 < fastI && row[9] == scale4 && ref != 0 &&
        cellRef != nullptr) {
      // (motion_x, motion_y) converted and scaled together: per lane the same rounding as the
      // scalar conversion and product, so the same floats.
      Int2 m;
      std::memcpy(&m, row + 7, sizeof m);
      const Float2 d = __builtin_convertvector(m, Float2) * inverse4;
      const Float4 pairs = __builtin_shufflevector(d, d, 0, 0, 1, 1);  // mx, mx, my, my
      const size_t k = i0 * cells + j0;
      float* dx = (second ? x1 : x0) + k;
      float* dy = (second ? y1 : y0) + k;
      cellRef += k;
      std::memcpy(dx, &pairs, 8);
      std::memcpy(dx + cells, &pairs, 8);
      std::memcpy(dy, reinterpret_cast<const char*>(&pairs) + 8, 8);
      std::memcpy(dy + cells, reinterpret_cast<const char*>(&pairs) + 8, 8);
      const uint64_t pairRef = pairOf(ref);
      std::memcpy(cellRef, &pairRef, 8);
      std::memcpy(cellRef + cells, &pairRef, 8);
    } else {
      general(row, ref);
      x1 = slotX[1];
      y1 = slotY[1];
      r1 = slotRef[1];
      scale4 = fastScale;
      inverse4 = Float2{fastInverse, fastInverse};
    }
  }
}

}  // namespace

void rasteriseBlocks(const int32_t* vectors, const int32_t* refs, size_t count, int frameWidth, int frameHeight,
                     int stride, BlockField& field) {
  // A recycled field must not keep the flags of the frame it came from (estimated motion's).
  field.sequential = false;
  field.unexplained.clear();
  const int den = 2 * stride;  // the doubled cell size
  if ((den & (den - 1)) == 0) {
    const int shift = __builtin_ctz(static_cast<unsigned>(den));
    // Doubled edges multiples of 2 * stride, sizes multiples of stride: one test for the four.
    const unsigned edgeMask = static_cast<unsigned>(den - 1), sizeMask = static_cast<unsigned>(stride - 1);
    auto ceilBy = [shift](int a) { return ceilShift(a, shift); };
    auto floorBy = [shift](int a) { return a >> shift; };
    auto aligned = [edgeMask, sizeMask](int x0, int y0, int w, int h) {
      return (((static_cast<unsigned>(x0) | static_cast<unsigned>(y0)) & edgeMask) |
              ((static_cast<unsigned>(w) | static_cast<unsigned>(h)) & sizeMask)) == 0;
    };
    if (stride == 8)
      rasterise<3>(vectors, refs, count, frameWidth, frameHeight, stride, 3, field, ceilBy, floorBy, aligned);
    else if (stride == 4)
      rasterise<2>(vectors, refs, count, frameWidth, frameHeight, stride, 2, field, ceilBy, floorBy, aligned);
    else
      rasterise<-1>(vectors, refs, count, frameWidth, frameHeight, stride, shift - 1, field, ceilBy, floorBy, aligned);
  } else {
    rasterise<-1>(
        vectors, refs, count, frameWidth, frameHeight, stride, -1, field, [den](int a) { return ceilDiv(a, den); },
        [](int a) { return a; }, [](int, int, int, int) { return false; });
  }
}

BlockField rasteriseBlocks(const int32_t* vectors, const int32_t* refs, size_t count, int frameWidth, int frameHeight,
                           int stride) {
  BlockField field;
  rasteriseBlocks(vectors, refs, count, frameWidth, frameHeight, stride, field);
  return field;
}

namespace {

// Appends the distances of ref[0..n) that differ from the one before them (zeros skipped):
// distances come in long runs, so whole vectors of cells that hold only the last one seen, or
// zero, are skipped with one comparison; the rest is the plain scan, which this matches for
// any vector width (a skipped vector would have appended nothing).
template <typename L>
ARSEG_INLINE void appendRuns(const int32_t* ref, size_t n, std::vector<int32_t>& out) {
  using I = typename L::I;
  constexpr int N = L::kCount;
  int32_t last = 0;
  auto scan = [&](size_t from, size_t to) ARSEG_INLINE_LAMBDA {
    for (size_t c = from; c < to; ++c)
      if (ref[c] != 0 && ref[c] != last) {
        out.push_back(ref[c]);
        last = ref[c];
      }
  };
  size_t k = 0;
  for (; k + N <= n; k += N) {
    I q;
    std::memcpy(&q, ref + k, sizeof q);
    if (laneBits((q != 0) & (q != last))) scan(k, k + N);
  }
  scan(k, n);
}

}  // namespace

void distinctDistances(const BlockField& b, std::vector<int32_t>& out) {
  out.clear();
  for (int s = 0; s < 2; ++s) {
    if (!b.hasSlot(s)) continue;
    // At most 8 lanes: GCC 12 lowers the 16-lane comparisons (AVX-512 masks turned back into
    // vectors) to a scalar compare and insert per lane, which made this scan cost as much as
    // rasterising (bench/decode.js, perf); at 8 lanes they are single AVX2 instructions.
    simdDispatch([&](auto lanes) ARSEG_INLINE_LAMBDA {
      using L = std::conditional_t<(decltype(lanes)::kCount > 8), Lanes<8>, decltype(lanes)>;
      appendRuns<L>(b.ref[s].data(), b.ref[s].size(), out);
    });
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

void distinctDistancesReference(const BlockField& b, std::vector<int32_t>& out) {
  out.clear();
  for (int s = 0; s < 2; ++s)
    for (size_t k = 0; b.hasSlot(s) && k < b.ref[s].size(); ++k)
      if (b.ref[s][k] != 0) out.push_back(b.ref[s][k]);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

}  // namespace arseg
