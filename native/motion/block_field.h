// Rasterises block motion vectors onto a dense grid of cells. Each cell has two prediction
// slots, like a bi-predicted block: slot 0 takes vectors with source < 0 (list 0 in H.264/HEVC,
// the past in MPEG), slot 1 those with source > 0. A slot holds a displacement and the signed
// display-order distance to the picture it predicts from (+ = past); distance 0 marks an
// empty slot. A cell with both slots empty is intra-coded.
//
// This is the entry of the motion composition for any source of vectors (the bitstream, or an
// estimator): it needs no libav.
#pragma once

#include <cstdint>
#include <vector>

#include "motion_grid.h"

namespace arseg {

struct BlockField {
  MotionGrid vec[2];            // per slot: displacement in pixels (the frame at p matches the
                                // reference at p + d); only meaningful where ref is nonzero
  std::vector<int32_t> ref[2];  // per slot and cell: distance to the reference, 0 = empty;
                                // vec[1]/ref[1] stay empty when no vector has source > 0

  int width() const { return vec[0].width; }
  int height() const { return vec[0].height; }
  int stride() const { return vec[0].stride; }
  size_t size() const { return vec[0].size(); }
  bool hasSlot(int s) const { return !ref[s].empty(); }
  // Whether cell k has no prediction at all.
  bool intra(size_t k) const { return ref[0][k] == 0 && (ref[1].empty() || ref[1][k] == 0); }

  // Estimated motion (estimator.h): every vector refers to the picture just before, so a
  // keyframe of any picture type restarts the chain exactly (nothing after it refers across it).
  bool sequential = false;
  // Cells whose vector is a guess (estimated motion that no patch matched: new content, a scene
  // cut): composed with their vector, but counted as intra-coded by the adaptive keyframe
  // policy. Empty when there are none to flag.
  std::vector<uint8_t> unexplained;
  bool unexplainedAt(size_t k) const { return !unexplained.empty() && unexplained[k]; }
};

// `vectors` holds `count` rows of 10 int32 columns:
// source, w, h, src_x, src_y, dst_x, dst_y, motion_x, motion_y, motion_scale,
// and `refs` one distance per row (+ = that many frames back in display order, - = ahead,
// 0 = no prediction: the row is skipped). The displacement of a block is
// (motion_x, motion_y) / motion_scale. A block spans [dst - size / 2, dst + size / 2); a cell
// takes the vector of the block containing its centre (the last such block of its slot).
BlockField rasteriseBlocks(const int32_t* vectors, const int32_t* refs, size_t count, int frameWidth, int frameHeight,
                           int stride);
// The same into `field`, reusing its storage (a field of an earlier frame: no allocation per
// frame). Displacements of empty slots are left as they were: nothing reads them.
void rasteriseBlocks(const int32_t* vectors, const int32_t* refs, size_t count, int frameWidth, int frameHeight,
                     int stride, BlockField& field);

// The distinct nonzero distances the cells of `b` hold, ascending, into `out` (cleared first).
// Vectorised (common/simd.h); distinctDistancesReference is the plain definition it is tested
// against (native/tests/selftest.cc).
void distinctDistances(const BlockField& b, std::vector<int32_t>& out);
void distinctDistancesReference(const BlockField& b, std::vector<int32_t>& out);

}  // namespace arseg
