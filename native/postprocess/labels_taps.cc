#include "labels_taps.h"

#include <algorithm>
#include <mutex>

#include "../common/coded_error.h"

namespace arseg {

namespace {

// A video asks for one resize per branch (HR, LR, AR frames): a few more than that are kept, so
// that two videos of other sizes segmented side by side do not evict each other every frame.
constexpr size_t kKept = 8;

AxisMap axisMap(LogitsUpsampling upsampling) {
  return upsampling == LogitsUpsampling::AlignCorners ? AxisMap::AlignCorners : AxisMap::HalfPixel;
}

// The taps of one resize without its weights of 0 (bilinearAxis keeps them, in PyTorch's order;
// composeAxes drops them), so that a same-size resize is the identity.
std::vector<AxisTaps> withoutZeros(std::vector<AxisTaps> taps) {
  for (AxisTaps& t : taps) {
    int n = 0;
    for (int k = 0; k < t.count; ++k) {
      if (t.weight[k] == 0.f) continue;
      t.index[n] = t.index[k];
      t.weight[n++] = t.weight[k];
    }
    for (int k = n; k < 4; ++k) t.index[k] = 0, t.weight[k] = 0.f;
    t.count = n;
  }
  return taps;
}

std::vector<AxisTaps> axisTaps(int in, int out, LogitsUpsampling upsampling, bool twoStep, int via,
                               LogitsUpsampling viaUpsampling) {
  if (!twoStep) return withoutZeros(bilinearAxis(in, out, axisMap(upsampling)));
  return composeAxes(bilinearAxis(in, via, axisMap(viaUpsampling)), bilinearAxis(via, out, axisMap(upsampling)));
}

bool isIdentity(const std::vector<AxisTaps>& taps, int in) {
  if (static_cast<int>(taps.size()) != in) return false;
  for (size_t x = 0; x < taps.size(); ++x)
    if (taps[x].count != 1 || taps[x].index[0] != static_cast<int>(x) || taps[x].weight[0] != 1.f) return false;
  return true;
}

}  // namespace

bool operator==(const LabelsResize& a, const LabelsResize& b) {
  return a.height == b.height && a.width == b.width && a.outHeight == b.outHeight && a.outWidth == b.outWidth &&
         a.upsampling == b.upsampling && a.twoStep == b.twoStep &&
         (!a.twoStep ||
          (a.via.height == b.via.height && a.via.width == b.via.width && a.via.upsampling == b.via.upsampling));
}

LabelsTaps makeLabelsTaps(const LabelsResize& r) {
  if (r.height < 1 || r.width < 1 || r.outHeight < 1 || r.outWidth < 1 ||
      (r.twoStep && (r.via.height < 1 || r.via.width < 1)))
    throw CodedError("ERR_SHAPE", "sizes must be positive");
  LabelsTaps t;
  t.resize = r;
  t.rows = axisTaps(r.height, r.outHeight, r.upsampling, r.twoStep, r.via.height, r.via.upsampling);
  t.columns = axisTaps(r.width, r.outWidth, r.upsampling, r.twoStep, r.via.width, r.via.upsampling);
  t.identity = isIdentity(t.rows, r.height) && isIdentity(t.columns, r.width);
  t.columnTaps = 1;
  for (const AxisTaps& c : t.columns) t.columnTaps = std::max(t.columnTaps, c.count);
  for (AxisTaps& c : t.columns) {
    for (int k = c.count; k < t.columnTaps; ++k) c.index[k] = c.index[0], c.weight[k] = 0.f;
    c.count = t.columnTaps;
  }
  return t;
}

std::shared_ptr<const LabelsTaps> labelsTaps(const LabelsResize& resize) {
  static std::mutex mutex;
  static std::vector<std::shared_ptr<const LabelsTaps>> kept;  // most recently used first
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t i = 0; i < kept.size(); ++i) {
      if (!(kept[i]->resize == resize)) continue;
      std::shared_ptr<const LabelsTaps> found = kept[i];
      std::rotate(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(i),
                  kept.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      return found;
    }
  }
  // Computed outside the lock: two threads may both compute a new size once.
  auto made = std::make_shared<const LabelsTaps>(makeLabelsTaps(resize));
  std::lock_guard<std::mutex> lock(mutex);
  kept.insert(kept.begin(), made);
  if (kept.size() > kKept) kept.pop_back();
  return made;
}

}  // namespace arseg
