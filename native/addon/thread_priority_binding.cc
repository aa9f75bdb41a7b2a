#include "thread_priority_binding.h"

#include <cmath>
#include <limits>

#include "../common/thread_priority.h"
#include "js_args.h"
#include "js_errors.h"

namespace arseg {

namespace {

// The thread id argument: a positive integer, or the calling thread's when undefined.
long tidArg(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() == 0 || info[0].IsUndefined()) return currentThreadId();
  const double v = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(v >= 1 && v <= std::numeric_limits<int>::max() && std::floor(v) == v))
    invalidArg(std::string(fn) + ": the thread id must be a positive integer");
  return static_cast<long>(v);
}

// setThreadIdle(tid?): switches one of this process's threads (a worker's, by the id it reports;
// default the caller's) to SCHED_IDLE and gives its policy as read back; ERR_UNSUPPORTED with the
// kernel's reason where it refuses, ERR_NOT_FOUND for a thread not in this process. A system
// call of microseconds, hence synchronous.
Napi::Value setThreadIdleJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    const long tid = tidArg(info, "setThreadIdle");
    setThreadIdle(tid);
    return Napi::String::New(env, threadPolicy(tid));
  });
}

// threadPolicy(tid?): the policy name of one of this process's threads (default the caller's).
Napi::Value threadPolicyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env,
                   [&]() -> Napi::Value { return Napi::String::New(env, threadPolicy(tidArg(info, "threadPolicy"))); });
}

}  // namespace

void defineThreadPriority(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadIdle", Napi::Function::New(env, setThreadIdleJs, "setThreadIdle"));
  exports.Set("threadPolicy", Napi::Function::New(env, threadPolicyJs, "threadPolicy"));
}

}  // namespace arseg
