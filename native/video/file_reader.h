// Reads a video from a path or any URL libavformat opens (file, pipe, rtsp, http, ...):
// demuxes the best video stream, decodes it and hands out processed frames one at a time.
// Not thread-safe except abort(), which may be called from any thread to interrupt blocking
// I/O (a stalled network read) so that close() never hangs.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "fifo_input.h"
#include "frame_request.h"
#include "libav_ptr.h"
#include "video_decoder.h"

namespace arseg {

struct StreamInfo {
  std::string format;  // demuxer name
  std::string codec;   // codec name
  int width = 0;
  int height = 0;
  double fps = 0;              // average frame rate, 0 when unknown or implausible (see open())
  double duration = -1;        // seconds, -1 when unknown
  int64_t frameCount = -1;     // frames the container declares, -1 when unknown
  bool motionVectors = false;  // the codec exports motion vectors
  // Where the frames' motion comes from when motion or vectors are requested, else None.
  DecodedFrame::Source motionSource = DecodedFrame::Source::None;
  // The container's display matrix, as the angle (0, 90, 180, 270) by which the decoded
  // pictures are to be rotated counter-clockwise for display (ffprobe's "rotation"). Frames
  // are handed out as decoded, not rotated.
  int rotation = 0;
  bool motionExact = false;  // ... with exact references (VideoDecoder::motionExact)
};

class FileReader {
 public:
  FileReader(std::string source, FrameRequest request, std::map<std::string, std::string> formatOptions = {});
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
  int64_t framesDropped() const { return decoder_ ? decoder_->framesDropped() : 0; }

 private:
  static int interruptCallback(void* opaque);
  void readPacket();
  // At the end of the input: why the container says it was cut part-way, or "" (see
  // docs/reading-video.md for what each container lets us tell).
  std::string endsCutShort() const;
  void learnSizeByDecoding();
  // ERR_INPUT_TOO_LARGE when a video stream's header states a size over the limit.
  void checkHeaderSize(const AVStream* stream) const;
  void throwIfDamaged();

  std::string source_;
  FrameRequest request_;
  std::map<std::string, std::string> formatOptions_;
  std::atomic<bool> aborted_{false};
  // Declared before format_, so that the format context using its AVIOContext is closed first.
  std::unique_ptr<FifoInput> fifo_;
  FormatContextPtr format_;
  std::unique_ptr<VideoDecoder> decoder_;
  PacketPtr packet_;
  int streamIndex_ = -1;
  StreamInfo info_;
  bool inputDone_ = false;
  int readError_ = 0;
  int64_t delivered_ = 0;
  // Evidence, at the end of the input, that it was cut part-way (see endsCutShort()).
  bool lastPacketCutShort_ = false;
  int64_t firstPacketPos_ = -1;
  std::string cutShort_;
};

}  // namespace arseg
