#include "creff_types.h"

#include "../common/coded_error.h"

namespace arseg {

namespace {
[[noreturn]] void shapeError(const std::string& m) { throw CodedError("ERR_SHAPE", m); }
}  // namespace

void validateCreff(const CreffWeights& w, const CreffShape& s) {
  if (w.channels <= 0) throw CodedError("ERR_INVALID_ARG", "CReFF channels must be positive");
  if (w.window <= 0 || w.window % 2 == 0 || w.window > 31)
    throw CodedError("ERR_INVALID_ARG",
                     "CReFF window must be an odd integer from 1 to 31, got " + std::to_string(w.window));
  const size_t c = static_cast<size_t>(w.channels);
  const std::pair<const char*, const std::vector<float>*> conv[] = {
      {"q", &w.qWeight}, {"k", &w.kWeight}, {"v", &w.vWeight}};
  for (const auto& [name, weight] : conv)
    if (weight->size() != c * 9)
      shapeError(std::string(name) + ".weight must hold C x 1 x 3 x 3 = " + std::to_string(c * 9) + " values, got " +
                 std::to_string(weight->size()));
  const std::pair<const char*, const std::vector<float>*> bias[] = {{"q", &w.qBias}, {"k", &w.kBias}, {"v", &w.vBias}};
  for (const auto& [name, b] : bias)
    if (b->size() != c)
      shapeError(std::string(name) + ".bias must hold C = " + std::to_string(c) + " values, got " +
                 std::to_string(b->size()));
  if (s.channels != w.channels)
    shapeError("features have " + std::to_string(s.channels) + " channels, CReFF expects " +
               std::to_string(w.channels));
  if (s.lrHeight <= 0 || s.lrWidth <= 0 || s.height <= 0 || s.width <= 0) shapeError("feature sizes must be positive");
  if (int64_t(s.height) * s.width > (int64_t(1) << 28) || int64_t(s.height) * s.width * s.channels > (int64_t(1) << 32))
    shapeError("feature too large");
}

}  // namespace arseg
