// Everything that happens to a decoded picture before it is handed out: numbering, keyframe
// policy, pixel conversion, motion-vector export and dense motion. Shared by the file/URL
// reader and the packet decoder so both produce identical frames.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "../motion/estimator.h"
#include "../motion/keyframe_composer.h"
#include "frame_converter.h"
#include "frame_request.h"
#include "libav_ptr.h"

namespace arseg {

class FramePipeline {
 public:
  explicit FramePipeline(FrameRequest request)
      : request_(std::move(request)), composer_(request_.motion, request_.keyframes) {}

  const FrameRequest& request() const { return request_; }

  // Takes a decoded picture in presentation order. `timeBase` converts its timestamps.
  // `position` is its place in the stream counting pictures the decoder dropped (see
  // VideoDecoder), or -1 when unknown: the index then follows the previous picture's.
  void push(const AVFrame* frame, AVRational timeBase, int64_t position = -1);
  // End of stream: frames held for motion composition come out.
  void flush();

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
  FrameRequest request_;
  KeyframeComposer composer_;
  FrameConverter converter_;
  MotionEstimator estimator_;  // motionSource Estimate only
  FieldEstimate estimate_;
  std::vector<int32_t> vectorScratch_;
  std::vector<DecodedFrame> composed_;
  std::deque<DecodedFrame> ready_;
  int64_t framesSeen_ = 0;
  int64_t nextIndex_ = 0;  // the index the next picture gets unless its position says more
  int64_t skipped_ = 0;
  int firstWidth_ = 0;
  int firstHeight_ = 0;
};

}  // namespace arseg
