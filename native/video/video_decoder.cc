#include "video_decoder.h"

#include <algorithm>
#include <iterator>

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
  if (request.motionSource == MotionSource::Bitstream && !exported) {
    const bool hevc = codecId == AV_CODEC_ID_HEVC;
    throw CodedError("ERR_NO_MOTION_VECTORS",
                     "libavcodec exports no motion vectors for " + codecDisplayName(codecId) +
                         (hevc ? " (this build's libav lacks ar-seg-native's patch: the prebuild "
                                 "and scripts/setup.sh's source build have it)"
                               : " (only H.264, HEVC with ar-seg-native's patched libav, "
                                 "MPEG-4 Part 2, MPEG-1/2 and H.263 do)") +
                         "; use motionSource 'auto' or 'estimate' to estimate the motion from the "
                         "pictures");
  }
  if (request.motionSource == MotionSource::Auto)
    request.motionSource = exported ? MotionSource::Bitstream : MotionSource::Estimate;
  return request;
}

}  // namespace

VideoDecoder::VideoDecoder(AVCodecID codecId, const AVCodecParameters* params, AVRational timeBase,
                           FrameRequest request)
    : frame_(allocFrame()),
      timeBase_(timeBase),
      pipeline_(resolveMotionSource(std::move(request), codecId), codecRefsAreNearestAnchors(codecId)),
      motionExact_(pipeline_.request().motionSource == MotionSource::Estimate || codecMotionIsExact(codecId)) {
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
  // The container's header, when it gives a size: refused before the decoder allocates anything.
  if (params && params->width > 0 && params->height > 0) checkPictureSize(params->width, params->height, req.maxPixels);
  ctx_->opaque = this;
  ctx_->get_buffer2 = &VideoDecoder::getBuffer;
  if (req.needsMotionSideData() && req.motionSource == MotionSource::Bitstream) {
    ctx_->export_side_data |= AV_CODEC_EXPORT_DATA_MVS;
    // Stock frame threading exports vectors read from tables another thread may still be
    // filling: under load some frames came out with wrong vectors (test/reader.test.js caught
    // it). Slice threading keeps each picture's export on the thread that decoded it. The
    // patched H.264 and HEVC decoders wait for the picture they export (patches/ffmpeg/), so
    // they keep libavcodec's threading.
    const bool threadSafeExport =
        libavExportsExactRefs() && (codecId == AV_CODEC_ID_H264 || codecId == AV_CODEC_ID_HEVC);
    if (!threadSafeExport) ctx_->thread_type = FF_THREAD_SLICE;
  }
  // Frame threading holds a frame per thread before the first comes out: a live source wants
  // each frame as soon as its packet is in.
  if (req.lowDelay) ctx_->thread_type = FF_THREAD_SLICE;
  const int ret = avcodec_open2(ctx_.get(), codec, nullptr);
  if (ret < 0) throw CodedError("ERR_UNSUPPORTED_CODEC", "cannot open the " + name + " decoder: " + avErrorText(ret));
}

std::string VideoDecoder::codecName() const {
  const AVCodecDescriptor* desc = avcodec_descriptor_get(ctx_->codec_id);
  return desc ? desc->name : "unknown";
}

int VideoDecoder::getBuffer(AVCodecContext* ctx, AVFrame* frame, int flags) {
  auto* self = static_cast<VideoDecoder*>(ctx->opaque);
  const int64_t limit = self->pipeline_.request().maxPixels;
  const int64_t pixels = int64_t(frame->width) * frame->height;
  if (pixels > (limit > 0 ? std::min(limit, kMaxPixels) : kMaxPixels) || frame->width > kMaxDimension ||
      frame->height > kMaxDimension) {
    self->refusedWidth_.store(frame->width);
    self->refusedHeight_.store(frame->height);
    self->refused_.store(true);
    return AVERROR(ERANGE);
  }
  return avcodec_default_get_buffer2(ctx, frame, flags);
}

void VideoDecoder::stopIfRefused() {
  if (!refused_.load() || failure_) return;
  try {
    checkPictureSize(refusedWidth_.load(), refusedHeight_.load(), pipeline_.request().maxPixels,
                     pipeline_.framesSeen());
    failure_ = std::make_unique<CodedError>("ERR_INPUT_TOO_LARGE", "a picture was refused", pipeline_.framesSeen());
  } catch (const CodedError& e) {
    failure_ = std::make_unique<CodedError>(e);
  }
  // The pictures decoded before the refused one come out (decoders hold some back); every
  // later one is refused by getBuffer again.
  avcodec_send_packet(ctx_.get(), nullptr);
  for (int attempt = 0; attempt < 64 && !drained_; ++attempt) receiveAll();
  if (!drained_) {
    drained_ = true;
    pipeline_.flush();
  }
}

int64_t VideoDecoder::positionOf(const AVFrame* frame) {
  if (!ptsKnown_ || frame->pts == AV_NOPTS_VALUE) return -1;
  // Pictures come out in presentation order, after every packet presented before them was sent:
  // the packets still pending with a smaller pts were dropped by the decoder.
  const auto own = pendingPts_.lower_bound(frame->pts);
  const int64_t position = presentedBefore_ + std::distance(pendingPts_.begin(), own);
  auto end = own;
  if (end != pendingPts_.end() && *end == frame->pts) ++end;  // its own packet
  presentedBefore_ = position + 1;
  pendingPts_.erase(pendingPts_.begin(), end);
  return position;
}

void VideoDecoder::countError(int err, const char* what) {
  if (refused_.load()) return;  // a picture over the limit, not damage: stopIfRefused reports it
  if (err == AVERROR(ENOMEM))
    throw CodedError("ERR_OUT_OF_MEMORY", std::string(what) + ": out of memory", pipeline_.framesSeen());
  ++decodeErrors_;
  if (pipeline_.request().strict)
    throw CodedError("ERR_DECODE", std::string(what) + ": " + avErrorText(err), pipeline_.framesSeen());
}

void VideoDecoder::send(const AVPacket* packet) {
  if (drained_) return;
  if (packet && !(packet->flags & AV_PKT_FLAG_DISCARD)) {
    ++packetsSent_;
    if (ptsKnown_) {
      // Without timestamps (raw elementary streams), or when pictures stop carrying their
      // packets' (hundreds pending), positions cannot be told: indices then follow each other.
      if (packet->pts == AV_NOPTS_VALUE || pendingPts_.size() >= kMaxPendingPts) {
        ptsKnown_ = false;
        pendingPts_.clear();
      } else {
        pendingPts_.insert(packet->pts);
      }
    }
  }
  sendPacket(packet);
  stopIfRefused();  // a decoder may also conceal a refused picture instead of reporting an error
}

void VideoDecoder::sendPacket(const AVPacket* packet) {
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
      pipeline_.push(frame_.get(), timeBase_, positionOf(frame_.get()));
    } catch (...) {
      av_frame_unref(frame_.get());
      throw;
    }
    av_frame_unref(frame_.get());
  }
}

}  // namespace arseg
