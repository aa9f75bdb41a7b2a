// Decodes an elementary stream handed over in chunks (e.g. Annex-B H.264 from a camera
// driver). A libavcodec parser splits the bytes into packets, so a chunk may hold part of a
// packet, one packet or several.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frame_request.h"
#include "libav_ptr.h"
#include "video_decoder.h"

namespace arseg {

class PacketReader {
 public:
  // `codec` is a libavcodec codec name ("h264", "hevc", "mpeg4", "mpeg2video", ...). With
  // `waitForKeyframe`, packets before the first one the parser marks as a keyframe are counted
  // and dropped instead of decoded: a live stream joined mid-GOP starts at its next keyframe
  // (an IDR or recovery point in H.264, an IRAP in HEVC, an I-picture where the parser says no
  // more), instead of decoding damaged pictures from missing references.
  // With `accessUnits`, every decode() call holds exactly one access unit (as a camera driver,
  // ROS 2 or Foxglove message does): the parser then hands each one on at once, instead of
  // holding it until the next one starts (a frame of latency on a live stream).
  PacketReader(const std::string& codec, FrameRequest request, bool waitForKeyframe = false, bool accessUnits = false);

  // Feeds bytes; `ptsMicros` (AV_NOPTS_VALUE when unknown) is attached to the packet that
  // starts in this chunk. Takes the buffer over: the parser reads up to
  // AV_INPUT_BUFFER_PADDING_SIZE bytes past the data, so it is padded with zeros here
  // (reserve that much capacity to avoid a reallocation).
  void decode(std::vector<uint8_t> bytes, int64_t ptsMicros);
  // End of stream: the parser's last packet and every frame still buffered come out.
  void flush();

  bool next(DecodedFrame& out);
  bool flushed() const { return flushed_; }
  int64_t decodeErrors() const { return decoder_->decodeErrors(); }
  // Packets dropped while waiting for the first keyframe.
  int64_t skippedBeforeKeyframe() const { return skippedBeforeKeyframe_; }
  std::string codecName() const { return decoder_->codecName(); }
  bool motionExact() const { return decoder_->motionExact(); }
  // Where motion comes from, once settled for the codec (vectors or motion requested), else None.
  DecodedFrame::Source motionSource() const {
    const FrameRequest& r = decoder_->pipeline().request();
    if (!r.needsMotionSideData()) return DecodedFrame::Source::None;
    return r.motionSource == MotionSource::Estimate ? DecodedFrame::Source::Estimated : DecodedFrame::Source::Bitstream;
  }

 private:
  void sendParsed(const uint8_t* data, int size);

  ParserContextPtr parser_;
  std::unique_ptr<VideoDecoder> decoder_;
  PacketPtr packet_;
  bool flushed_ = false;
  bool waiting_ = false;  // no keyframe seen yet (waitForKeyframe)
  int64_t skippedBeforeKeyframe_ = 0;
  int64_t delivered_ = 0;
};

}  // namespace arseg
