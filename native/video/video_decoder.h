// A libavcodec decoder feeding a FramePipeline: packets in, processed frames out. When the
// request needs motion, its source is settled here, once: the bitstream's vectors (libavcodec's
// export switched on) when the codec's decoder exports them, else the motion estimator
// (request.motionSource 'auto'); motionSource 'bitstream' on a codec without vectors is refused
// up front (ERR_NO_MOTION_VECTORS) rather than silently producing zero motion.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "../common/coded_error.h"
#include "frame_pipeline.h"
#include "libav_ptr.h"

namespace arseg {

class VideoDecoder {
 public:
  // `params` may be null (raw packet input): the decoder then learns everything in-band.
  VideoDecoder(AVCodecID codecId, const AVCodecParameters* params, AVRational timeBase, FrameRequest request);

  // Sends one packet, or nullptr to signal the end of the stream, and moves every picture the
  // decoder yields into the pipeline. A packet the decoder rejects is counted (and throws
  // ERR_DECODE in strict mode): decoders conceal damage, so one bad packet need not end a stream.
  void send(const AVPacket* packet);

  FramePipeline& pipeline() { return pipeline_; }
  // True at the end of the stream, and after a picture over the pixel limit (failure() is then set).
  bool drained() const { return drained_; }
  // ERR_INPUT_TOO_LARGE once a picture over the pixel limit was refused: the frames decoded
  // before it are in the pipeline, to be handed out before this is thrown. Null otherwise.
  const CodedError* failure() const { return failure_.get(); }
  int64_t decodeErrors() const { return decodeErrors_; }
  // Packets sent (one coded picture each; those the demuxer marks to discard not counted).
  int64_t packetsSent() const { return packetsSent_; }
  // Pictures the decoder dropped: places skipped between pictures, and, once drained, packets
  // that never gave a picture after the last one. Counted only while every packet has a pts.
  int64_t framesDropped() const {
    return pipeline_.framesSkipped() + (drained_ && ptsKnown_ ? int64_t(pendingPts_.size()) : 0);
  }
  AVCodecContext* context() { return ctx_.get(); }
  std::string codecName() const;
  // Whether motion follows exact references (codecMotionIsExact): false for H.264 on a libav
  // without the patch, where composition assumes the nearest anchor.
  bool motionExact() const { return motionExact_; }

 private:
  void sendPacket(const AVPacket* packet);
  void receiveAll();
  void countError(int err, const char* what);
  // Picture buffers go through here: a picture over the pixel limit is refused before it is
  // allocated (the size comes from the bitstream's header, which may change mid-stream).
  static int getBuffer(AVCodecContext* ctx, AVFrame* frame, int flags);
  // After a refusal (on the caller's thread, after each decoder call): records the error and
  // drains the frames decoded before the refused picture into the pipeline.
  void stopIfRefused();

  CodecContextPtr ctx_;
  FramePtr frame_;
  AVRational timeBase_;
  FramePipeline pipeline_;
  bool motionExact_;
  bool drained_ = false;
  int64_t decodeErrors_ = 0;
  // Set by getBuffer, which frame-threaded decoders call from their own threads.
  std::atomic<bool> refused_{false};
  std::atomic<int> refusedWidth_{0};
  std::atomic<int> refusedHeight_{0};
  std::unique_ptr<CodedError> failure_;
  // The pts of packets sent whose pictures have not come out yet: a picture's place in the
  // stream is the number of packets presented before it, dropped ones included.
  std::multiset<int64_t> pendingPts_;
  static constexpr size_t kMaxPendingPts = 512;  // far above any decoder's reorder delay
  int64_t presentedBefore_ = 0;
  bool ptsKnown_ = true;
  int64_t packetsSent_ = 0;
  int64_t positionOf(const AVFrame* frame);
};

}  // namespace arseg
