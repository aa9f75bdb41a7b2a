// Scheduling classes of this process's threads for JavaScript (native/common/thread_priority.h):
// setThreadIdle(tid) and threadPolicy(tid), used for the asynchronous schedule's keyframe thread.
#pragma once

#include <napi.h>

namespace arseg {

void defineThreadPriority(Napi::Env env, Napi::Object exports);

}  // namespace arseg
