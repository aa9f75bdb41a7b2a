// Runs native work on the libuv thread pool and settles a Promise with the result on the main
// thread. `work` may throw anything: the failure is captured with its code and replayed as a
// rejected Promise. `settle` runs first on the main thread whatever the outcome (it clears the
// owner's busy flag), then `finish` builds the resolved value.
#pragma once

#include <napi.h>

#include <functional>
#include <utility>

#include "js_errors.h"

namespace arseg {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Finish = std::function<Napi::Value(Napi::Env)>;
  using Settle = std::function<void()>;

  static Napi::Promise start(Napi::Env env, Napi::Object keepAlive, Work work, Finish finish, Settle settle) {
    auto* worker = new PromiseWorker(env, keepAlive, std::move(work), std::move(finish), std::move(settle));
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Queue();  // the worker deletes itself after OnOK/OnError
    return promise;
  }

 protected:
  void Execute() override { ok_ = captureErrors(work_, error_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (settle_) settle_();
    if (!ok_) {
      deferred_.Reject(makeJsError(env, error_).Value());
      return;
    }
    CapturedError err;
    Napi::Value value;
    if (captureErrors([&] { value = finish_ ? finish_(env) : env.Undefined(); }, err))
      deferred_.Resolve(value);
    else
      deferred_.Reject(makeJsError(env, err).Value());
  }

 private:
  PromiseWorker(Napi::Env env, Napi::Object keepAlive, Work work, Finish finish, Settle settle)
      : Napi::AsyncWorker(env, "ar-seg-native"),
        deferred_(Napi::Promise::Deferred::New(env)),
        keepAlive_(Napi::Persistent(keepAlive)),
        work_(std::move(work)),
        finish_(std::move(finish)),
        settle_(std::move(settle)) {}

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keepAlive_;  // the JS owner must outlive the work
  Work work_;
  Finish finish_;
  Settle settle_;
  bool ok_ = false;
  CapturedError error_;
};

}  // namespace arseg
