// A C++ error that carries a stable, documented code string (ERR_*). The native core
// throws these; the N-API layer (native/addon) catches every exception at its boundary and
// turns it into a JavaScript Error with the same `code`, so no exception crosses N-API.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace arseg {

class CodedError : public std::runtime_error {
 public:
  CodedError(std::string code, const std::string& message, int64_t framesDecoded = -1)
      : std::runtime_error(message), code_(std::move(code)), framesDecoded_(framesDecoded) {}

  const std::string& code() const noexcept { return code_; }
  // For errors raised part-way through a stream: how many frames were delivered before it.
  int64_t framesDecoded() const noexcept { return framesDecoded_; }

 private:
  std::string code_;
  int64_t framesDecoded_;
};

}  // namespace arseg
