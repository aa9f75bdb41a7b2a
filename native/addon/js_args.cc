#include "js_args.h"

#include <cmath>
#include <cstdint>

#include "../common/coded_error.h"

namespace arseg {

void invalidArg(const std::string& message) { throw CodedError("ERR_INVALID_ARG", message); }

int integerIn(const Napi::Value& v, const std::string& name, int lo, int hi) {
  if (!v.IsNumber()) invalidArg("'" + name + "' must be an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < lo || d > hi)
    invalidArg("'" + name + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
               v.ToString().Utf8Value());
  return static_cast<int>(d);
}

Napi::Float32Array float32Array(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    invalidArg(name + " must be a Float32Array");
  return v.As<Napi::Float32Array>();
}

void checkLength(const Napi::Float32Array& a, size_t expected, const std::string& what, const std::string& shape) {
  if (a.ElementLength() != expected)
    throw CodedError("ERR_SHAPE", what + " holds " + std::to_string(a.ElementLength()) + " values, " + shape + " " +
                                      std::to_string(expected));
}

bool overlaps(const Napi::TypedArray& a, const Napi::TypedArray& b) {
  const auto start = [](const Napi::TypedArray& t) {
    return reinterpret_cast<uintptr_t>(static_cast<const uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset());
  };
  const uintptr_t a0 = start(a), b0 = start(b);
  return a.ByteLength() > 0 && b.ByteLength() > 0 && a0 < b0 + b.ByteLength() && b0 < a0 + a.ByteLength();
}

void checkNoOverlap(const Napi::TypedArray& output, const Napi::TypedArray& input, const std::string& what) {
  if (overlaps(output, input)) invalidArg("options.output must not share memory with " + what);
}

std::string optionString(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) invalidArg(std::string("option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

}  // namespace arseg
