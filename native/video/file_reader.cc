#include "file_reader.h"

#include <cerrno>

#include "../common/coded_error.h"
#include "motion_vectors.h"

namespace arseg {

FileReader::FileReader(std::string source, FrameRequest request,
                       std::map<std::string, std::string> formatOptions)
    : source_(std::move(source)),
      request_(std::move(request)),
      formatOptions_(std::move(formatOptions)),
      packet_(allocPacket()) {}

int FileReader::interruptCallback(void* opaque) {
  return static_cast<FileReader*>(opaque)->aborted_.load() ? 1 : 0;
}

void FileReader::open() {
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) throw std::bad_alloc();
  raw->interrupt_callback.callback = &FileReader::interruptCallback;
  raw->interrupt_callback.opaque = this;
  Dictionary options;
  for (const auto& kv : formatOptions_) options.set(kv.first, kv.second);
  // avformat_open_input frees the context itself on failure.
  int ret = avformat_open_input(&raw, source_.c_str(), nullptr, options.address());
  if (ret < 0) {
    if (aborted_) throw CodedError("ERR_ABORTED", "opening " + source_ + " was aborted");
    if (ret == AVERROR(ENOENT)) throw CodedError("ERR_NOT_FOUND", "no such file: " + source_);
    if (ret == AVERROR_INVALIDDATA)
      throw CodedError("ERR_INVALID_DATA",
                       source_ + " is not a recognised media file (empty or unknown format)");
    if (ret == AVERROR_PROTOCOL_NOT_FOUND)
      throw CodedError("ERR_UNSUPPORTED_PROTOCOL", "no libavformat protocol opens " + source_);
    throw CodedError("ERR_OPEN", "cannot open " + source_ + ": " + avErrorText(ret));
  }
  format_.reset(raw);
  ret = avformat_find_stream_info(format_.get(), nullptr);
  if (ret < 0) {
    if (aborted_) throw CodedError("ERR_ABORTED", "probing " + source_ + " was aborted");
    throw CodedError("ERR_INVALID_DATA", "cannot read stream information from " + source_ +
                                             ": " + avErrorText(ret));
  }
  streamIndex_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (streamIndex_ < 0) throw CodedError("ERR_NO_VIDEO_STREAM", source_ + " has no video stream");
  // Only the chosen stream is demuxed for us; the rest is dropped by the demuxer.
  for (unsigned i = 0; i < format_->nb_streams; ++i)
    if (static_cast<int>(i) != streamIndex_) format_->streams[i]->discard = AVDISCARD_ALL;

  const AVStream* stream = format_->streams[streamIndex_];
  decoder_ = std::make_unique<VideoDecoder>(stream->codecpar->codec_id, stream->codecpar,
                                       stream->time_base, request_);
  info_.format = format_->iformat ? format_->iformat->name : "";
  info_.codec = decoder_->codecName();
  info_.width = stream->codecpar->width;
  info_.height = stream->codecpar->height;
  const AVRational rate = stream->avg_frame_rate.den ? stream->avg_frame_rate : stream->r_frame_rate;
  info_.fps = rate.den ? av_q2d(rate) : 0;
  if (stream->duration != AV_NOPTS_VALUE)
    info_.duration = stream->duration * av_q2d(stream->time_base);
  else if (format_->duration != AV_NOPTS_VALUE)
    info_.duration = format_->duration / double(AV_TIME_BASE);
  info_.frameCount = stream->nb_frames > 0 ? stream->nb_frames : -1;
  info_.motionVectors = codecExportsMotionVectors(stream->codecpar->codec_id);
  const FrameRequest& resolved = decoder_->pipeline().request();
  if (resolved.needsMotionSideData())
    info_.motionSource = resolved.motionSource == MotionSource::Estimate
                             ? DecodedFrame::Source::Estimated
                             : DecodedFrame::Source::Bitstream;
}

void FileReader::readPacket() {
  const int ret = av_read_frame(format_.get(), packet_.get());
  if (aborted_) {
    av_packet_unref(packet_.get());
    throw CodedError("ERR_ABORTED", "reading " + source_ + " was aborted", delivered_);
  }
  if (ret == AVERROR(EAGAIN)) return;  // non-blocking protocols: try again
  if (ret < 0) {
    if (ret != AVERROR_EOF) readError_ = ret;
    inputDone_ = true;
    decoder_->send(nullptr);
    return;
  }
  if (packet_->stream_index == streamIndex_) {
    try {
      decoder_->send(packet_.get());
    } catch (...) {
      av_packet_unref(packet_.get());
      throw;
    }
  }
  av_packet_unref(packet_.get());
}

void FileReader::throwIfDamaged() {
  if (readError_ != 0)
    throw CodedError("ERR_READ", "reading " + source_ + " failed after " +
                                     std::to_string(delivered_) + " frames: " +
                                     avErrorText(readError_),
                     delivered_);
  const bool ioError = format_->pb && format_->pb->error < 0 && format_->pb->error != AVERROR_EOF;
  if (ioError || (info_.frameCount > 0 && delivered_ < info_.frameCount))
    throw CodedError("ERR_TRUNCATED", source_ + " ends early: " + std::to_string(delivered_) +
                                          " of " + std::to_string(info_.frameCount) +
                                          " frames decoded",
                     delivered_);
}

bool FileReader::next(DecodedFrame& out) {
  if (!decoder_) throw CodedError("ERR_NOT_OPEN", "the reader is not open");
  FramePipeline& pipeline = decoder_->pipeline();
  while (!pipeline.hasReady() && !decoder_->drained()) {
    if (aborted_) throw CodedError("ERR_ABORTED", "reading " + source_ + " was aborted", delivered_);
    if (inputDone_)
      decoder_->send(nullptr);
    else
      readPacket();
  }
  if (pipeline.hasReady()) {
    out = pipeline.popReady();
    ++delivered_;
    return true;
  }
  throwIfDamaged();
  return false;
}

}  // namespace arseg
