#include "keyframe_composer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "../common/recycled_storage.h"
#include "compose_step.h"

namespace arseg {

namespace {

// numpy's np.round: to the nearest integer, halves to even. Vectors are multiples of
// 1 / motion_scale (1/4 for H.264 and HEVC), exact in float.
inline int roundHalfEven(float v) {
  const float f = std::floor(v);
  const float frac = v - f;
  int r = static_cast<int>(f);
  if (frac > 0.5f || (frac == 0.5f && (r & 1))) ++r;
  return r;
}

inline int clampInt(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

inline void follow(const MotionGrid& grid, int i, int j, float mx, float my, float& ox, float& oy) {
  const Follower f(grid);
  f(i, j, mx, my, ox, oy);
}

}  // namespace

// --- bookkeeping -------------------------------------------------------------------------

int64_t KeyframeComposer::chainOf(int64_t index) const {
  auto it = roots_.upper_bound(index);
  return it == roots_.begin() ? -1 : *std::prev(it);
}

int64_t KeyframeComposer::keyframeOf(int64_t index) const {
  auto it = keyframes_.upper_bound(index);
  return it == keyframes_.begin() ? -1 : *std::prev(it);
}

void KeyframeComposer::push(DecodedFrame frame, BlockField blocks, std::vector<DecodedFrame>& ready) {
  if (mode_ != MotionMode::Accumulated) {
    emitDirect(std::move(frame), blocks, ready);
    recycle(std::move(blocks));
    return;
  }
  const int64_t t = frame.index;
  lastArrived_ = std::max(lastArrived_, t);
  if (frame.isKeyframe) {
    keyframes_.insert(t);
    // A new chain at an I-frame keyframe; at any keyframe when every picture refers to the one
    // before (estimated motion).
    if ((frame.pictType == 'I' || blocks.sequential) && composition_ == Composition::Bilinear) roots_.insert(t);
  }
  Held h{std::move(frame), std::move(blocks), {}};
  distinctDistances(h.blocks, h.refs);
  held_.emplace(t, std::move(h));
  process(false, ready);
}

void KeyframeComposer::flush(std::vector<DecodedFrame>& ready) {
  if (mode_ != MotionMode::Accumulated) return;
  process(true, ready);
}

bool KeyframeComposer::isReady(const Held& h) const {
  for (int32_t d : h.refs) {
    const int64_t r = h.frame.index - d;
    if (nodes_.count(r)) continue;
    if (held_.count(r)) return false;    // composed later: wait for it
    if (r > lastArrived_) return false;  // not arrived yet
    // Otherwise it is gone (too old, or never decoded): the prediction counts as missing.
  }
  return true;
}

void KeyframeComposer::process(bool atEnd, std::vector<DecodedFrame>& ready) {
  for (;;) {
    auto next = held_.end();
    for (auto it = held_.begin(); it != held_.end(); ++it)
      if (isReady(it->second)) {
        next = it;
        break;
      }
    if (next == held_.end() && !held_.empty() && (atEnd || held_.size() > kMaxHeld))
      next = held_.begin();  // give up waiting: compose the oldest with what there is
    if (next == held_.end()) break;
    // Composed while still held: bridging (a leading picture's first use of the next
    // I-frame) learns from every held leading picture, this one included.
    compose(next->second);
    composed_.emplace(next->first, std::move(next->second.frame));
    recycle(std::move(next->second.blocks));
    held_.erase(next);
  }
  // Frames come out in display order: each once no earlier frame is held.
  while (!composed_.empty() && (held_.empty() || composed_.begin()->first < held_.begin()->first)) {
    DecodedFrame f = std::move(composed_.begin()->second);
    composed_.erase(composed_.begin());
    emit(std::move(f), ready);
  }
  evict();
}

void KeyframeComposer::evict() {
  // Keep the frames a later frame may still predict from, and every frame not yet handed out.
  int64_t keep = lastArrived_ - kWindow;
  if (!held_.empty()) keep = std::min(keep, held_.begin()->first - kWindow);
  if (!composed_.empty()) keep = std::min(keep, composed_.begin()->first);
  while (!nodes_.empty() && nodes_.begin()->first < keep) {
    recycle(std::move(nodes_.begin()->second.field));
    nodes_.erase(nodes_.begin());
  }
  while (roots_.size() > 1 && *std::next(roots_.begin()) <= keep) roots_.erase(roots_.begin());
  while (keyframes_.size() > 1 && *std::next(keyframes_.begin()) <= keep) keyframes_.erase(keyframes_.begin());
}

namespace {
// The pool of the arrays handed to JavaScript (frame_js.cc): the same element type.
using GridStorage = RecycledStorage<float>;

void giveGrid(MotionGrid& g) {
  GridStorage::give(std::move(g.dx));
  GridStorage::give(std::move(g.dy));
}
}  // namespace

KeyframeComposer::~KeyframeComposer() {
  for (MotionGrid& g : spareGrids_) giveGrid(g);
  for (auto& [index, node] : nodes_) {
    giveGrid(node.field);
    giveGrid(node.oldField);
  }
  for (BlockField& b : spareBlocks_)
    for (MotionGrid& g : b.vec) giveGrid(g);
  for (auto& [index, h] : held_)
    for (MotionGrid& g : h.blocks.vec) giveGrid(g);
  giveGrid(keyField_);
}

MotionGrid KeyframeComposer::takeGrid(int width, int height, int stride) {
  MotionGrid g;
  if (!spareGrids_.empty()) {
    g = std::move(spareGrids_.back());
    spareGrids_.pop_back();
  }
  g.width = width;
  g.height = height;
  g.stride = stride;
  const size_t n = static_cast<size_t>(width) * height;
  // Without a spare, storage of an earlier reader's grids (the pool keeps their elements): a
  // stream's first frames otherwise allocated and zero-filled a window of grids.
  sizeForOverwrite(g.dx, n);
  sizeForOverwrite(g.dy, n);
  return g;
}

void KeyframeComposer::recycle(MotionGrid&& grid) {
  if (grid.dx.capacity() > 0 && spareGrids_.size() < kSpares) spareGrids_.push_back(std::move(grid));
}

void KeyframeComposer::recycle(BlockField&& blocks) {
  if (blocks.ref[0].capacity() > 0 && spareBlocks_.size() < kSpares) spareBlocks_.push_back(std::move(blocks));
}

BlockField KeyframeComposer::spareBlocks() {
  if (spareBlocks_.empty()) return BlockField();
  BlockField b = std::move(spareBlocks_.back());
  spareBlocks_.pop_back();
  return b;
}

// --- references ----------------------------------------------------------------------------

KeyframeComposer::Source KeyframeComposer::lookup(int64_t r, int64_t chain, bool allowBridge) {
  Source s;
  if (composition_ == Composition::Official) {
    // `chain` is the frame's keyframe: a landing point in it, or before it, is final.
    if (r <= chain) {
      s.kind = Source::Land;
      return s;
    }
    auto it = nodes_.find(r);
    if (it != nodes_.end() && it->second.root == chain) {
      s.kind = Source::Field;
      s.field = &it->second.field;
    }
    return s;
  }
  if (r == chain && chain >= 0) {
    s.kind = Source::Zero;
    return s;
  }
  auto it = nodes_.find(r);
  if (it == nodes_.end()) return s;
  Node& node = it->second;
  if (node.root == chain) {
    s.kind = Source::Field;
    s.field = &node.field;
  } else if (node.isRoot && node.oldRoot == chain) {
    // A leading picture predicting from the I-frame that starts the next chain.
    if (!node.bridged && allowBridge) bridge(node, r, chain);
    if (node.bridged) {
      s.kind = Source::Field;
      s.field = &node.oldField;
    }
  }
  return s;
}

KeyframeComposer::Source KeyframeComposer::fallback(const Held& h, int64_t chain) {
  const int64_t t = h.frame.index;
  // The previous frame, when composed: zero motion relative to it.
  Source s = lookup(t - 1, chain, false);
  if (s.kind != Source::Missing) return s;
  // Else the nearest past reference of the frame itself.
  for (int32_t d : h.refs) {
    if (d <= 0) continue;
    s = lookup(t - d, chain, false);
    if (s.kind != Source::Missing) return s;
  }
  // Else the latest composed frame before it in its chain.
  for (auto it = nodes_.lower_bound(t); it != nodes_.begin();) {
    --it;
    s = lookup(it->first, chain, false);
    if (s.kind != Source::Missing) return s;
  }
  // Nothing composed before it: no motion known.
  s.kind = composition_ == Composition::Official ? Source::Land : Source::Zero;
  return s;
}

// Estimates where the I-frame `root` (display index rootIndex) sits in the previous chain,
// from the held leading pictures of that chain: a cell p of a leading picture with a
// prediction (v_K) from the I-frame and another from a composed picture of the old chain
// (giving its old-chain displacement R) says that the I-frame at p + v_K has displacement
// R - v_K. Cells no sample reaches take the mean of their filled neighbours, then the mean of
// all samples; without any sample the I-frame is taken as still relative to the latest frame
// before it.
void KeyframeComposer::bridge(Node& root, int64_t rootIndex, int64_t chain) {
  const MotionGrid& shape = root.field;
  const int gw = shape.width, gh = shape.height, stride = shape.stride;
  std::vector<float> sumX(shape.size(), 0.f), sumY(shape.size(), 0.f);
  std::vector<int> count(shape.size(), 0);
  size_t samples = 0;
  root.bridged = true;  // the lookups below must not recurse into this bridge
  root.oldField = MotionGrid();
  for (auto& [index, h] : held_) {
    if (index >= rootIndex || chainOf(index) != chain) continue;
    const BlockField& b = h.blocks;
    if (!b.hasSlot(1) || b.width() != gw || b.height() != gh) continue;
    const int32_t toRoot = static_cast<int32_t>(index - rootIndex);  // negative: ahead
    for (int i = 0; i < gh; ++i) {
      for (int j = 0; j < gw; ++j) {
        const size_t k = static_cast<size_t>(i) * gw + j;
        int rootSlot = -1;
        for (int s = 0; s < 2; ++s)
          if (b.ref[s][k] == toRoot) rootSlot = s;
        if (rootSlot < 0) continue;
        const int other = 1 - rootSlot;
        const int32_t d = b.ref[other][k];
        if (d == 0 || d == toRoot) continue;
        Source src = lookup(index - d, chain, false);
        if (src.kind == Source::Missing) continue;
        const float vx = b.vec[other].dx[k], vy = b.vec[other].dy[k];
        float rx = 0, ry = 0;
        if (src.kind == Source::Field) follow(*src.field, i, j, vx, vy, rx, ry);
        const float kx = b.vec[rootSlot].dx[k], ky = b.vec[rootSlot].dy[k];
        // the I-frame's cell that p lands on
        const float px = j * stride + 0.5f * (stride - 1) + kx;
        const float py = i * stride + 0.5f * (stride - 1) + ky;
        const int cj = clampInt(static_cast<int>(std::lround((px - 0.5f * (stride - 1)) / stride)), 0, gw - 1);
        const int ci = clampInt(static_cast<int>(std::lround((py - 0.5f * (stride - 1)) / stride)), 0, gh - 1);
        const size_t c = static_cast<size_t>(ci) * gw + cj;
        sumX[c] += vx + rx - kx;
        sumY[c] += vy + ry - ky;
        ++count[c];
        ++samples;
      }
    }
  }
  MotionGrid out = shape;
  if (samples == 0) {
    // No leading picture ties the two chains: the I-frame stays where the latest composed
    // frame before it was.
    Source still = Source();
    for (auto it = nodes_.lower_bound(rootIndex); it != nodes_.begin();) {
      --it;
      still = lookup(it->first, chain, false);
      if (still.kind != Source::Missing) break;
    }
    if (still.kind == Source::Field)
      out = *still.field;
    else
      std::fill(out.dx.begin(), out.dx.end(), 0.f), std::fill(out.dy.begin(), out.dy.end(), 0.f);
    root.oldField = std::move(out);
    return;
  }
  double meanX = 0, meanY = 0;
  for (size_t c = 0; c < out.size(); ++c) {
    if (count[c]) {
      out.dx[c] = sumX[c] / count[c];
      out.dy[c] = sumY[c] / count[c];
      meanX += sumX[c];
      meanY += sumY[c];
    }
  }
  meanX /= samples;
  meanY /= samples;
  // Holes: a few passes of neighbour means, then the overall mean.
  std::vector<uint8_t> filled(out.size());
  for (size_t c = 0; c < out.size(); ++c) filled[c] = count[c] > 0;
  for (int pass = 0; pass < 8; ++pass) {
    std::vector<uint8_t> next = filled;
    bool any = false;
    for (int i = 0; i < gh; ++i) {
      for (int j = 0; j < gw; ++j) {
        const size_t c = static_cast<size_t>(i) * gw + j;
        if (filled[c]) continue;
        float sx = 0, sy = 0;
        int n = 0;
        const int di[4] = {-1, 1, 0, 0}, dj[4] = {0, 0, -1, 1};
        for (int e = 0; e < 4; ++e) {
          const int ni = i + di[e], nj = j + dj[e];
          if (ni < 0 || nj < 0 || ni >= gh || nj >= gw) continue;
          const size_t nc = static_cast<size_t>(ni) * gw + nj;
          if (!filled[nc]) continue;
          sx += out.dx[nc];
          sy += out.dy[nc];
          ++n;
        }
        if (n) {
          out.dx[c] = sx / n;
          out.dy[c] = sy / n;
          next[c] = 1;
          any = true;
        }
      }
    }
    filled.swap(next);
    if (!any) break;
  }
  for (size_t c = 0; c < out.size(); ++c)
    if (!filled[c]) {
      out.dx[c] = static_cast<float>(meanX);
      out.dy[c] = static_cast<float>(meanY);
    }
  root.oldField = std::move(out);
  refineBridge(root, rootIndex, chain);
}

// The bridge above inherits the encoder's vector errors twice over: bi-predicted blocks often
// carry symmetric errors (v0 + e, v1 - e) that cancel in their prediction, but not in
// R - v_K. A global correction removes them: the leading pictures are composed on trial with
// the bridge, and with the bridge moved by one pixel, which gives every cell as a + b * delta
// (b: how much of the cell goes through the I-frame). Where neighbouring cells go through it
// to different degrees, smooth motion between them asks for delta = -(a_p - a_q) / (b_p - b_q);
// the median over such pairs (away from the edges) moves the bridge, by at most
// kMaxBridgeCorrection pixels.
void KeyframeComposer::refineBridge(Node& root, int64_t rootIndex, int64_t chain) {
  static constexpr float kMaxBridgeCorrection = 4.f;
  std::vector<int64_t> leading;
  for (auto& entry : held_)
    if (entry.first < rootIndex && chainOf(entry.first) == chain) leading.push_back(entry.first);
  if (leading.empty()) return;
  auto trial = [&](float shift, std::map<int64_t, MotionGrid>& out) {
    for (float& v : root.oldField.dx) v += shift;
    for (float& v : root.oldField.dy) v += shift;
    std::vector<int64_t> todo = leading;
    for (;;) {
      auto next = todo.end();
      for (auto it = todo.begin(); it != todo.end() && next == todo.end(); ++it) {
        bool ready = true;
        for (int32_t d : held_.at(*it).refs) {
          const int64_t r = *it - d;
          if (nodes_.count(r)) continue;
          if (held_.count(r) || r > lastArrived_) ready = false;
        }
        if (ready) next = it;
      }
      if (next == todo.end()) break;
      Node node;
      composeBilinear(held_.at(*next), node);
      out[*next] = node.field;
      nodes_[*next] = std::move(node);
      todo.erase(next);
    }
    for (auto& entry : out) nodes_.erase(entry.first);
    for (float& v : root.oldField.dx) v -= shift;
    for (float& v : root.oldField.dy) v -= shift;
  };
  std::map<int64_t, MotionGrid> base, moved;
  trial(0.f, base);
  trial(1.f, moved);
  std::vector<float> deltaX, deltaY;
  const int inset = (kEdgeInsetPixels + root.field.stride - 1) / root.field.stride;
  for (const auto& [index, a] : base) {
    const MotionGrid& b = moved.at(index);
    const int gw = a.width, gh = a.height;
    auto pair = [&](size_t p, size_t q) {
      const float bx = (b.dx[p] - a.dx[p]) - (b.dx[q] - a.dx[q]);
      const float by = (b.dy[p] - a.dy[p]) - (b.dy[q] - a.dy[q]);
      if (std::abs(bx) >= 0.25f) deltaX.push_back(-(a.dx[p] - a.dx[q]) / bx);
      if (std::abs(by) >= 0.25f) deltaY.push_back(-(a.dy[p] - a.dy[q]) / by);
    };
    for (int i = inset; i < gh - inset; ++i)
      for (int j = inset; j < gw - inset; ++j) {
        const size_t k = static_cast<size_t>(i) * gw + j;
        if (j + 1 < gw - inset) pair(k, k + 1);
        if (i + 1 < gh - inset) pair(k, k + gw);
      }
  }
  auto median = [](std::vector<float>& v) {
    if (v.size() < 4) return 0.f;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    const float m = v[v.size() / 2];
    return std::max(-kMaxBridgeCorrection, std::min(kMaxBridgeCorrection, m));
  };
  const float dx = median(deltaX), dy = median(deltaY);
  for (float& v : root.oldField.dx) v += dx;
  for (float& v : root.oldField.dy) v += dy;
}

// --- composition ---------------------------------------------------------------------------

void KeyframeComposer::compose(Held& h) {
  DecodedFrame& frame = h.frame;
  const int64_t t = frame.index;
  Node node;
  if (composition_ == Composition::Bilinear)
    composeBilinear(h, node);
  else
    composeOfficial(h, node);

  if (policy_.mode == KeyframePolicy::Mode::Adaptive && !frame.isKeyframe &&
      (frame.pictType != 'B' || h.blocks.sequential)) {
    size_t intra = 0;
    for (size_t k = 0; k < h.blocks.size(); ++k) intra += h.blocks.intra(k) || h.blocks.unexplainedAt(k);
    const float intraShare = h.blocks.size() ? float(intra) / h.blocks.size() : 1.f;
    // Displacement to the current keyframe, approximated cell by cell as R_t(p) - R_K(p).
    MotionGrid toKey = node.field;
    if (composition_ == Composition::Bilinear) {
      const int64_t key = keyframeOf(t);
      auto it = nodes_.find(key);
      if (key != node.root && it != nodes_.end() && it->second.root == node.root &&
          it->second.field.size() == toKey.size())
        for (size_t k = 0; k < toKey.size(); ++k) {
          toKey.dx[k] -= it->second.field.dx[k];
          toKey.dy[k] -= it->second.field.dy[k];
        }
    }
    if (wantsKeyframe(frame, toKey, intraShare)) {
      frame.isKeyframe = true;
      keyframes_.insert(t);
      if (composition_ == Composition::Official) {
        // Official fields are relative to the keyframe: it starts anew.
        std::fill(node.field.dx.begin(), node.field.dx.end(), 0.f);
        std::fill(node.field.dy.begin(), node.field.dy.end(), 0.f);
        node.root = t;
      }
    }
  }
  nodes_[t] = std::move(node);
}

void KeyframeComposer::composeBilinear(Held& h, Node& node) {
  const int64_t t = h.frame.index;
  const BlockField& b = h.blocks;
  if (roots_.count(t)) {  // an I-frame keyframe: the root of a new chain
    node.field = takeGrid(b.width(), b.height(), b.stride());
    std::fill(node.field.dx.begin(), node.field.dx.end(), 0.f);
    std::fill(node.field.dy.begin(), node.field.dy.end(), 0.f);
    node.root = t;
    node.isRoot = true;
    node.oldRoot = chainOf(t - 1);
    return;
  }
  const int64_t chain = chainOf(t);
  node.root = chain;
  // The source of each distinct reference, then of the fallback.
  std::vector<StepReference> refs;
  refs.reserve(h.refs.size());
  for (int32_t d : h.refs) {
    Source s = lookup(t - d, chain, true);
    if (s.kind == Source::Field && (s.field->width != b.width() || s.field->height != b.height()))
      s.kind = Source::Missing;  // a picture of another size (a new sequence)
    StepReference r;
    r.distance = d;
    r.usable = s.kind != Source::Missing;
    r.field = s.kind == Source::Field ? s.field : nullptr;
    refs.push_back(r);
  }
  const Source still = fallback(h, chain);
  const bool stillField =
      still.kind == Source::Field && still.field->width == b.width() && still.field->height == b.height();
  // Taken after the lookups: bridging (in lookup) may hand grids back.
  node.field = takeGrid(b.width(), b.height(), b.stride());
  composeStep(b, refs.data(), refs.size(), stillField ? still.field : nullptr, node.field);
}

void KeyframeComposer::composeOfficial(Held& h, Node& node) {
  const int64_t t = h.frame.index;
  const BlockField& b = h.blocks;
  const int w = b.width(), hgt = b.height();  // stride 1: cells are pixels
  node.field = takeGrid(w, hgt, 1);           // every pixel is written below
  const int64_t key = keyframeOf(t);
  node.root = key;
  if (key == t) {  // the keyframe: identity
    std::fill(node.field.dx.begin(), node.field.dx.end(), 0.f);
    std::fill(node.field.dy.begin(), node.field.dy.end(), 0.f);
    return;
  }
  std::vector<std::pair<int32_t, Source>> sources;
  for (int32_t d : h.refs) {
    Source s = lookup(t - d, key, false);
    if (s.kind == Source::Field && (s.field->width != w || s.field->height != hgt)) s.kind = Source::Missing;
    sources.emplace_back(d, s);
  }
  Source still = fallback(h, key);
  if (still.kind == Source::Field && (still.field->width != w || still.field->height != hgt)) still.kind = Source::Land;
  auto sourceOf = [&](int32_t d) -> const Source* {
    for (const auto& [dd, s] : sources)
      if (dd == d) return s.kind == Source::Missing ? nullptr : &s;
    return nullptr;
  };
  for (int y = 0; y < hgt; ++y) {
    for (int x = 0; x < w; ++x) {
      const size_t k = static_cast<size_t>(y) * w + x;
      int slot = -1;
      const Source* src = nullptr;
      for (int s = 0; s < 2 && slot < 0; ++s) {
        if (!b.hasSlot(s) || b.ref[s][k] == 0) continue;
        src = sourceOf(b.ref[s][k]);
        if (src) slot = s;
      }
      int px = x, py = y;  // the position this pixel holds in the keyframe
      if (slot >= 0) {
        const int qx = clampInt(x + roundHalfEven(b.vec[slot].dx[k]), 0, w - 1);
        const int qy = clampInt(y + roundHalfEven(b.vec[slot].dy[k]), 0, hgt - 1);
        px = qx;
        py = qy;
        if (src->kind == Source::Field) {
          const size_t q = static_cast<size_t>(qy) * w + qx;
          px += static_cast<int>(src->field->dx[q]);
          py += static_cast<int>(src->field->dy[q]);
        }
      } else if (still.kind == Source::Field) {
        px += static_cast<int>(still.field->dx[k]);
        py += static_cast<int>(still.field->dy[k]);
      }
      node.field.dx[k] = static_cast<float>(px - x);
      node.field.dy[k] = static_cast<float>(py - y);
    }
  }
}

bool KeyframeComposer::wantsKeyframe(const DecodedFrame& frame, const MotionGrid& toKey, float intraShare) const {
  if (frame.index - keyframeOf(frame.index) >= policy_.maxInterval) return true;
  if (intraShare >= policy_.intraShare) return true;
  std::vector<float> magnitude(toKey.size());
  for (size_t k = 0; k < toKey.size(); ++k)
    magnitude[k] = std::sqrt(toKey.dx[k] * toKey.dx[k] + toKey.dy[k] * toKey.dy[k]);
  if (magnitude.empty()) return false;
  std::nth_element(magnitude.begin(), magnitude.begin() + magnitude.size() / 2, magnitude.end());
  const float limit = policy_.maxMotion > 0 ? policy_.maxMotion : 0.08f * std::max(frame.width, frame.height);
  return magnitude[magnitude.size() / 2] >= limit;
}

// --- output --------------------------------------------------------------------------------

void KeyframeComposer::emit(DecodedFrame frame, std::vector<DecodedFrame>& ready) {
  const int64_t u = frame.index;
  auto it = nodes_.find(u);
  const Node* node = it == nodes_.end() ? nullptr : &it->second;
  if (frame.isKeyframe) {
    keyframeIndex_ = u;
    keyRoot_ = node ? node->root : -1;
    keyFieldIsZero_ = true;
    if (node)
      for (size_t k = 0; k < node->field.size() && keyFieldIsZero_; ++k)
        keyFieldIsZero_ = node->field.dx[k] == 0.f && node->field.dy[k] == 0.f;
    // Only a keyframe inside its chain (not the chain's root) needs its field kept.
    if (keyFieldIsZero_) {
      keyField_.width = keyField_.height = 0;
      keyField_.dx.clear();
      keyField_.dy.clear();
    } else {
      keyField_ = node->field;
    }
  }
  frame.keyframeIndex = keyframeIndex_;
  frame.hasMotion = true;
  struct {
    int width, height;
  } out{(frame.width + stride_ - 1) / stride_, (frame.height + stride_ - 1) / stride_};
  frame.motionWidth = out.width;
  frame.motionHeight = out.height;
  const size_t n = static_cast<size_t>(out.width) * out.height;
  const MotionGrid& root = node ? node->field : keyField_;
  const bool sameGrid = keyField_.width == root.width && keyField_.height == root.height;
  if (node && !frame.isKeyframe && composition_ == Composition::Bilinear && root.size() == n &&
      (keyFieldIsZero_ || !sameGrid || keyRoot_ != node->root)) {
    // The keyframe is the chain's root (the default policy): the root field is the answer,
    // copied without zero-filling the frame's field first.
    emptyWithCapacity(frame.motion, 2 * n);
    frame.motion.insert(frame.motion.end(), root.dx.begin(), root.dx.end());
    frame.motion.insert(frame.motion.end(), root.dy.begin(), root.dy.end());
    ready.push_back(std::move(frame));
    return;
  }
  emptyWithCapacity(frame.motion, 2 * n);
  frame.motion.resize(2 * n);  // zeros, as one memset (assign(n, 0.f) stored them one by one)
  if (frame.isKeyframe || !node) {
    ready.push_back(std::move(frame));
    return;
  }
  if (composition_ == Composition::Official) {
    // Per-pixel field: a cell takes the pixel at its centre.
    for (int i = 0; i < out.height; ++i) {
      const int y = std::min(i * stride_ + (stride_ - 1) / 2, root.height - 1);
      for (int j = 0; j < out.width; ++j) {
        const int x = std::min(j * stride_ + (stride_ - 1) / 2, root.width - 1);
        const size_t src = static_cast<size_t>(y) * root.width + x;
        const size_t k = static_cast<size_t>(i) * out.width + j;
        frame.motion[k] = root.dx[src];
        frame.motion[n + k] = root.dy[src];
      }
    }
    ready.push_back(std::move(frame));
    return;
  }
  if (root.size() != n) {  // cannot happen: the blocks were rasterised at this stride
    ready.push_back(std::move(frame));
    return;
  }
  // The keyframe is inside the chain (the root field was the answer otherwise, above).
  for (int i = 0; i < root.height; ++i) {
    for (int j = 0; j < root.width; ++j) {
      const size_t k = static_cast<size_t>(i) * root.width + j;
      // Solve x = R_t(p) - R_K(p + x): a few fixed-point steps from x0 = R_t(p) - R_K(p).
      float x = root.dx[k] - keyField_.dx[k], y = root.dy[k] - keyField_.dy[k];
      for (int iter = 0; iter < 3; ++iter) {
        float kx, ky;
        follow(keyField_, i, j, x, y, kx, ky);
        x = root.dx[k] - kx;
        y = root.dy[k] - ky;
      }
      frame.motion[k] = x;
      frame.motion[n + k] = y;
    }
  }
  ready.push_back(std::move(frame));
}

void KeyframeComposer::emitDirect(DecodedFrame frame, const BlockField& blocks, std::vector<DecodedFrame>& ready) {
  if (frame.isKeyframe) keyframeIndex_ = frame.index;
  frame.keyframeIndex = keyframeIndex_;
  if (mode_ == MotionMode::Reference) {
    const size_t n = blocks.size();
    frame.hasMotion = true;
    frame.motionWidth = blocks.width();
    frame.motionHeight = blocks.height();
    emptyWithCapacity(frame.motion, 2 * n);
    frame.motion.assign(2 * n, 0.f);
    for (size_t k = 0; k < n; ++k) {
      for (int s = 0; s < 2; ++s) {
        if (!blocks.hasSlot(s) || blocks.ref[s][k] == 0) continue;
        frame.motion[k] = blocks.vec[s].dx[k];
        frame.motion[n + k] = blocks.vec[s].dy[k];
        break;
      }
    }
  }
  ready.push_back(std::move(frame));
}

}  // namespace arseg
