#include "packet_reader.h"

#include <climits>

#include "../common/coded_error.h"

namespace arseg {

namespace {

AVCodecID codecByName(const std::string& name) {
  const AVCodecDescriptor* desc = avcodec_descriptor_get_by_name(name.c_str());
  if (!desc || desc->type != AVMEDIA_TYPE_VIDEO)
    throw CodedError("ERR_UNSUPPORTED_CODEC", "unknown video codec '" + name + "'");
  return desc->id;
}

constexpr AVRational kMicroseconds{1, 1000000};

}  // namespace

PacketReader::PacketReader(const std::string& codec, FrameRequest request, bool waitForKeyframe, bool accessUnits)
    : packet_(allocPacket()), waiting_(waitForKeyframe) {
  const AVCodecID id = codecByName(codec);
  request.lowDelay = request.lowDelay || accessUnits;
  decoder_ = std::make_unique<VideoDecoder>(id, nullptr, kMicroseconds, std::move(request));
  parser_.reset(av_parser_init(id));
  if (!parser_) throw CodedError("ERR_UNSUPPORTED_CODEC", "no bitstream parser for " + codec);
  if (accessUnits) parser_->flags |= PARSER_FLAG_COMPLETE_FRAMES;
}

void PacketReader::sendParsed(const uint8_t* data, int size) {
  // key_frame is -1 for parsers that do not set it: then an I-picture is the keyframe.
  const bool key = parser_->key_frame == 1 || (parser_->key_frame < 0 && parser_->pict_type == AV_PICTURE_TYPE_I);
  if (waiting_) {
    if (!key) {
      ++skippedBeforeKeyframe_;
      return;
    }
    waiting_ = false;
  }
  // The packet borrows the parser's buffer; avcodec_send_packet copies what it keeps.
  packet_->data = const_cast<uint8_t*>(data);
  packet_->size = size;
  packet_->pts = parser_->pts;
  packet_->dts = parser_->dts;
  packet_->flags = key ? AV_PKT_FLAG_KEY : 0;
  decoder_->send(packet_.get());
  packet_->data = nullptr;
  packet_->size = 0;
}

void PacketReader::decode(std::vector<uint8_t> bytes, int64_t ptsMicros) {
  if (flushed_) throw CodedError("ERR_CLOSED", "decode() after flush()");
  size_t size = bytes.size();
  bytes.resize(size + AV_INPUT_BUFFER_PADDING_SIZE, 0);
  const uint8_t* data = bytes.data();
  while (size > 0) {
    uint8_t* out = nullptr;
    int outSize = 0;
    const int chunk = size > INT_MAX / 2 ? INT_MAX / 2 : static_cast<int>(size);
    const int used =
        av_parser_parse2(parser_.get(), decoder_->context(), &out, &outSize, data, chunk, ptsMicros, AV_NOPTS_VALUE, 0);
    if (used < 0) throw CodedError("ERR_INVALID_DATA", "the bitstream parser failed");
    data += used;
    size -= static_cast<size_t>(used);
    ptsMicros = AV_NOPTS_VALUE;  // only the first packet of the chunk starts here
    if (outSize > 0) sendParsed(out, outSize);
    if (used == 0 && outSize == 0) break;  // the parser made no progress: nothing more to take
  }
}

void PacketReader::flush() {
  if (flushed_) return;
  flushed_ = true;
  uint8_t* out = nullptr;
  int outSize = 0;
  av_parser_parse2(parser_.get(), decoder_->context(), &out, &outSize, nullptr, 0, AV_NOPTS_VALUE, AV_NOPTS_VALUE, 0);
  if (outSize > 0) sendParsed(out, outSize);
  decoder_->send(nullptr);
}

bool PacketReader::next(DecodedFrame& out) {
  FramePipeline& pipeline = decoder_->pipeline();
  if (!pipeline.hasReady()) {
    // a picture over the pixel limit ends the stream, after the frames decoded before it
    if (const CodedError* refused = decoder_->failure()) throw CodedError(refused->code(), refused->what(), delivered_);
    return false;
  }
  ++delivered_;
  out = pipeline.popReady();
  return true;
}

}  // namespace arseg
