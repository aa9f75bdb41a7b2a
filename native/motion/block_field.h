// Rasterises libavcodec's block motion vectors onto a dense grid, one grid per prediction
// direction (past and future reference), with a mask of the cells that a block of that
// direction covers. Cells no inter block covers are intra-coded (or not predicted from that
// direction).
#pragma once

#include <cstdint>
#include <vector>

#include "motion_grid.h"

namespace arseg {

struct BlockField {
  MotionGrid past;    // displacement into the nearest past reference
  MotionGrid future;  // displacement into the nearest future reference; empty when no block
                      // of the frame looks ahead (every I- and P-frame)
  std::vector<uint8_t> hasPast;
  std::vector<uint8_t> hasFuture;  // empty together with `future`
  // Every vector refers to the picture just before this one in presentation order (estimated
  // motion, estimator.h): the composer then chains frames in presentation order, each one an
  // anchor whatever its picture type.
  bool toPreviousPicture = false;
  // Cells whose vector is a guess (estimated motion that no patch matched: new content, a scene
  // cut): composed with their vector, but counted as intra-coded by the adaptive keyframe
  // policy. Empty when there are none to flag.
  std::vector<uint8_t> unexplained;
};

// `vectors` holds `count` rows of 10 int32 columns:
// source, w, h, src_x, src_y, dst_x, dst_y, motion_x, motion_y, motion_scale.
// The displacement of a block is (motion_x, motion_y) / motion_scale: the current frame at p
// matches the reference at p + d. A cell takes the vector of the block containing its centre.
BlockField rasteriseBlocks(const int32_t* vectors, size_t count, int frameWidth, int frameHeight,
                           int stride);

}  // namespace arseg
