// JavaScript class NativePacketDecoder: decode(bytes, pts?) and flush() run on the thread pool
// and resolve with the frames that became ready; one call at a time.
#pragma once

#include <napi.h>

#include <memory>

#include "../video/packet_decoder.h"

namespace arseg {

class PacketDecoderBinding : public Napi::ObjectWrap<PacketDecoderBinding> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit PacketDecoderBinding(const Napi::CallbackInfo& info);

 private:
  Napi::Value decode(const Napi::CallbackInfo& info);
  Napi::Value flush(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);

  Napi::Value run(Napi::Env env, Napi::Object self, std::function<void()> work);
  void checkIdle();
  void settle();

  std::unique_ptr<PacketDecoder> decoder_;
  int stride_ = 8;
  bool busy_ = false;
  bool closing_ = false;
  double decodeErrors_ = 0;
};

}  // namespace arseg
