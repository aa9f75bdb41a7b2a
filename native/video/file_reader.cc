#include "file_reader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/coded_error.h"
#include "motion_vectors.h"

namespace arseg {

namespace {

// Frames per second: the stream's average rate, else libavformat's guess (r_frame_rate), each
// only when it is a plausible video rate. With no frame to measure, libavformat gives the
// time base as r_frame_rate (12800 fps for an empty MP4 track): 0 (unknown) then.
double frameRate(const AVStream* stream) {
  for (const AVRational rate : {stream->avg_frame_rate, stream->r_frame_rate}) {
    if (rate.num <= 0 || rate.den <= 0) continue;
    const double fps = av_q2d(rate);
    if (fps > 0 && fps <= 1000) return fps;
  }
  return 0;
}

int displayRotation(const AVStream* stream) {
  const int32_t* matrix = nullptr;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 31, 102)  // FFmpeg 6.1: side data in codecpar
  const AVPacketSideData* sd = av_packet_side_data_get(stream->codecpar->coded_side_data,
                                                       stream->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  if (sd && sd->size >= 9 * sizeof(int32_t)) matrix = reinterpret_cast<const int32_t*>(sd->data);
#else
  size_t size = 0;
  const uint8_t* sd = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (sd && size >= 9 * sizeof(int32_t)) matrix = reinterpret_cast<const int32_t*>(sd);
#endif
  if (!matrix) return 0;
  const double angle = av_display_rotation_get(matrix);  // counter-clockwise, in [-180, 180]
  if (std::isnan(angle)) return 0;
  const long quarter = std::lround(angle / 90.0);  // the nearest quarter turn
  return static_cast<int>(((quarter % 4) + 4) % 4) * 90;
}

}  // namespace

FileReader::FileReader(std::string source, FrameRequest request, std::map<std::string, std::string> formatOptions)
    : source_(std::move(source)),
      request_(std::move(request)),
      formatOptions_(std::move(formatOptions)),
      packet_(allocPacket()) {}

int FileReader::interruptCallback(void* opaque) { return static_cast<FileReader*>(opaque)->aborted_.load() ? 1 : 0; }

void FileReader::open() {
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) throw std::bad_alloc();
  raw->interrupt_callback.callback = &FileReader::interruptCallback;
  raw->interrupt_callback.opaque = this;
  const std::string fifo = FifoInput::fifoPath(source_);
  if (!fifo.empty()) {
    try {
      fifo_ = std::make_unique<FifoInput>(fifo, aborted_);
    } catch (...) {
      avformat_free_context(raw);
      throw;
    }
    raw->pb = fifo_->avio();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  }
  Dictionary options;
  for (const auto& kv : formatOptions_) options.set(kv.first, kv.second);
  // avformat_open_input frees the context itself on failure.
  int ret = avformat_open_input(&raw, source_.c_str(), nullptr, options.address());
  if (ret < 0) {
    if (aborted_) throw CodedError("ERR_ABORTED", "opening " + source_ + " was aborted");
    if (ret == AVERROR(ENOENT)) throw CodedError("ERR_NOT_FOUND", "no such file: " + source_);
    if (ret == AVERROR_INVALIDDATA)
      throw CodedError("ERR_INVALID_DATA", source_ + " is not a recognised media file (empty or unknown format)");
    if (ret == AVERROR_PROTOCOL_NOT_FOUND)
      throw CodedError("ERR_UNSUPPORTED_PROTOCOL", "no libavformat protocol opens " + source_);
    if (ret == AVERROR(ENOMEM)) throw CodedError("ERR_OUT_OF_MEMORY", "opening " + source_ + ": out of memory");
    throw CodedError("ERR_OPEN", "cannot open " + source_ + ": " + avErrorText(ret));
  }
  format_.reset(raw);
  // Sizes the container's header states are checked before anything is decoded; probing then
  // decodes at most pictures within the limit (max_pixels of its decoders).
  for (unsigned i = 0; i < format_->nb_streams; ++i) checkHeaderSize(format_->streams[i]);
  const int64_t limit = request_.maxPixels > 0 ? std::min(request_.maxPixels, kMaxPixels) : kMaxPixels;
  std::vector<Dictionary> probeOptions(format_->nb_streams);
  std::vector<AVDictionary*> probeDicts(format_->nb_streams);
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    probeOptions[i].set("max_pixels", std::to_string(limit));
    probeDicts[i] = probeOptions[i].get();
  }
  ret = avformat_find_stream_info(format_.get(), probeDicts.empty() ? nullptr : probeDicts.data());
  // avformat_find_stream_info may replace the dictionaries (it removes the options it used)
  for (unsigned i = 0; i < format_->nb_streams && i < probeDicts.size(); ++i) probeOptions[i].adopt(probeDicts[i]);
  if (ret < 0) {
    if (aborted_) throw CodedError("ERR_ABORTED", "probing " + source_ + " was aborted");
    if (ret == AVERROR(ENOMEM)) throw CodedError("ERR_OUT_OF_MEMORY", "probing " + source_ + ": out of memory");
    throw CodedError("ERR_INVALID_DATA", "cannot read stream information from " + source_ + ": " + avErrorText(ret));
  }
  streamIndex_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (streamIndex_ < 0) throw CodedError("ERR_NO_VIDEO_STREAM", source_ + " has no video stream");
  // Only the chosen stream is demuxed for us; the rest is dropped by the demuxer.
  for (unsigned i = 0; i < format_->nb_streams; ++i)
    if (static_cast<int>(i) != streamIndex_) format_->streams[i]->discard = AVDISCARD_ALL;

  const AVStream* stream = format_->streams[streamIndex_];
  checkHeaderSize(stream);
  decoder_ = std::make_unique<VideoDecoder>(stream->codecpar->codec_id, stream->codecpar, stream->time_base, request_);
  info_.format = format_->iformat ? format_->iformat->name : "";
  info_.codec = decoder_->codecName();
  info_.width = stream->codecpar->width;
  info_.height = stream->codecpar->height;
  info_.fps = frameRate(stream);
  info_.rotation = displayRotation(stream);
  if (stream->duration != AV_NOPTS_VALUE)
    info_.duration = stream->duration * av_q2d(stream->time_base);
  else if (format_->duration != AV_NOPTS_VALUE)
    info_.duration = format_->duration / double(AV_TIME_BASE);
  info_.frameCount = stream->nb_frames > 0 ? stream->nb_frames : -1;
  info_.motionVectors = codecExportsMotionVectors(stream->codecpar->codec_id);
  info_.motionExact = info_.motionVectors && decoder_->motionExact();
  const FrameRequest& resolved = decoder_->pipeline().request();
  if (resolved.needsMotionSideData())
    info_.motionSource = resolved.motionSource == MotionSource::Estimate ? DecodedFrame::Source::Estimated
                                                                         : DecodedFrame::Source::Bitstream;
  if (info_.width <= 0 || info_.height <= 0) learnSizeByDecoding();
}

void FileReader::learnSizeByDecoding() {
  // The probe's decoders refuse pictures over the pixel limit, and then leave the size unknown
  // (as do a few streams that state none): decode up to the first picture now, so that open()
  // refuses an over-large input at once and info() reports the size. The frames decoded stay
  // queued for next().
  FramePipeline& pipeline = decoder_->pipeline();
  while (pipeline.framesSeen() == 0 && !decoder_->drained()) {
    if (aborted_) throw CodedError("ERR_ABORTED", "probing " + source_ + " was aborted");
    if (inputDone_)
      decoder_->send(nullptr);
    else
      readPacket();
  }
  if (const CodedError* refused = decoder_->failure()) throw CodedError(refused->code(), refused->what());
  info_.width = pipeline.firstWidth();
  info_.height = pipeline.firstHeight();
}

void FileReader::checkHeaderSize(const AVStream* stream) const {
  const AVCodecParameters* par = stream->codecpar;
  if (par->codec_type == AVMEDIA_TYPE_VIDEO && par->width > 0 && par->height > 0)
    checkPictureSize(par->width, par->height, request_.maxPixels);
}

void FileReader::readPacket() {
  const int ret = av_read_frame(format_.get(), packet_.get());
  if (aborted_) {
    av_packet_unref(packet_.get());
    throw CodedError("ERR_ABORTED", "reading " + source_ + " was aborted", delivered_);
  }
  if (ret == AVERROR(EAGAIN)) return;  // non-blocking protocols: try again
  if (ret == AVERROR(ENOMEM))
    throw CodedError("ERR_OUT_OF_MEMORY", "reading " + source_ + ": out of memory", delivered_);
  if (ret < 0) {
    if (ret != AVERROR_EOF) readError_ = ret;
    if (ret == AVERROR_EOF) cutShort_ = endsCutShort();
    inputDone_ = true;
    decoder_->send(nullptr);
    return;
  }
  if (packet_->stream_index == streamIndex_) {
    // A demuxer that reads a packet of a stated size marks it corrupt when the input ends first.
    lastPacketCutShort_ = (packet_->flags & AV_PKT_FLAG_CORRUPT) != 0;
    if (firstPacketPos_ < 0 && packet_->pos >= 0) firstPacketPos_ = packet_->pos;
    try {
      decoder_->send(packet_.get());
    } catch (...) {
      av_packet_unref(packet_.get());
      throw;
    }
  }
  av_packet_unref(packet_.get());
}

std::string FileReader::endsCutShort() const {
  if (lastPacketCutShort_) return "its last packet is cut short";
  // MPEG-TS: packets of a fixed size (188, 192 or 204 bytes) from the first one on; the input
  // ending inside one was cut. (At a packet boundary a cut cannot be told from an end.)
  const AVInputFormat* fmt = format_->iformat;
  if (fmt && std::strcmp(fmt->name, "mpegts") == 0 && format_->pb && firstPacketPos_ >= 0) {
    int64_t size = 0;
    if (av_opt_get_int(format_->priv_data, "ts_packetsize", 0, &size) >= 0 && size > 0) {
      const int64_t end = avio_tell(format_->pb);
      const int64_t partial = (end - firstPacketPos_) % size;
      if (partial != 0)
        return "it ends " + std::to_string(partial) + " bytes into a " + std::to_string(size) +
               "-byte transport packet";
    }
  }
  return "";
}

void FileReader::throwIfDamaged() {
  if (readError_ != 0)
    throw CodedError(
        "ERR_READ",
        "reading " + source_ + " failed after " + std::to_string(delivered_) + " frames: " + avErrorText(readError_),
        delivered_);
  const bool ioError = format_->pb && format_->pb->error < 0 && format_->pb->error != AVERROR_EOF;
  // Frames the decoder dropped are no truncation (they are counted in framesDropped): the
  // stream is short when fewer pictures were read than the container declares.
  const int64_t read = decoder_->packetsSent();
  if (ioError || (info_.frameCount > 0 && read < info_.frameCount))
    throw CodedError("ERR_TRUNCATED",
                     source_ + " ends early: " + std::to_string(delivered_) + " of " +
                         std::to_string(info_.frameCount) + " frames decoded",
                     delivered_);
  if (!cutShort_.empty())
    throw CodedError("ERR_TRUNCATED",
                     source_ + " was cut part-way (" + cutShort_ + ") after " + std::to_string(delivered_) + " frames",
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
  if (const CodedError* refused = decoder_->failure()) throw CodedError(refused->code(), refused->what(), delivered_);
  throwIfDamaged();
  if (delivered_ == 0) {
    // An end without one frame is no success (a track with no samples, or every packet refused).
    if (decoder_->decodeErrors() > 0)
      throw CodedError("ERR_INVALID_DATA",
                       "not one frame of " + source_ + " could be decoded (" +
                           std::to_string(decoder_->decodeErrors()) + " packets or frames rejected)",
                       0);
    throw CodedError("ERR_EMPTY_INPUT", source_ + " has a video stream with no frames", 0);
  }
  return false;
}

}  // namespace arseg
