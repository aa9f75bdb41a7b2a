#include "video_decoder.h"

#include "../common/coded_error.h"
#include "motion_vectors.h"

namespace arseg {

namespace {

std::string codecDisplayName(AVCodecID codecId) {
  const AVCodecDescriptor* desc = avcodec_descriptor_get(codecId);
  return desc ? desc->name : "unknown";
}

// Settles 'auto' to the bitstream or the estimator for this codec.
FrameRequest resolveMotionSource(FrameRequest request, AVCodecID codecId) {
  if (!request.needsMotionSideData()) return request;
  const bool exported = codecExportsMotionVectors(codecId);
  if (request.motionSource == MotionSource::Bitstream && !exported)
    throw CodedError("ERR_NO_MOTION_VECTORS",
                     "libavcodec exports no motion vectors for " + codecDisplayName(codecId) +
                         " (only H.264, MPEG-4 Part 2, MPEG-1/2 and H.263 do); use motionSource "
                         "'auto' or 'estimate' to estimate the motion from the pictures");
  if (request.motionSource == MotionSource::Auto)
    request.motionSource = exported ? MotionSource::Bitstream : MotionSource::Estimate;
  return request;
}

}  // namespace

VideoDecoder::VideoDecoder(AVCodecID codecId, const AVCodecParameters* params, AVRational timeBase,
                 FrameRequest request)
    : frame_(allocFrame()),
      timeBase_(timeBase),
      pipeline_(resolveMotionSource(std::move(request), codecId)) {
  const FrameRequest& req = pipeline_.request();
  const std::string name = codecDisplayName(codecId);
  const AVCodec* codec = avcodec_find_decoder(codecId);
  if (!codec) throw CodedError("ERR_UNSUPPORTED_CODEC", "no decoder for codec " + name);
  ctx_.reset(avcodec_alloc_context3(codec));
  if (!ctx_) throw std::bad_alloc();
  if (params) {
    const int ret = avcodec_parameters_to_context(ctx_.get(), params);
    if (ret < 0) throw CodedError("ERR_INVALID_DATA", "bad codec parameters: " + avErrorText(ret));
  }
  ctx_->pkt_timebase = timeBase;
  ctx_->thread_count = req.threads;
  if (req.needsMotionSideData() && req.motionSource == MotionSource::Bitstream) {
    ctx_->export_side_data |= AV_CODEC_EXPORT_DATA_MVS;
    // Frame threading exports vectors read from tables another thread may still be filling:
    // under load some frames came out with wrong vectors (test/motion.test.js caught it). Slice
    // threading keeps each picture's export on the thread that decoded it.
    ctx_->thread_type = FF_THREAD_SLICE;
  }
  const int ret = avcodec_open2(ctx_.get(), codec, nullptr);
  if (ret < 0)
    throw CodedError("ERR_UNSUPPORTED_CODEC", "cannot open the " + name + " decoder: " +
                                                  avErrorText(ret));
}

std::string VideoDecoder::codecName() const {
  const AVCodecDescriptor* desc = avcodec_descriptor_get(ctx_->codec_id);
  return desc ? desc->name : "unknown";
}

void VideoDecoder::countError(int err, const char* what) {
  ++decodeErrors_;
  if (pipeline_.request().strict)
    throw CodedError("ERR_DECODE", std::string(what) + ": " + avErrorText(err),
                     pipeline_.framesSeen());
}

void VideoDecoder::send(const AVPacket* packet) {
  if (drained_) return;
  for (;;) {
    const int ret = avcodec_send_packet(ctx_.get(), packet);
    if (ret == AVERROR(EAGAIN)) {  // output must be drained before it takes more input
      receiveAll();
      if (drained_) return;
      continue;
    }
    if (ret == AVERROR_EOF) return;  // already flushed
    if (ret < 0) countError(ret, "the decoder rejected a packet");
    break;
  }
  receiveAll();
  if (packet == nullptr && !drained_) {
    // End of stream: keep draining past per-frame errors, but never loop forever on a
    // decoder that will not report EOF.
    for (int attempt = 0; attempt < 64 && !drained_; ++attempt) receiveAll();
    if (!drained_) {
      drained_ = true;
      pipeline_.flush();
    }
  }
}

void VideoDecoder::receiveAll() {
  int consecutiveErrors = 0;
  for (;;) {
    const int ret = avcodec_receive_frame(ctx_.get(), frame_.get());
    if (ret == AVERROR(EAGAIN)) return;
    if (ret == AVERROR_EOF) {
      drained_ = true;
      pipeline_.flush();
      return;
    }
    if (ret < 0) {
      countError(ret, "the decoder failed on a frame");
      if (++consecutiveErrors >= 16) return;
      continue;
    }
    consecutiveErrors = 0;
    try {
      pipeline_.push(frame_.get(), timeBase_);
    } catch (...) {
      av_frame_unref(frame_.get());
      throw;
    }
    av_frame_unref(frame_.get());
  }
}

}  // namespace arseg
