#include "js_args.h"

#include <cmath>

#include "../common/coded_error.h"

namespace arseg {

int integerIn(const Napi::Value& v, const std::string& name, int lo, int hi) {
  if (!v.IsNumber()) throw CodedError("ERR_INVALID_ARG", "'" + name + "' must be an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < lo || d > hi)
    throw CodedError("ERR_INVALID_ARG", "'" + name + "' must be an integer from " + std::to_string(lo) +
                                            " to " + std::to_string(hi) + ", got " + v.ToString().Utf8Value());
  return static_cast<int>(d);
}

Napi::Float32Array float32Array(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw CodedError("ERR_INVALID_ARG", name + " must be a Float32Array");
  return v.As<Napi::Float32Array>();
}

}  // namespace arseg
