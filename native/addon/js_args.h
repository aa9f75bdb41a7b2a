// Checks on JavaScript arguments shared by every binding: a wrong type or value is an
// ERR_INVALID_ARG naming the argument, a typed array of the wrong length an ERR_SHAPE.
// Each option is checked once, by the layer that consumes it (docs/architecture.md, "Checking
// options"): the options the bindings consume (the reader's frame options, CReFF's, the heads')
// are checked here, fully, with the messages users see, and TypeScript passes them through;
// the options TypeScript consumes are checked there (lib/options.ts) and never reach here.
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>

namespace arseg {

// Throws ERR_INVALID_ARG with `message`.
[[noreturn]] void invalidArg(const std::string& message);

// An integer from lo to hi.
int integerIn(const Napi::Value& v, const std::string& name, int lo, int hi);

// A Float32Array (not another typed array).
Napi::Float32Array float32Array(const Napi::Value& v, const std::string& name);

// ERR_SHAPE unless `a` holds exactly `expected` values; `shape` names the product, e.g.
// "channels x height x width".
void checkLength(const Napi::Float32Array& a, size_t expected, const std::string& what,
                 const std::string& shape = "its shape needs");

// Whether two typed arrays share any byte (an output must never alias an input: the kernels
// read inputs after they have started writing the output).
bool overlaps(const Napi::TypedArray& a, const Napi::TypedArray& b);

// ERR_INVALID_ARG when `output` shares memory with `input`; `what` names the input.
void checkNoOverlap(const Napi::TypedArray& output, const Napi::TypedArray& input, const std::string& what);

// A string option of `o`, or `fallback` when it is undefined or null.
std::string optionString(const Napi::Object& o, const char* key, const std::string& fallback);

}  // namespace arseg
