#pragma once

#include <exception>
#include <new>

#include "../common/coded_error.h"

namespace arseg {

template <typename Fn>
bool captureErrors(Fn&& fn, CapturedError& err) {
  try {
    fn();
    return true;
  } catch (const CodedError& e) {
    err = {e.code(), e.what(), e.framesDecoded()};
  } catch (const std::bad_alloc&) {
    err = {"ERR_OUT_OF_MEMORY", "out of memory", -1};
  } catch (const Napi::Error& e) {
    err = {"ERR_INVALID_ARG", e.Message(), -1};
  } catch (const std::exception& e) {
    err = {"ERR_NATIVE", e.what(), -1};
  } catch (...) {
    err = {"ERR_NATIVE", "unknown native failure", -1};
  }
  return false;
}

template <typename Fn>
Napi::Value guardSync(Napi::Env env, Fn&& fn) {
  CapturedError err;
  Napi::Value result = env.Undefined();
  if (!captureErrors([&] { result = fn(); }, err)) {
    if (!env.IsExceptionPending()) makeJsError(env, err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return result;
}

}  // namespace arseg
