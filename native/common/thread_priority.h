// The scheduling class of a thread of this process (Linux): the asynchronous schedule's keyframe
// thread is switched to SCHED_IDLE before ONNX Runtime creates its pool there, so that the pool's
// threads inherit it and take only the CPU that every normal thread leaves (lib/network-thread-worker.ts).
// A raised nice value does not do that: nice 10 keeps a CFS weight of 110 against 1024, about a
// tenth of a core beside each busy normal thread; SCHED_IDLE's weight is 3.
#pragma once

#include <string>

namespace arseg {

// The calling thread's kernel id (gettid); -1 where the platform has none.
long currentThreadId();

// Throws ERR_NOT_FOUND unless `tid` names a thread of this process (ERR_INVALID_ARG when it is
// not positive; ERR_UNSUPPORTED off Linux).
void checkOwnThread(long tid);

// Switches thread `tid` of this process to SCHED_IDLE; threads it creates afterwards inherit the
// policy. (Another thread's: a Node.js worker cannot load this addon, whose classes are
// per-process, so the main thread switches the worker's thread by its id.)
// Unprivileged processes may always enter SCHED_IDLE (Linux 2.6.23 on), but a kernel (or a
// seccomp filter) may still refuse: that, other platforms, and ARSEG_SCHED_IDLE=0 in the
// environment (which refuses as a kernel would, so that callers' fallbacks can be exercised)
// throw CodedError ERR_UNSUPPORTED naming the reason. Irreversible for an unprivileged thread:
// leaving SCHED_IDLE needs RLIMIT_NICE room or CAP_SYS_NICE.
void setThreadIdle(long tid);

// The scheduling policy of thread `tid` of this process ("other", "batch", "idle", "fifo", "rr",
// "deadline" or "unknown"); errors as checkOwnThread.
std::string threadPolicy(long tid);

}  // namespace arseg
