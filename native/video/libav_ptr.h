// RAII owners for every libav object the package touches. Each libav type is freed by its own
// function (often taking a pointer-to-pointer); these deleters make std::unique_ptr do it, so
// no code path (early return, exception) can leak a context, frame or packet.
#pragma once

#include <memory>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace arseg {

struct FormatContextDeleter {
  void operator()(AVFormatContext* ctx) const { avformat_close_input(&ctx); }
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* ctx) const { avcodec_free_context(&ctx); }
};
struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct PacketDeleter {
  void operator()(AVPacket* pkt) const { av_packet_free(&pkt); }
};
struct SwsContextDeleter {
  void operator()(SwsContext* ctx) const { sws_freeContext(ctx); }
};
struct ParserContextDeleter {
  void operator()(AVCodecParserContext* ctx) const { av_parser_close(ctx); }
};

using FormatContextPtr = std::unique_ptr<AVFormatContext, FormatContextDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsContextPtr = std::unique_ptr<SwsContext, SwsContextDeleter>;
using ParserContextPtr = std::unique_ptr<AVCodecParserContext, ParserContextDeleter>;

// An AVDictionary owned for the duration of a call that consumes it.
class Dictionary {
 public:
  Dictionary() = default;
  Dictionary(const Dictionary&) = delete;
  Dictionary& operator=(const Dictionary&) = delete;
  ~Dictionary() { av_dict_free(&dict_); }
  void set(const std::string& key, const std::string& value) { av_dict_set(&dict_, key.c_str(), value.c_str(), 0); }
  AVDictionary** address() { return &dict_; }
  AVDictionary* get() const { return dict_; }
  // After a call that took the dictionary by pointer through get() and may have freed it and
  // handed back another (avformat_find_stream_info's per-stream options): owns that one instead.
  void adopt(AVDictionary* dict) { dict_ = dict; }

 private:
  AVDictionary* dict_ = nullptr;
};

inline std::string avErrorText(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

inline FramePtr allocFrame() {
  FramePtr frame(av_frame_alloc());
  if (!frame) throw std::bad_alloc();
  return frame;
}

inline PacketPtr allocPacket() {
  PacketPtr pkt(av_packet_alloc());
  if (!pkt) throw std::bad_alloc();
  return pkt;
}

}  // namespace arseg
