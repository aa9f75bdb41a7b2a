// Turns per-frame block motion into the dense field each frame is given: either the direct
// displacement to its reference, or the displacement accumulated back to its keyframe.
//
// Entry: frames in display order, each with its blocks rasterised (block_field.h): per cell up
// to two predictions, each a displacement and the display-order distance to the picture it
// predicts from. Where those distances come from (the bitstream's exact references, the
// nearest-anchor assumption, an estimator) does not matter here: reference_resolver.h.
//
// Composition follows the real reference graph: any frame may be a reference (B-pyramids,
// several references). A frame is composed once every picture it predicts from has been: a
// frame predicting from a later one (a B-frame) is held until that one arrives; frames come
// out in display order. Chains are acyclic because references precede in decode order.
//
// Two compositions (Composition in frame_request.h):
//
// Bilinear (the default). Every frame keeps a "root" field: its displacement to the root of
// its chain, the latest keyframe that is an I-frame (in a closed GOP nothing after it refers
// across it). For a cell p with a prediction (distance d, vector v) of frame t, the
// composition is v + R_r(p + v), R_r the root field of r = t - d sampled bilinearly; a
// bi-predicted cell takes the mean of its two. A cell without a usable prediction (intra) keeps
// the root field of a fallback frame at p (zero motion relative to it): the previous frame if
// composed, else the nearest past reference, else the latest composed frame. The field relative
// to a keyframe K that is not the chain's root is solved from x = R_t(p) - R_K(p + x).
//   Open GOPs: pictures shown before an I-frame keyframe but decoded after it ("leading"
// pictures) belong to the previous chain and may predict from the I-frame, whose place in the
// previous chain the bitstream does not give. It is estimated from the leading pictures' cells
// that predict from both the I-frame and a picture of the previous chain ("bridging"), then
// corrected as a whole so that the leading pictures' fields are smooth across cells that go
// through the I-frame to different degrees (bi-predicted blocks carry symmetric vector errors
// that cancel in their prediction, not in the estimate); where no cell ties the two chains, the
// I-frame is taken as still relative to the latest frame before it.
//
// Official (the AR-Seg pre-processing, generate_compressed_dataset_camvid.py mergeMotion): per
// pixel (the blocks must be rasterised at stride 1), each step rounded to whole pixels (half to
// even, as numpy), the landing position clipped to the frame, and chained: frame t at p takes
// the position that its reference r holds at the landing point, or the landing point itself
// when r is the keyframe or before it. A pixel uses its slot-0 (list 0) prediction, else its
// slot-1 one. Intra pixels follow the fallback frame at the same pixel (the official code:
// reference index 0 with zero motion). Fields are whole pixels; at a stride above 1 a cell
// gives the value of the pixel at its centre (rounded down).
//
// Only recent frames are kept as references (kWindow); a prediction from an older or unknown
// frame counts as missing.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "../video/frame_request.h"
#include "block_field.h"
#include "motion_grid.h"

namespace arseg {

class KeyframeComposer {
 public:
  // `stride` is the cell size of the fields handed out; with Composition::Official the blocks
  // pushed must be rasterised at stride 1.
  KeyframeComposer(MotionMode mode, KeyframePolicy policy = {}, Composition composition = Composition::Bilinear,
                   int stride = 8)
      : mode_(mode), policy_(policy), composition_(composition), stride_(stride) {}
  // Hands its grids to the process's pool (recycled_storage.h), for the next reader's first frames.
  ~KeyframeComposer();
  KeyframeComposer(const KeyframeComposer&) = delete;
  KeyframeComposer& operator=(const KeyframeComposer&) = delete;

  // Takes frames in display order, with their rasterised blocks (ignored when the mode is
  // None), and appends the frames that are ready, in display order, with keyframeIndex and
  // (when asked for) motion filled in.
  void push(DecodedFrame frame, BlockField blocks, std::vector<DecodedFrame>& ready);
  // End of stream: releases every held frame, composed from what is available.
  void flush(std::vector<DecodedFrame>& ready);
  // Frames held back (waiting for a reference, or for an earlier frame to come out).
  size_t pending() const { return held_.size() + composed_.size(); }
  // The blocks of a frame already composed, for the next frame to be rasterised into
  // (rasteriseBlocks reuses their storage); empty when none is spare.
  BlockField spareBlocks();

  // Frames remembered as references behind the latest one (H.264/HEVC hold at most 16).
  static constexpr int64_t kWindow = 18;
  // A stream that never sends the picture some frames wait for cannot make us buffer
  // without bound: past this many held frames the oldest is composed with what there is.
  static constexpr size_t kMaxHeld = 32;

 private:
  struct Node {
    int64_t root = -1;     // Bilinear: the chain's root (-1: the stream's start). Official: the keyframe.
    MotionGrid field;      // displacement to the root (Official: to the keyframe, whole pixels)
    bool isRoot = false;   // Bilinear: an I-frame keyframe, root of its own chain
    int64_t oldRoot = -1;  // ... and the chain before it
    bool bridged = false;  // oldField estimated (bridge())
    MotionGrid oldField;   // its displacement to oldRoot
  };
  struct Held {
    DecodedFrame frame;
    BlockField blocks;
    std::vector<int32_t> refs;  // distinct distances its cells predict from
  };
  // Where a prediction's reference field comes from, for one frame's composition.
  struct Source {
    enum Kind { Missing, Zero, Field, Land } kind = Missing;  // Land: Official, r <= keyframe
    const MotionGrid* field = nullptr;
  };

  void process(bool atEnd, std::vector<DecodedFrame>& ready);
  bool isReady(const Held& h) const;
  void compose(Held& h);
  void composeBilinear(Held& h, Node& node);
  void composeOfficial(Held& h, Node& node);
  int64_t chainOf(int64_t index) const;     // Bilinear: the latest root at or before index
  int64_t keyframeOf(int64_t index) const;  // the latest keyframe at or before index
  Source lookup(int64_t ref, int64_t chain, bool allowBridge);
  Source fallback(const Held& h, int64_t chain);
  void bridge(Node& root, int64_t rootIndex, int64_t chain);
  void refineBridge(Node& root, int64_t rootIndex, int64_t chain);
  bool wantsKeyframe(const DecodedFrame& frame, const MotionGrid& toKey, float intraShare) const;
  void emit(DecodedFrame frame, std::vector<DecodedFrame>& ready);
  void emitDirect(DecodedFrame frame, const BlockField& blocks, std::vector<DecodedFrame>& ready);
  void evict();
  // Grids and blocks of frames no longer needed are reused for later frames: at 1280x720 a
  // frame's grids are a few hundred kB, and allocating (and zeroing) them anew per frame cost
  // more than composing them.
  MotionGrid takeGrid(int width, int height, int stride);  // contents arbitrary
  void recycle(MotionGrid&& grid);
  void recycle(BlockField&& blocks);

  MotionMode mode_;
  KeyframePolicy policy_;
  Composition composition_;
  int stride_;

  std::map<int64_t, Held> held_;              // waiting for references
  std::map<int64_t, DecodedFrame> composed_;  // composed, waiting for earlier frames
  std::map<int64_t, Node> nodes_;             // composed frames, by display index
  std::set<int64_t> roots_;                   // Bilinear: I-frame keyframes (any keyframe of
                                              // estimated motion: BlockField::sequential)
  std::set<int64_t> keyframes_;               // every keyframe known so far
  int64_t lastArrived_ = -1;
  std::vector<MotionGrid> spareGrids_;
  std::vector<BlockField> spareBlocks_;
  static constexpr size_t kSpares = 8;

  // The keyframe of the frames being emitted.
  int64_t keyframeIndex_ = 0;
  int64_t keyRoot_ = -1;
  MotionGrid keyField_;  // its field (Bilinear: displacement to keyRoot_)
  bool keyFieldIsZero_ = true;
};

}  // namespace arseg
