// Validates the JavaScript options object of a reader or decoder and turns it into a
// FrameRequest. Every wrong type or out-of-range value is an ERR_INVALID_ARG naming the option.
#pragma once

#include <napi.h>

#include <map>
#include <string>

#include "../video/frame_request.h"

namespace arseg {

FrameRequest parseFrameRequest(const Napi::Value& options);
std::map<std::string, std::string> parseFormatOptions(const Napi::Value& options);

}  // namespace arseg
