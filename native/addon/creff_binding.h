// JavaScript classes NativeCReFF (weights + run) and NativeKeyframe (a keyframe prepared once
// per GOP). run() works on the caller's Float32Arrays in place (no copies), on the thread pool,
// and resolves with the fused feature as a new Float32Array.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "../creff/creff_fused_cpu.h"
#include "../creff/creff_types.h"

namespace arseg {

class KeyframeBinding : public Napi::ObjectWrap<KeyframeBinding> {
 public:
  static Napi::FunctionReference* define(Napi::Env env, Napi::Object exports);
  explicit KeyframeBinding(const Napi::CallbackInfo& info);
  std::shared_ptr<const PreparedKeyframe> prepared;

 private:
  Napi::Value getInfo(const Napi::CallbackInfo& info);
};

class CreffBinding : public Napi::ObjectWrap<CreffBinding> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit CreffBinding(const Napi::CallbackInfo& info);
  // The weights of a NativeCReFF object; throws ERR_INVALID_ARG naming `what` if v is none.
  static std::shared_ptr<const CreffWeights> weightsOf(const Napi::Value& v, const std::string& what);

 private:
  Napi::Value prepareKeyframe(const Napi::CallbackInfo& info);
  Napi::Value run(const Napi::CallbackInfo& info);

  std::shared_ptr<const CreffWeights> weights_;
};

}  // namespace arseg
