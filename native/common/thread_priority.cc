#include "thread_priority.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "coded_error.h"

#ifdef __linux__
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace arseg {

long currentThreadId() {
#ifdef __linux__
  return static_cast<long>(syscall(SYS_gettid));
#else
  return -1;
#endif
}

void checkOwnThread(long tid) {
#ifdef __linux__
  if (tid <= 0) throw CodedError("ERR_INVALID_ARG", "a thread id must be a positive integer");
  // The scheduling calls would act on any process's thread: keep to this process's own.
  const std::string task = "/proc/self/task/" + std::to_string(tid);
  if (access(task.c_str(), F_OK) != 0)
    throw CodedError("ERR_NOT_FOUND", "no thread " + std::to_string(tid) + " in this process");
#else
  throw CodedError("ERR_UNSUPPORTED", "thread scheduling policies are set and read on Linux only");
#endif
}

void setThreadIdle(long tid) {
  checkOwnThread(tid);
#ifdef __linux__
  const char* refuse = std::getenv("ARSEG_SCHED_IDLE");
  if (refuse != nullptr && std::strcmp(refuse, "0") == 0)
    throw CodedError("ERR_UNSUPPORTED", "SCHED_IDLE refused: ARSEG_SCHED_IDLE=0 in the environment");
  sched_param param{};
  param.sched_priority = 0;  // the only priority SCHED_IDLE takes
  // On Linux the scheduling policy belongs to the thread: a thread id names that thread alone.
  if (sched_setscheduler(static_cast<pid_t>(tid), SCHED_IDLE, &param) != 0) {
    const int e = errno;
    if (e == ESRCH) throw CodedError("ERR_NOT_FOUND", "thread " + std::to_string(tid) + " has exited");
    throw CodedError("ERR_UNSUPPORTED", std::string("the kernel refused SCHED_IDLE: ") + std::strerror(e));
  }
#endif
}

std::string threadPolicy(long tid) {
  checkOwnThread(tid);
#ifdef __linux__
  const int policy = sched_getscheduler(static_cast<pid_t>(tid));
  if (policy < 0) {
    const int e = errno;
    if (e == ESRCH) throw CodedError("ERR_NOT_FOUND", "thread " + std::to_string(tid) + " has exited");
    throw CodedError("ERR_UNSUPPORTED", std::string("sched_getscheduler: ") + std::strerror(e));
  }
  switch (policy & ~SCHED_RESET_ON_FORK) {
    case SCHED_OTHER: return "other";
    case SCHED_BATCH: return "batch";
    case SCHED_IDLE: return "idle";
    case SCHED_FIFO: return "fifo";
    case SCHED_RR: return "rr";
#ifdef SCHED_DEADLINE
    case SCHED_DEADLINE: return "deadline";
#endif
    default: return "unknown";
  }
#else
  return "unknown";
#endif
}

}  // namespace arseg
