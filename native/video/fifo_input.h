// Reading a local FIFO (named pipe) so that close() can always interrupt it. libavformat's file
// protocol opens a FIFO with a blocking open(2), which waits for a writer in the kernel, out of
// reach of the interrupt callback: a FIFO nobody writes to hung the reader forever. Here the
// FIFO is opened non-blocking, the wait for a writer and every read poll with a short timeout and
// check the abort flag, and libavformat reads through an AVIOContext over that descriptor.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "libav_ptr.h"

namespace arseg {

struct AvioContextDeleter {
  void operator()(AVIOContext* ctx) const;
};
using AvioContextPtr = std::unique_ptr<AVIOContext, AvioContextDeleter>;

class FifoInput {
 public:
  // The local path `source` names (a plain path or a file: URL) when it is a FIFO, else "".
  static std::string fifoPath(const std::string& source);

  // Opens the FIFO and waits for a writer to connect (or to have come and gone); throws
  // ERR_ABORTED when `aborted` becomes true first, ERR_OPEN/ERR_NOT_FOUND when it cannot be opened.
  FifoInput(const std::string& path, const std::atomic<bool>& aborted);
  ~FifoInput();
  FifoInput(const FifoInput&) = delete;
  FifoInput& operator=(const FifoInput&) = delete;

  // The AVIOContext libavformat reads through (non-seekable; owned here, outlives the format
  // context that uses it).
  AVIOContext* avio() { return avio_.get(); }

 private:
  static int readPacket(void* opaque, uint8_t* buf, int size);
  // Polls for input for up to `ms` milliseconds; true when readable or hung up.
  bool waitReadable(int ms) const;

  std::string path_;
  const std::atomic<bool>& aborted_;
  int fd_ = -1;
  AvioContextPtr avio_;
};

}  // namespace arseg
