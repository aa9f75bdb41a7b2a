// A libavcodec decoder feeding a FramePipeline: packets in, processed frames out. When the
// request needs motion, its source is settled here, once: the bitstream's vectors (libavcodec's
// export switched on) when the codec's decoder exports them, else the motion estimator
// (request.motionSource 'auto'); motionSource 'bitstream' on a codec without vectors is refused
// up front (ERR_NO_MOTION_VECTORS) rather than silently producing zero motion.
#pragma once

#include <cstdint>
#include <string>

#include "frame_pipeline.h"
#include "libav_ptr.h"

namespace arseg {

class VideoDecoder {
 public:
  // `params` may be null (raw packet input): the decoder then learns everything in-band.
  VideoDecoder(AVCodecID codecId, const AVCodecParameters* params, AVRational timeBase,
          FrameRequest request);

  // Sends one packet, or nullptr to signal the end of the stream, and moves every picture the
  // decoder yields into the pipeline. A packet the decoder rejects is counted (and throws
  // ERR_DECODE in strict mode): decoders conceal damage, so one bad packet need not end a stream.
  void send(const AVPacket* packet);

  FramePipeline& pipeline() { return pipeline_; }
  bool drained() const { return drained_; }
  int64_t decodeErrors() const { return decodeErrors_; }
  AVCodecContext* context() { return ctx_.get(); }
  std::string codecName() const;

 private:
  void receiveAll();
  void countError(int err, const char* what);

  CodecContextPtr ctx_;
  FramePtr frame_;
  AVRational timeBase_;
  FramePipeline pipeline_;
  bool drained_ = false;
  int64_t decodeErrors_ = 0;
};

}  // namespace arseg
