// One step of the bilinear composition (keyframe_composer.h), cell by cell: a frame's field to
// the root of its chain from its rasterised blocks and the fields of the frames it predicts
// from. For a cell p with predictions (distance d, vector v) the field is the mean over its
// usable predictions of v + R_{t-d}(p + v), R sampled bilinearly within kEdgeInsetPixels of
// the frame's edge; a cell without a usable prediction takes the fallback field at p (zero
// without one).
//
// The hot loop of composition (once per cell per frame), hence vectorised (common/simd.h),
// with the plain loop it must match exactly kept beside it: both evaluate the same float
// operations in the same order, without fused multiply-adds, so every SIMD path gives the
// plain loop's fields bit for bit (tested in native/tests/selftest.cc and
// test/motion-simd.test.js).
#pragma once

#include <cstddef>
#include <cstdint>

#include "block_field.h"
#include "motion_grid.h"

namespace arseg {

// Where a step lands within this many pixels of the frame's edge, or beyond it, the field is
// read at that distance inside instead. Blocks at the edge predict content that was partly
// outside their reference (the encoder's vectors there are guesses, and the chain would carry
// their errors inward); one macroblock in, the motion is known. Measured in
// bench/motion-accuracy.js: with several references or B-frames the edge cells' errors
// otherwise reach the interior within a few steps.
constexpr int kEdgeInsetPixels = 16;

// Samples a field where cell (i, j) lands after moving by (mx, my) pixels, within the inset.
struct Follower {
  const MotionGrid* grid;
  float inv, uMin, uMax, vMin, vMax;
  explicit Follower(const MotionGrid& g) : grid(&g), inv(1.f / g.stride) {
    const int inset = (kEdgeInsetPixels + g.stride - 1) / g.stride;
    const bool x = g.width > 2 * inset + 1, y = g.height > 2 * inset + 1;
    uMin = x ? float(inset) : 0.f;
    uMax = float(g.width - 1 - (x ? inset : 0));
    vMin = y ? float(inset) : 0.f;
    vMax = float(g.height - 1 - (y ? inset : 0));
  }
  void operator()(int i, int j, float mx, float my, float& ox, float& oy) const {
    float u = j + mx * inv, v = i + my * inv;
    u = u < uMin ? uMin : (u > uMax ? uMax : u);
    v = v < vMin ? vMin : (v > vMax ? vMax : v);
    grid->sample(u, v, ox, oy);
  }
};

// A distinct reference distance of the frame being composed.
struct StepReference {
  int32_t distance = 0;               // display-order distance (block_field.h)
  bool usable = false;                // false: a prediction from it counts as missing
  const MotionGrid* field = nullptr;  // its root field, of the blocks' size; nullptr: zero
                                      // (the reference is the chain's root)
};

// Writes every cell of `out` (resized to the blocks' grid; its old contents do not matter).
// `refs` lists every nonzero distance the cells hold (others count as missing); `fallback`,
// of the blocks' size, or nullptr for zero, is what cells without a usable prediction keep.
void composeStep(const BlockField& blocks, const StepReference* refs, size_t refCount, const MotionGrid* fallback,
                 MotionGrid& out);

// The plain loop, one cell at a time: the reference composeStep is tested against.
void composeStepReference(const BlockField& blocks, const StepReference* refs, size_t refCount,
                          const MotionGrid* fallback, MotionGrid& out);

}  // namespace arseg
