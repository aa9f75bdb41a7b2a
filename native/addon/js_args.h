// Checks on JavaScript arguments shared by every binding: each failure is an ERR_INVALID_ARG
// naming the argument.
#pragma once

#include <napi.h>

#include <string>

namespace arseg {

// An integer from lo to hi.
int integerIn(const Napi::Value& v, const std::string& name, int lo, int hi);

// A Float32Array (not another typed array).
Napi::Float32Array float32Array(const Napi::Value& v, const std::string& name);

}  // namespace arseg
