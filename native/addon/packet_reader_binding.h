// JavaScript class NativePacketReader: decode(bytes, pts?) and flush() run on the thread pool
// and resolve with the frames that became ready; one call at a time.
#pragma once

#include <napi.h>

#include <memory>

#include "../video/packet_reader.h"
#include "frame_js.h"

namespace arseg {

class PacketReaderBinding : public Napi::ObjectWrap<PacketReaderBinding> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit PacketReaderBinding(const Napi::CallbackInfo& info);

 private:
  Napi::Value decode(const Napi::CallbackInfo& info);
  Napi::Value flush(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);
  Napi::Value motionExact(const Napi::CallbackInfo& info);
  Napi::Value motionSource(const Napi::CallbackInfo& info);

  Napi::Value run(Napi::Env env, Napi::Object self, std::function<void()> work);
  void checkIdle();
  void settle();

  std::unique_ptr<PacketReader> reader_;
  FrameMaker makeFrame_;  // builds the JavaScript frames (frame_js.h)
  bool busy_ = false;
  bool closing_ = false;
  double decodeErrors_ = 0;
  double skippedBeforeKeyframe_ = 0;
  bool motionExact_ = false;
  DecodedFrame::Source motionSource_ = DecodedFrame::Source::None;
};

}  // namespace arseg
