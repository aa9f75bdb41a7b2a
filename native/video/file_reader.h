// Reads a video from a path or any URL libavformat opens (file, pipe, rtsp, http, ...):
// demuxes the best video stream, decodes it and hands out processed frames one at a time.
// Not thread-safe except abort(), which may be called from any thread to interrupt blocking
// I/O (a stalled network read) so that close() never hangs.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "video_decoder.h"
#include "frame_request.h"
#include "libav_ptr.h"

namespace arseg {

struct StreamInfo {
  std::string format;   // demuxer name
  std::string codec;    // codec name
  int width = 0;
  int height = 0;
  double fps = 0;         // average frame rate, 0 when unknown
  double duration = -1;   // seconds, -1 when unknown
  int64_t frameCount = -1;  // frames the container declares, -1 when unknown
  bool motionVectors = false;  // the codec exports motion vectors
  // Where the frames' motion comes from when motion or vectors are requested, else None.
  DecodedFrame::Source motionSource = DecodedFrame::Source::None;
};

class FileReader {
 public:
  FileReader(std::string source, FrameRequest request,
             std::map<std::string, std::string> formatOptions = {});
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Opens and probes the input; throws CodedError (ERR_NOT_FOUND, ERR_INVALID_DATA,
  // ERR_NO_VIDEO_STREAM, ERR_NO_MOTION_VECTORS, ...).
  void open();
  bool isOpen() const { return decoder_ != nullptr; }
  const StreamInfo& info() const { return info_; }

  // The next frame in presentation order; false at the end of the stream. A stream that ends
  // early (read error, truncation) first hands out every frame decoded before the damage,
  // then throws with framesDecoded set.
  bool next(DecodedFrame& out);

  void abort() { aborted_.store(true); }
  int64_t framesDelivered() const { return delivered_; }
  int64_t decodeErrors() const { return decoder_ ? decoder_->decodeErrors() : 0; }

 private:
  static int interruptCallback(void* opaque);
  void readPacket();
  void throwIfDamaged();

  std::string source_;
  FrameRequest request_;
  std::map<std::string, std::string> formatOptions_;
  std::atomic<bool> aborted_{false};
  FormatContextPtr format_;
  std::unique_ptr<VideoDecoder> decoder_;
  PacketPtr packet_;
  int streamIndex_ = -1;
  StreamInfo info_;
  bool inputDone_ = false;
  int readError_ = 0;
  int64_t delivered_ = 0;
};

}  // namespace arseg
