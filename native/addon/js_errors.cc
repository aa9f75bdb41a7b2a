#include "js_errors.h"

namespace arseg {

Napi::Error makeJsError(Napi::Env env, const CapturedError& err) {
  Napi::Error error = Napi::Error::New(env, err.message);
  error.Set("code", Napi::String::New(env, err.code));
  if (err.framesDecoded >= 0)
    error.Set("framesDecoded", Napi::Number::New(env, static_cast<double>(err.framesDecoded)));
  return error;
}

Napi::Error makeJsError(Napi::Env env, const std::string& code, const std::string& message) {
  return makeJsError(env, CapturedError{code, message, -1});
}

}  // namespace arseg
