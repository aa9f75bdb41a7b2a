#include "compose_step.h"

#include <cstring>
#include <type_traits>
#include <vector>

#include "../common/simd.h"

namespace arseg {

namespace {

// A product that no later addition may fuse with (GCC contracts a * b + c into one rounding
// where the target has FMA, which the baseline build has not): every path, scalar or vector,
// then rounds exactly as the plain loop compiled for baseline x86-64 does.
template <typename V>
ARSEG_INLINE V unfused(V v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+x"(v));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(v));
#endif
  return v;
}

// A reference with what the loops need of it.
struct Source {
  int32_t distance;
  bool usable;
  const float* dx;  // its field, nullptr for zero
  const float* dy;
  float inv, uMin, uMax, vMin, vMax;  // Follower's
};

struct Step {
  int gw, gh;
  size_t size;
  bool has[2];
  const int32_t* ref[2];
  const float* vx[2];
  const float* vy[2];
  const Source* sources;
  size_t sourceCount;
  const float* fallbackX;  // nullptr: zero
  const float* fallbackY;
  float* outX;
  float* outY;

  const Source* find(int32_t d) const {
    for (size_t r = 0; r < sourceCount; ++r)
      if (sources[r].distance == d) return sources[r].usable ? &sources[r] : nullptr;
    return nullptr;
  }
};

Step prepare(const BlockField& b, const StepReference* refs, size_t refCount, const MotionGrid* fallback,
             MotionGrid& out, std::vector<Source>& sources) {
  out.width = b.width();
  out.height = b.height();
  out.stride = b.stride();
  out.dx.resize(b.size());
  out.dy.resize(b.size());
  sources.clear();
  for (size_t r = 0; r < refCount; ++r) {
    Source s{refs[r].distance, refs[r].usable, nullptr, nullptr, 0, 0, 0, 0, 0};
    if (refs[r].field) {
      const Follower f(*refs[r].field);
      s.dx = refs[r].field->dx.data();
      s.dy = refs[r].field->dy.data();
      s.inv = f.inv;
      s.uMin = f.uMin;
      s.uMax = f.uMax;
      s.vMin = f.vMin;
      s.vMax = f.vMax;
    }
    sources.push_back(s);
  }
  Step st{};
  st.gw = b.width();
  st.gh = b.height();
  st.size = b.size();
  for (int s = 0; s < 2; ++s) {
    st.has[s] = b.hasSlot(s);
    st.ref[s] = st.has[s] ? b.ref[s].data() : nullptr;
    st.vx[s] = st.has[s] ? b.vec[s].dx.data() : nullptr;
    st.vy[s] = st.has[s] ? b.vec[s].dy.data() : nullptr;
  }
  st.sources = sources.data();
  st.sourceCount = sources.size();
  st.fallbackX = fallback ? fallback->dx.data() : nullptr;
  st.fallbackY = fallback ? fallback->dy.data() : nullptr;
  st.outX = out.dx.data();
  st.outY = out.dy.data();
  return st;
}

// --- the plain loop ----------------------------------------------------------------------

// MotionGrid::sample after Follower's clamp (which keeps u, v inside the grid).
inline void sampleCell(const Step& st, const Source& r, int i, int j, float mx, float my, float& ox, float& oy) {
  float u = j + unfused(mx * r.inv), v = i + unfused(my * r.inv);
  u = u < r.uMin ? r.uMin : (u > r.uMax ? r.uMax : u);
  v = v < r.vMin ? r.vMin : (v > r.vMax ? r.vMax : v);
  const int j0 = static_cast<int>(u);  // u >= 0: truncation is floor
  const int i0 = static_cast<int>(v);
  const int dj = j0 + 1 < st.gw ? 1 : 0;
  const size_t di = i0 + 1 < st.gh ? static_cast<size_t>(st.gw) : 0;
  const float fu = u - j0, fv = v - i0;
  const size_t a = static_cast<size_t>(i0) * st.gw + j0;
  const float* x = r.dx + a;
  const float* y = r.dy + a;
  const float topX = x[0] + unfused(fu * (x[dj] - x[0]));
  const float botX = x[di] + unfused(fu * (x[di + dj] - x[di]));
  const float topY = y[0] + unfused(fu * (y[dj] - y[0]));
  const float botY = y[di] + unfused(fu * (y[di + dj] - y[di]));
  ox = topX + unfused(fv * (botX - topX));
  oy = topY + unfused(fv * (botY - topY));
}

inline void stepCell(const Step& st, int i, int j) {
  const size_t k = static_cast<size_t>(i) * st.gw + j;
  float sx = 0, sy = 0;
  int n = 0;
  for (int s = 0; s < 2; ++s) {
    if (!st.has[s]) continue;
    const int32_t d = st.ref[s][k];
    if (d == 0) continue;
    const Source* r = st.find(d);
    if (!r) continue;
    const float vx = st.vx[s][k], vy = st.vy[s][k];
    float rx = 0, ry = 0;
    if (r->dx) sampleCell(st, *r, i, j, vx, vy, rx, ry);
    sx += vx + rx;
    sy += vy + ry;
    ++n;
  }
  if (n > 0) {
    const float inv = n == 2 ? 0.5f : 1.f;
    st.outX[k] = sx * inv;
    st.outY[k] = sy * inv;
  } else {
    st.outX[k] = st.fallbackX ? st.fallbackX[k] : 0.f;
    st.outY[k] = st.fallbackY ? st.fallbackY[k] : 0.f;
  }
}

// --- the vectorised loop -----------------------------------------------------------------

// AVX-512's 16 lanes compare into a mask register (bit l for lane l) and select through one.
// Written with the vector extension's comparisons (vectors of -1/0), which AVX-512F alone
// cannot make from a mask in one instruction, GCC 12 lowers each comparison and selection of
// the 16-lane loop lane by lane through scalar registers (vpextrd, setne, vpinsrd), and it ran
// twice as slow as the 8-lane loop: not cache-line splits, as once thought (a 64-byte corner
// load straddles two lines, but per cell that is about as often as two 32-byte loads do).
// The builtins, not the intrinsics: see laneBits in simd.h.
#if ARSEG_X86_TARGETS && !defined(__clang__)
#define ARSEG_MASK_LANES 1
ARSEG_INLINE unsigned equalBits(Lanes<16>::I a, Lanes<16>::I b) {
  return __builtin_ia32_pcmpeqd512_mask(a, b, static_cast<unsigned short>(0xFFFF));
}
ARSEG_INLINE unsigned unequalBits(Lanes<16>::I a, Lanes<16>::I b) {
  return __builtin_ia32_cmpd512_mask(a, b, 4 /* _MM_CMPINT_NE */, static_cast<unsigned short>(0xFFFF));
}
ARSEG_INLINE unsigned atLeastBits(Lanes<16>::I a, Lanes<16>::I b) {
  return __builtin_ia32_cmpd512_mask(a, b, 5 /* _MM_CMPINT_NLT */, static_cast<unsigned short>(0xFFFF));
}
// Lane l of `set` where bit l of `bits` is set, else of `clear`.
ARSEG_INLINE Lanes<16>::F selectBits(unsigned bits, Lanes<16>::F clear, Lanes<16>::F set) {
  return __builtin_ia32_blendmps_512_mask(clear, set, static_cast<unsigned short>(bits));
}
#else
#define ARSEG_MASK_LANES 0  // other compilers: the 8-lane loop at the AVX-512 level
#endif

template <typename L>
ARSEG_INLINE typename L::I loadInts(const int32_t* p) {
  typename L::I v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Samples source r where the lanes `m` (bits mBits) of cells (i, j..j+N-1) land after moving
// by (vx, vy) = (vxs[l], vys[l]) in lane l. Mostly the lanes land on consecutive cells of one
// row, away from the grid's right and bottom edges (uniform motion over the lanes' blocks):
// the four corners are then four plain loads. Returns the lanes of m that land elsewhere
// (clamped at the inset, or moving otherwise): their results are garbage, for the caller to
// redo one cell at a time.
template <typename L>
ARSEG_INLINE unsigned sampleLanes(const Step& st, const Source& r, int i, int j, typename L::I iota, typename L::F jf,
                                  typename L::F fi, typename L::F vx, typename L::F vy, const float* vxs,
                                  const float* vys, typename L::I m, unsigned mBits, typename L::F& ox,
                                  typename L::F& oy) {
  using F = typename L::F;
  using I = typename L::I;
  constexpr int N = L::kCount;
  F u = jf + unfused(vx * r.inv), v = fi + unfused(vy * r.inv);
  // Broadcasts: x - 0 is x for every x, so the compiler drops the subtraction (0 + x is not,
  // for x = -0, and cost an addition per bound and vector).
  const F uMin = r.uMin - F{}, uMax = r.uMax - F{}, vMin = r.vMin - F{}, vMax = r.vMax - F{};
  u = u < uMin ? uMin : u;
  u = u > uMax ? uMax : u;
  v = v < vMin ? vMin : v;
  v = v > vMax ? vMax : v;
  const I j0 = __builtin_convertvector(u, I);  // u >= 0: truncation is floor
  const I i0 = __builtin_convertvector(v, I);
  const F fu = u - __builtin_convertvector(j0, F);
  const F fv = v - __builtin_convertvector(i0, F);
  // The row and column the lanes land on, from the middle lane (with the majority at the left
  // edge and at the right). With 8 or 16 lanes (AVX2, AVX-512) the lane is picked out in
  // registers (a variable permute, vpermd); reading a lane through memory would stall on the
  // store (AVX-512 most), so 4 lanes (baseline SSE2, which has no variable permute) compute it
  // again in scalar code as the lanes do. Both give the lane's values exactly.
  const int mid = (mBits >> (N / 2)) & 1 ? N / 2 : __builtin_ctz(mBits);
  int c0, r0;
  if constexpr (N >= 8) {
    const I pick = I{} + mid;
    c0 = __builtin_shuffle(j0, pick)[0] - mid;
    r0 = __builtin_shuffle(i0, pick)[0];
  } else {
    float um = (j + mid) + unfused(vxs[mid] * r.inv), vm = i + unfused(vys[mid] * r.inv);
    um = um < r.uMin ? r.uMin : (um > r.uMax ? r.uMax : um);
    vm = vm < r.vMin ? r.vMin : (vm > r.vMax ? r.vMax : vm);
    c0 = static_cast<int>(um) - mid;
    r0 = static_cast<int>(vm);
  }
  const int gw = st.gw;
  const ptrdiff_t base = static_cast<ptrdiff_t>(r0) * gw + c0;
  if (!(r0 + 1 < st.gh && base >= 0 && static_cast<size_t>(base) + gw + N + 1 <= st.size)) return mBits;
  const float* x = r.dx + base;
  const float* y = r.dy + base;
  const F x00 = loadLanes<L>(x), x01 = loadLanes<L>(x + 1);
  const F x10 = loadLanes<L>(x + gw), x11 = loadLanes<L>(x + gw + 1);
  const F y00 = loadLanes<L>(y), y01 = loadLanes<L>(y + 1);
  const F y10 = loadLanes<L>(y + gw), y11 = loadLanes<L>(y + gw + 1);
  const F topX = x00 + unfused(fu * (x01 - x00));
  const F botX = x10 + unfused(fu * (x11 - x10));
  const F topY = y00 + unfused(fu * (y01 - y00));
  const F botY = y10 + unfused(fu * (y11 - y10));
  ox = topX + unfused(fv * (botX - topX));
  oy = topY + unfused(fv * (botY - topY));
#if ARSEG_MASK_LANES
  if constexpr (N == 16)
    return mBits & (unequalBits(j0 - iota, I{} + c0) | unequalBits(i0, I{} + r0) | atLeastBits(j0 + 1, I{} + gw));
  else
#endif
    return laneBits(m & ((j0 - iota != c0) | (i0 != r0) | (j0 + 1 >= gw)));
}

// Cells (i, j..j+N-1): stepCell for N cells at once. kSlots: 2 where the blocks have slot 1
// (B pictures), else 1 (compiled apart: no test of the missing slot per vector).
template <typename L, int kSlots>
ARSEG_INLINE void stepLanes(const Step& st, int i, int j, typename L::I iota) {
  using F = typename L::F;
  using I = typename L::I;
  constexpr bool kBits = L::kCount == 16;  // comparisons into mask registers
  const size_t k = static_cast<size_t>(i) * st.gw + j;
  const F jf = __builtin_convertvector(iota + j, F);
  const F fi = static_cast<float>(i) - F{};
  F sumX = F{}, sumY = F{};
  I n = I{};
  unsigned used[2] = {0, 0};  // 16 lanes: the lanes with a usable prediction in each slot
  unsigned redo = 0;          // lanes to compute one cell at a time
  for (int s = 0; s < kSlots; ++s) {
    if (!st.has[s]) continue;
    const I d = loadInts<L>(st.ref[s] + k);
    unsigned todo;
#if ARSEG_MASK_LANES
    if constexpr (kBits)
      todo = laneBits(d);  // a test against zero (vptestmd)
    else
#endif
      todo = laneBits(d != 0);
    if (!todo) continue;
    const float* vxs = st.vx[s] + k;
    const float* vys = st.vy[s] + k;
    const F vx = loadLanes<L>(vxs), vy = loadLanes<L>(vys);
    // One pass per distinct distance among the lanes (mostly one).
    while (todo) {
      const int32_t dist = st.ref[s][k + __builtin_ctz(todo)];
      I m = I{};
      unsigned mBits;
#if ARSEG_MASK_LANES
      if constexpr (kBits)
        mBits = equalBits(d, I{} + dist);
      else
#endif
      {
        m = d == dist;
        mBits = laneBits(m);
      }
      todo &= ~mBits;
      const Source* r = st.find(dist);
      if (!r) continue;
      F rx = F{}, ry = F{};
      if (r->dx) redo |= sampleLanes<L>(st, *r, i, j, iota, jf, fi, vx, vy, vxs, vys, m, mBits, rx, ry);
#if ARSEG_MASK_LANES
      if constexpr (kBits) {
        sumX = selectBits(mBits, sumX, sumX + (vx + rx));
        sumY = selectBits(mBits, sumY, sumY + (vy + ry));
        used[s] |= mBits;
        continue;
      }
#endif
      sumX = m ? sumX + (vx + rx) : sumX;
      sumY = m ? sumY + (vy + ry) : sumY;
      n -= m;  // m is -1 on its lanes
    }
  }
  F outX, outY;  // 0 where no prediction
#if ARSEG_MASK_LANES
  if constexpr (kBits) {
    const F scale = selectBits(used[0] & used[1], F{} + 1.f, F{} + 0.5f);
    outX = sumX * scale;
    outY = sumY * scale;
    if (st.fallbackX) {
      const unsigned none = ~(used[0] | used[1]);
      outX = selectBits(none, outX, loadLanes<L>(st.fallbackX + k));
      outY = selectBits(none, outY, loadLanes<L>(st.fallbackY + k));
    }
  } else
#endif
  {
    const F scale = n == 2 ? F{} + 0.5f : F{} + 1.f;
    outX = sumX * scale;
    outY = sumY * scale;
    if (st.fallbackX) {
      const I none = n == 0;
      outX = none ? loadLanes<L>(st.fallbackX + k) : outX;
      outY = none ? loadLanes<L>(st.fallbackY + k) : outY;
    }
  }
  storeLanes<L>(st.outX + k, outX);
  storeLanes<L>(st.outY + k, outY);
  for (; redo; redo &= redo - 1) stepCell(st, i, j + __builtin_ctz(redo));
}

template <typename L, int kSlots>
ARSEG_INLINE void stepRows(const Step& st) {
  using I = typename L::I;
  constexpr int N = L::kCount;
  I iota;
  for (int l = 0; l < N; ++l) iota[l] = l;
  for (int i = 0; i < st.gh; ++i) {
    if (st.gw < N) {
      for (int j = 0; j < st.gw; ++j) stepCell(st, i, j);
      continue;
    }
    int j = 0;
    for (; j + N <= st.gw; j += N) stepLanes<L, kSlots>(st, i, j, iota);
    // The ragged end as one whole vector ending at the row's end: it rewrites a few cells with
    // the same values (out is none of the inputs).
    if (j < st.gw) stepLanes<L, kSlots>(st, i, st.gw - N, iota);
  }
}

}  // namespace

void composeStep(const BlockField& blocks, const StepReference* refs, size_t refCount, const MotionGrid* fallback,
                 MotionGrid& out) {
  std::vector<Source> sources;
  const Step st = prepare(blocks, refs, refCount, fallback, out, sources);
  simdDispatch([&](auto lanes) ARSEG_INLINE_LAMBDA {
    using L = std::conditional_t<(decltype(lanes)::kCount > 8 && !ARSEG_MASK_LANES), Lanes<8>, decltype(lanes)>;
    if (st.has[1])
      stepRows<L, 2>(st);
    else
      stepRows<L, 1>(st);
  });
}

void composeStepReference(const BlockField& blocks, const StepReference* refs, size_t refCount,
                          const MotionGrid* fallback, MotionGrid& out) {
  std::vector<Source> sources;
  const Step st = prepare(blocks, refs, refCount, fallback, out, sources);
  for (int i = 0; i < st.gh; ++i)
    for (int j = 0; j < st.gw; ++j) stepCell(st, i, j);
}

}  // namespace arseg
