// Everything that happens to a decoded picture before it is handed out: numbering, keyframe
// policy, pixel conversion, motion-vector export with each vector's reference, and dense
// motion. Shared by the file/URL reader and the packet reader so both produce identical frames.
//
// Motion goes: libav's side data (motion_vectors.h) -> display-order references
// (reference_resolver.h, which may hold a frame until a picture it predicts from comes out)
// -> blocks on a grid (block_field.h) -> the composer (keyframe_composer.h, which holds frames
// until their references are composed). Estimated motion (request.motionSource Estimate,
// estimator.h) enters as blocks whose reference is exactly the previous picture.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "../motion/estimator.h"
#include "../motion/keyframe_composer.h"
#include "../motion/pyramid_cache.h"
#include "../motion/reference_resolver.h"
#include "frame_converter.h"
#include "frame_request.h"
#include "libav_ptr.h"

namespace arseg {

class FramePipeline {
 public:
  // MotionFill::Estimate keeps this many pictures behind the latest (H.264's largest picture
  // buffer): enough for the frames a B-pyramid holds back and the references they predict from.
  static constexpr int64_t kRecentPictures = 16;
  // ... and estimates a picture only when at least this share of its cells away from the edge
  // need it: a few stray intra blocks do not pay for an estimate of the whole picture.
  static constexpr float kMinFillShare = 0.005f;
  // ... and keeps the luma pyramids of this many pictures (LRU): a B-pyramid's fill matches
  // several pictures against the same reference, and a filled picture is often the next one's
  // reference. Each is about 1.4 floats per pixel of the finest level (1.3 MB at 1280x720).
  static constexpr size_t kFillPyramids = 4;

  // `nearestAnchorsAreExact`: the codec's references are always the nearest anchors
  // (codecRefsAreNearestAnchors), so vectors without an exact reference are exact anyway.
  FramePipeline(FrameRequest request, bool nearestAnchorsAreExact)
      : request_(std::move(request)),
        resolver_(nearestAnchorsAreExact, request_.vectors),
        composer_(request_.motion, request_.keyframes, request_.composition, request_.stride) {}

  const FrameRequest& request() const { return request_; }

  // Takes a decoded picture in presentation order. `timeBase` converts its timestamps.
  // `position` is its place in the stream counting pictures the decoder dropped (see
  // VideoDecoder), or -1 when unknown: the index then follows the previous picture's.
  void push(const AVFrame* frame, AVRational timeBase, int64_t position = -1);
  // End of stream: frames held for motion composition come out.
  void flush();
  // Frames held for references or composition.
  size_t held() const { return resolver_.pending() + composer_.pending(); }

  bool hasReady() const { return !ready_.empty(); }
  DecodedFrame popReady();
  size_t readyCount() const { return ready_.size(); }
  // Pictures taken so far (delivered or still held).
  int64_t framesSeen() const { return framesSeen_; }
  // Places in the stream skipped between the pictures taken (pictures the decoder dropped).
  int64_t framesSkipped() const { return skipped_; }
  // The size of the first picture taken (0 x 0 before it).
  int firstWidth() const { return firstWidth_; }
  int firstHeight() const { return firstHeight_; }

 private:
  // `estimate`: the estimate of the (single) frame in `resolved`, for estimated motion.
  void compose(std::vector<DecodedFrame>& resolved, const FieldEstimate* estimate = nullptr);
  // Estimated motion: the picture's field to the previous one, as vectors in the frame.
  void estimate(const AVFrame* frame, DecodedFrame& out);
  // MotionFill::Estimate: whether pictures are kept for it, and the fill itself (below).
  bool fillsMotion() const;
  void fillMotion(const DecodedFrame& f, BlockField& blocks);

  FrameRequest request_;
  ReferenceResolver resolver_;
  KeyframeComposer composer_;
  FrameConverter converter_;
  MotionEstimator estimator_;  // motionSource Estimate only
  FieldEstimate estimate_;
  bool haveEstimate_ = false;
  std::vector<int64_t> refPictures_;
  // MotionFill::Estimate: the latest pictures by display index (references to the decoder's
  // buffers, no copy), so that a frame composed later can be matched against the picture it
  // predicts from, and the pyramids built from them (same keys; an entry goes with its picture).
  std::map<int64_t, FramePtr> recentPictures_;
  PyramidCache fillPyramids_{kFillPyramids};
  FieldEstimate fillEstimate_;
  std::vector<int32_t> fillDistances_;
  std::vector<uint8_t> fillWanted_;  // the cells to fill, for the estimator (estimateField)
  // The pyramid of recent picture `index` (`picture`), from the cache or built into it.
  const LumaPyramid& fillPyramid(int64_t index, const AVFrame* picture, const EstimatorOptions& options);
  // The vectors of a composed frame the caller did not ask for: the next frame exports into
  // them instead of allocating (and page-faulting in) a few hundred KB again.
  std::vector<int32_t> spareVectors_;
  std::vector<DecodedFrame> resolved_;
  std::vector<DecodedFrame> composed_;
  std::deque<DecodedFrame> ready_;
  int64_t framesSeen_ = 0;
  int64_t nextIndex_ = 0;  // the index the next picture gets unless its position says more
  int64_t skipped_ = 0;
  int firstWidth_ = 0;
  int firstHeight_ = 0;
};

}  // namespace arseg
