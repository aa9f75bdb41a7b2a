#include "packet_reader_binding.h"

#include <cmath>
#include <vector>

#include "../common/coded_error.h"
#include "frame_js.h"
#include "js_errors.h"
#include "promise_worker.h"
#include "request_options.h"

namespace arseg {

void PacketReaderBinding::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(
      env, "NativePacketReader",
      {InstanceMethod<&PacketReaderBinding::decode>("decode"), InstanceMethod<&PacketReaderBinding::flush>("flush"),
       InstanceMethod<&PacketReaderBinding::close>("close"), InstanceMethod<&PacketReaderBinding::stats>("stats"),
       InstanceAccessor<&PacketReaderBinding::motionExact>("motionExact"),
       InstanceAccessor<&PacketReaderBinding::motionSource>("motionSource")});
  exports.Set("NativePacketReader", cls);
}

// new NativePacketReader(codec: string, options: object | undefined, makeFrame: function)
PacketReaderBinding::PacketReaderBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PacketReaderBinding>(info) {
  Napi::Env env = info.Env();
  guardSync(env, [&] {
    if (info.Length() < 1 || !info[0].IsString() || info[0].As<Napi::String>().Utf8Value().empty())
      throw CodedError("ERR_INVALID_ARG", "option 'codec' must be a codec name such as 'h264'");
    const Napi::Value options = info.Length() > 1 ? info[1] : env.Undefined();
    FrameRequest request = parseFrameRequest(options);
    const auto flag = [&](const char* name) {
      if (!options.IsObject()) return false;
      const Napi::Value v = options.As<Napi::Object>().Get(name);
      if (v.IsUndefined()) return false;
      if (!v.IsBoolean()) throw CodedError("ERR_INVALID_ARG", "option '" + std::string(name) + "' must be a boolean");
      return v.As<Napi::Boolean>().Value();
    };
    const bool waitForKeyframe = flag("waitForKeyframe");
    const bool accessUnits = flag("accessUnits");
    makeFrame_ = FrameMaker(info.Length() > 2 ? info[2] : env.Undefined(), request);
    reader_ = std::make_unique<PacketReader>(info[0].As<Napi::String>().Utf8Value(), std::move(request),
                                             waitForKeyframe, accessUnits);
    motionExact_ = reader_->motionExact();
    motionSource_ = reader_->motionSource();
    return env.Undefined();
  });
}

void PacketReaderBinding::checkIdle() {
  if (!reader_ || closing_) throw CodedError("ERR_CLOSED", "the packet reader is closed");
  if (busy_) throw CodedError("ERR_BUSY", "another operation on this packet reader is in flight");
}

void PacketReaderBinding::settle() {
  busy_ = false;
  decodeErrors_ = double(reader_->decodeErrors());
  skippedBeforeKeyframe_ = double(reader_->skippedBeforeKeyframe());
  if (closing_) reader_.reset();
}

Napi::Value PacketReaderBinding::run(Napi::Env env, Napi::Object self, std::function<void()> work) {
  busy_ = true;
  PacketReader* reader = reader_.get();
  auto frames = std::make_shared<std::vector<DecodedFrame>>();
  return PromiseWorker::start(
      env, self,
      [reader, frames, work] {
        work();
        DecodedFrame f;
        for (;;) {
          try {
            if (!reader->next(f)) break;
          } catch (const CodedError&) {
            // The frames before the failure are handed out now; the failure is sticky, so the
            // next call reports it.
            if (frames->empty()) throw;
            break;
          }
          frames->push_back(std::move(f));
        }
      },
      [this, frames](Napi::Env e) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, frames->size());
        for (size_t i = 0; i < frames->size(); ++i) out.Set(i, makeFrame_(e, std::move((*frames)[i])));
        return out;
      },
      [this] { settle(); });
}

// decode(bytes: Uint8Array, ptsSeconds?: number): Promise<frame[]>
Napi::Value PacketReaderBinding::decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    checkIdle();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw CodedError("ERR_INVALID_ARG", "packet must be a Uint8Array or Buffer");
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    int64_t pts = AV_NOPTS_VALUE;
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
      if (!info[1].IsNumber() || !std::isfinite(info[1].As<Napi::Number>().DoubleValue()))
        throw CodedError("ERR_INVALID_ARG", "pts must be a finite number of seconds");
      pts = static_cast<int64_t>(std::llround(info[1].As<Napi::Number>().DoubleValue() * 1e6));
    }
    // The bytes are copied once: JavaScript may reuse its buffer as soon as decode() returns,
    // and the parser keeps partial packets across calls anyway.
    auto data = std::make_shared<std::vector<uint8_t>>();
    data->reserve(bytes.ByteLength() + AV_INPUT_BUFFER_PADDING_SIZE);
    data->assign(bytes.Data(), bytes.Data() + bytes.ByteLength());
    PacketReader* reader = reader_.get();
    return run(env, info.This().As<Napi::Object>(), [reader, data, pts] { reader->decode(std::move(*data), pts); });
  });
}

Napi::Value PacketReaderBinding::flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    checkIdle();
    PacketReader* reader = reader_.get();
    return run(env, info.This().As<Napi::Object>(), [reader] { reader->flush(); });
  });
}

Napi::Value PacketReaderBinding::close(const Napi::CallbackInfo& info) {
  closing_ = true;
  if (!busy_) reader_.reset();
  return info.Env().Undefined();
}

// 'bitstream', 'estimated', or null when neither vectors nor motion were asked for.
Napi::Value PacketReaderBinding::motionSource(const Napi::CallbackInfo& info) {
  if (motionSource_ == DecodedFrame::Source::None) return info.Env().Null();
  return Napi::String::New(info.Env(), motionSource_ == DecodedFrame::Source::Estimated ? "estimated" : "bitstream");
}

Napi::Value PacketReaderBinding::motionExact(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), motionExact_);
}

Napi::Value PacketReaderBinding::stats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("decodeErrors", decodeErrors_);
  o.Set("skippedBeforeKeyframe", skippedBeforeKeyframe_);
  return o;
}

}  // namespace arseg
