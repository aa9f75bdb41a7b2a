// JavaScript class NativeVideoReader: open() and read() run on the thread pool and return
// Promises; one operation at a time (the TypeScript layer serialises calls and keeps a bounded
// read-ahead). close() interrupts blocking I/O at once and frees the reader as soon as no
// operation is in flight.
#pragma once

#include <napi.h>

#include <memory>

#include "../video/file_reader.h"
#include "frame_js.h"

namespace arseg {

class VideoReaderBinding : public Napi::ObjectWrap<VideoReaderBinding> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit VideoReaderBinding(const Napi::CallbackInfo& info);

 private:
  Napi::Value open(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);
  Napi::Value stats(const Napi::CallbackInfo& info);

  // Throws ERR_CLOSED / ERR_BUSY when an operation cannot start now.
  void checkIdle(Napi::Env env, bool needOpen);
  void settle();

  std::unique_ptr<FileReader> reader_;
  FrameMaker makeFrame_;  // builds the JavaScript frames (frame_js.h)
  bool busy_ = false;
  bool closing_ = false;
  double framesDelivered_ = 0;  // counters cached on the main thread after each operation
  double decodeErrors_ = 0;
  double framesDropped_ = 0;
};

}  // namespace arseg
