#include "fifo_input.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "../common/coded_error.h"

namespace arseg {

namespace {

// How long one poll waits before the abort flag is checked again: close() takes effect within it.
constexpr int kPollMillis = 50;
constexpr int kBufferSize = 64 * 1024;

bool hasUrlScheme(const std::string& s) {
  // RFC 3986 scheme followed by ':', as libavformat decides whether a name is a URL
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ':') return true;
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '.' && c != '-') return false;
  }
  return false;
}

}  // namespace

void AvioContextDeleter::operator()(AVIOContext* ctx) const {
  if (!ctx) return;
  av_freep(&ctx->buffer);  // the buffer may have been reallocated by libavformat: free its current one
  avio_context_free(&ctx);
}

std::string FifoInput::fifoPath(const std::string& source) {
  std::string path;
  if (source.rfind("file:", 0) == 0)
    path = source.substr(5);
  else if (!hasUrlScheme(source))
    path = source;
  else
    return "";
  struct stat st;
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) return "";
  return path;
}

FifoInput::FifoInput(const std::string& path, const std::atomic<bool>& aborted) : path_(path), aborted_(aborted) {
  // O_NONBLOCK: open(2) returns at once instead of waiting in the kernel for a writer
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    if (err == ENOENT) throw CodedError("ERR_NOT_FOUND", "no such file: " + path);
    throw CodedError("ERR_OPEN", "cannot open " + path + ": " + std::strerror(err));
  }
  // A FIFO with no writer reads as end of file. Wait until a writer has written (readable) or
  // has come and gone (hang-up; Linux reports it only after a writer existed).
  while (!waitReadable(kPollMillis)) {
    if (aborted_.load()) {
      ::close(fd_);
      fd_ = -1;
      throw CodedError("ERR_ABORTED", "waiting for a writer on the FIFO " + path + " was aborted");
    }
  }
  auto* buffer = static_cast<uint8_t*>(av_malloc(kBufferSize));
  if (!buffer) {
    ::close(fd_);
    throw std::bad_alloc();
  }
  avio_.reset(avio_alloc_context(buffer, kBufferSize, 0, this, &FifoInput::readPacket, nullptr, nullptr));
  if (!avio_) {
    av_free(buffer);
    ::close(fd_);
    throw std::bad_alloc();
  }
  avio_->seekable = 0;
}

FifoInput::~FifoInput() {
  avio_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool FifoInput::waitReadable(int ms) const {
  struct pollfd p = {fd_, POLLIN, 0};
  const int n = ::poll(&p, 1, ms);
  return n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

int FifoInput::readPacket(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<FifoInput*>(opaque);
  for (;;) {
    if (self->aborted_.load()) return AVERROR_EXIT;
    const ssize_t n = ::read(self->fd_, buf, static_cast<size_t>(size));
    if (n > 0) return static_cast<int>(n);
    if (n == 0) return AVERROR_EOF;  // every writer closed its end
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return AVERROR(errno);
    self->waitReadable(kPollMillis);  // a writer that is silent for now
  }
}

}  // namespace arseg
