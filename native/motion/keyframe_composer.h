// Turns per-frame block motion into the dense field each frame is given: either the direct
// displacement to its reference, or the displacement accumulated back to its keyframe.
//
// Composition follows the reference chain in decode order (docs/method.md, "Motion and the
// keyframe"). Decoders hand frames out in presentation order, so B-frames are held until the
// next anchor (I or P frame) arrives: the anchor is composed first, then the B-frames between
// the two anchors, exactly the order in which they were decoded.
//
// Assumptions, forced by what libavcodec exports (source = -1/+1, not a reference index):
//  - a block predicted from the past refers to the nearest past anchor, one from the future to
//    the nearest future anchor; B-frames are never references (encode with b-pyramid=none for
//    exact chains, and with one reference frame for exact P chains);
//  - a cell no inter block covers (intra-coded) has zero motion to the past anchor;
//  - a bi-predicted cell takes the mean of its two compositions.
// Estimated motion (BlockField::toPreviousPicture) refers exactly to the previous picture: such
// frames are all anchors, chained in presentation order, and the chain restarts at every
// keyframe, so the accumulated field is exact composition.
//
// Internally every anchor keeps a "root" field: its displacement to the chain's root, reset
// to zero at each keyframe that is an I-frame (nothing after it refers across it in a closed
// GOP). The field relative to a keyframe K is then solved from x = R_t(p) - R_K(p + x), which is
// exact when R_K is locally constant and costs nothing when R_K is zero (the default policy,
// where every keyframe is an I-frame).
#pragma once

#include <cstdint>
#include <vector>

#include "../video/frame_request.h"
#include "block_field.h"
#include "motion_grid.h"

namespace arseg {

class KeyframeComposer {
 public:
  KeyframeComposer(MotionMode mode, KeyframePolicy policy = {}) : mode_(mode), policy_(policy) {}

  // Takes frames in presentation order, with their rasterised blocks (ignored when the mode
  // is None), and appends the frames that are ready, in presentation order, with
  // keyframeIndex and (when asked for) motion filled in.
  void push(DecodedFrame frame, BlockField blocks, std::vector<DecodedFrame>& ready);
  // End of stream: releases every held frame. B-frames whose future anchor never came are
  // composed from their past predictions only.
  void flush(std::vector<DecodedFrame>& ready);
  // Frames held back waiting for their future anchor.
  size_t pending() const { return pending_.size(); }

 private:
  struct Held {
    DecodedFrame frame;
    BlockField blocks;
  };

  MotionGrid composeAnchor(BlockField& blocks) const;
  MotionGrid composeBetween(const BlockField& blocks, const MotionGrid* futureRoot) const;
  void emit(DecodedFrame frame, const MotionGrid& root, std::vector<DecodedFrame>& ready);
  void emitDirect(DecodedFrame frame, const BlockField& blocks, std::vector<DecodedFrame>& ready);
  void releasePending(const MotionGrid* futureRoot, std::vector<DecodedFrame>& ready);
  // Adaptive policy: whether the anchor `frame` (root field `root`, share of intra cells
  // `intraShare`) should become a keyframe.
  bool wantsKeyframe(const DecodedFrame& frame, const MotionGrid& root, float intraShare) const;

  MotionMode mode_;
  KeyframePolicy policy_;
  int64_t keyframeIndex_ = 0;
  std::vector<Held> pending_;
  bool haveAnchor_ = false;
  MotionGrid anchorRoot_;  // root field of the latest anchor
  MotionGrid keyRoot_;     // root field of the latest keyframe
  bool keyRootIsZero_ = true;
};

}  // namespace arseg
