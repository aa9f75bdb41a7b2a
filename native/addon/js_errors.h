// The one place C++ failures become JavaScript errors. Every binding entry point and every
// async completion goes through here, so each JS error carries a stable `code` and no C++
// exception ever unwinds through N-API.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace arseg {

// A failure captured on a worker thread, replayed on the main thread.
struct CapturedError {
  std::string code;
  std::string message;
  int64_t framesDecoded = -1;
};

// Runs `fn`, converting any exception into a CapturedError. Returns true on success.
template <typename Fn>
bool captureErrors(Fn&& fn, CapturedError& err);

Napi::Error makeJsError(Napi::Env env, const CapturedError& err);
Napi::Error makeJsError(Napi::Env env, const std::string& code, const std::string& message);

// For synchronous entry points: throws a JS exception (as a pending exception) from `fn`'s
// failure and returns undefined.
template <typename Fn>
Napi::Value guardSync(Napi::Env env, Fn&& fn);

}  // namespace arseg

#include "js_errors_inl.h"
