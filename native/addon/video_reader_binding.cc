#include "video_reader_binding.h"

#include "../common/coded_error.h"
#include "frame_js.h"
#include "js_errors.h"
#include "promise_worker.h"
#include "request_options.h"

namespace arseg {

void VideoReaderBinding::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(
      env, "NativeVideoReader",
      {InstanceMethod<&VideoReaderBinding::open>("open"), InstanceMethod<&VideoReaderBinding::read>("read"),
       InstanceMethod<&VideoReaderBinding::close>("close"), InstanceMethod<&VideoReaderBinding::stats>("stats")});
  exports.Set("NativeVideoReader", cls);
}

// new NativeVideoReader(source: string, options: object | undefined, makeFrame: function)
VideoReaderBinding::VideoReaderBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VideoReaderBinding>(info) {
  Napi::Env env = info.Env();
  guardSync(env, [&] {
    if (info.Length() < 1 || !info[0].IsString())
      throw CodedError("ERR_INVALID_ARG", "source must be a string (a path or a URL)");
    const std::string source = info[0].As<Napi::String>().Utf8Value();
    if (source.empty()) throw CodedError("ERR_INVALID_ARG", "source must not be empty");
    if (source.find('\0') != std::string::npos)
      throw CodedError("ERR_INVALID_ARG", "source must not contain NUL characters");
    Napi::Value options = info.Length() > 1 ? info[1] : env.Undefined();
    FrameRequest request = parseFrameRequest(options);
    std::map<std::string, std::string> formatOptions;
    if (options.IsObject()) formatOptions = parseFormatOptions(options.As<Napi::Object>().Get("formatOptions"));
    makeFrame_ = FrameMaker(info.Length() > 2 ? info[2] : env.Undefined(), request);
    reader_ = std::make_unique<FileReader>(source, std::move(request), std::move(formatOptions));
    return env.Undefined();
  });
}

void VideoReaderBinding::checkIdle(Napi::Env env, bool needOpen) {
  if (!reader_ || closing_) throw CodedError("ERR_CLOSED", "the video reader is closed");
  if (busy_) throw CodedError("ERR_BUSY", "another operation on this reader is in flight");
  if (needOpen && !reader_->isOpen()) throw CodedError("ERR_NOT_OPEN", "call open() first");
  (void)env;
}

void VideoReaderBinding::settle() {
  busy_ = false;
  framesDelivered_ = double(reader_->framesDelivered());
  decodeErrors_ = double(reader_->decodeErrors());
  framesDropped_ = double(reader_->framesDropped());
  if (closing_) reader_.reset();
}

Napi::Value VideoReaderBinding::open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    checkIdle(env, false);
    if (reader_->isOpen()) throw CodedError("ERR_BUSY", "the reader is already open");
    busy_ = true;
    FileReader* reader = reader_.get();
    return PromiseWorker::start(
        env, info.This().As<Napi::Object>(), [reader] { reader->open(); },
        [reader](Napi::Env e) -> Napi::Value {
          const StreamInfo& s = reader->info();
          Napi::Object o = Napi::Object::New(e);
          o.Set("format", s.format);
          o.Set("codec", s.codec);
          o.Set("width", s.width);
          o.Set("height", s.height);
          o.Set("fps", s.fps > 0 ? Napi::Number::New(e, s.fps) : e.Null());
          o.Set("duration", s.duration < 0 ? e.Null() : Napi::Number::New(e, s.duration));
          o.Set("frameCount", s.frameCount < 0 ? e.Null() : Napi::Number::New(e, double(s.frameCount)));
          o.Set("motionVectors", s.motionVectors);
          o.Set("motionSource",
                s.motionSource == DecodedFrame::Source::None
                    ? e.Null()
                    : Napi::String::New(e,
                                        s.motionSource == DecodedFrame::Source::Estimated ? "estimated" : "bitstream"));
          o.Set("rotation", s.rotation);
          o.Set("motionExact", s.motionExact);
          return o;
        },
        [this] { settle(); });
  });
}

// read(): Promise<frame | null>; null at the end of the stream.
Napi::Value VideoReaderBinding::read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    checkIdle(env, true);
    busy_ = true;
    FileReader* reader = reader_.get();
    auto frame = std::make_shared<DecodedFrame>();
    auto got = std::make_shared<bool>(false);
    return PromiseWorker::start(
        env, info.This().As<Napi::Object>(), [reader, frame, got] { *got = reader->next(*frame); },
        [this, frame, got](Napi::Env e) -> Napi::Value {
          if (!*got) return e.Null();
          return makeFrame_(e, std::move(*frame));
        },
        [this] { settle(); });
  });
}

// close(): frees the reader now, or as soon as the operation in flight ends (which close()
// interrupts). Idempotent.
Napi::Value VideoReaderBinding::close(const Napi::CallbackInfo& info) {
  if (!reader_) return info.Env().Undefined();
  reader_->abort();
  closing_ = true;
  if (!busy_) reader_.reset();
  return info.Env().Undefined();
}

Napi::Value VideoReaderBinding::stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("framesDelivered", framesDelivered_);
  o.Set("decodeErrors", decodeErrors_);
  o.Set("framesDropped", framesDropped_);
  return o;
}

}  // namespace arseg
