#include "keyframe_composer.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace arseg {

namespace {

// A limit on B-frames held at once, so a stream that never sends another anchor cannot make us
// buffer without bound; real encoders use at most 16 consecutive B-frames.
constexpr size_t kMaxHeldFrames = 32;

// Sample `root` where cell (i, j) lands after moving by (mx, my) pixels.
inline void follow(const MotionGrid& root, int i, int j, float mx, float my, float& ox, float& oy) {
  root.sample(j + mx / root.stride, i + my / root.stride, ox, oy);
}

}  // namespace

// The result is written over `blocks.past`, cell by cell: each cell reads only its own block
// vector before writing, so no second grid is needed.
MotionGrid KeyframeComposer::composeAnchor(BlockField& blocks) const {
  MotionGrid& root = blocks.past;
  const int gw = root.width, gh = root.height;
  const bool chain = haveAnchor_ && anchorRoot_.width == gw && anchorRoot_.height == gh;
  if (!chain) {  // no earlier anchor: the block vectors are the whole displacement
    for (size_t k = 0; k < root.size(); ++k)
      if (!blocks.hasPast[k]) root.dx[k] = root.dy[k] = 0.f;
    return std::move(root);
  }
  const float inv = 1.f / root.stride;
  const uint8_t* has = blocks.hasPast.data();
  float* outX = root.dx.data();
  float* outY = root.dy.data();
  const float* prevX = anchorRoot_.dx.data();
  const float* prevY = anchorRoot_.dy.data();
  for (int i = 0; i < gh; ++i) {
    for (int j = 0; j < gw; ++j) {
      const size_t k = static_cast<size_t>(i) * gw + j;
      if (has[k]) {
        const float mx = outX[k], my = outY[k];
        float rx, ry;
        anchorRoot_.sample(j + mx * inv, i + my * inv, rx, ry);
        outX[k] = mx + rx;
        outY[k] = my + ry;
      } else {  // intra: zero motion to the past anchor
        outX[k] = prevX[k];
        outY[k] = prevY[k];
      }
    }
  }
  return std::move(root);
}

MotionGrid KeyframeComposer::composeBetween(const BlockField& blocks,
                                            const MotionGrid* futureRoot) const {
  MotionGrid root(0, 0, blocks.past.stride);
  root.width = blocks.past.width;
  root.height = blocks.past.height;
  root.dx.resize(blocks.past.size());
  root.dy.resize(blocks.past.size());
  const int gw = root.width, gh = root.height;
  const bool chain = haveAnchor_ && anchorRoot_.width == gw && anchorRoot_.height == gh;
  const bool ahead = futureRoot && futureRoot->width == gw && futureRoot->height == gh;
  for (int i = 0; i < gh; ++i) {
    for (int j = 0; j < gw; ++j) {
      const size_t k = static_cast<size_t>(i) * gw + j;
      float sx = 0, sy = 0;
      int n = 0;
      if (blocks.hasPast[k]) {
        float rx = 0, ry = 0;
        if (chain) follow(anchorRoot_, i, j, blocks.past.dx[k], blocks.past.dy[k], rx, ry);
        sx += blocks.past.dx[k] + rx;
        sy += blocks.past.dy[k] + ry;
        ++n;
      }
      if (ahead && !blocks.hasFuture.empty() && blocks.hasFuture[k]) {
        float rx = 0, ry = 0;
        follow(*futureRoot, i, j, blocks.future.dx[k], blocks.future.dy[k], rx, ry);
        sx += blocks.future.dx[k] + rx;
        sy += blocks.future.dy[k] + ry;
        ++n;
      }
      if (n > 0) {
        root.dx[k] = sx / n;
        root.dy[k] = sy / n;
      } else {
        root.dx[k] = chain ? anchorRoot_.dx[k] : 0.f;
        root.dy[k] = chain ? anchorRoot_.dy[k] : 0.f;
      }
    }
  }
  return root;
}

void KeyframeComposer::emit(DecodedFrame frame, const MotionGrid& root,
                            std::vector<DecodedFrame>& ready) {
  if (frame.isKeyframe) {
    keyframeIndex_ = frame.index;
    keyRoot_ = root;
    keyRootIsZero_ = true;
    for (size_t k = 0; k < root.size() && keyRootIsZero_; ++k)
      keyRootIsZero_ = root.dx[k] == 0.f && root.dy[k] == 0.f;
  }
  frame.keyframeIndex = keyframeIndex_;
  frame.hasMotion = true;
  frame.motionWidth = root.width;
  frame.motionHeight = root.height;
  const size_t n = root.size();
  if (frame.isKeyframe) {
    frame.motion.assign(2 * n, 0.f);
  } else if (keyRootIsZero_ || keyRoot_.width != root.width || keyRoot_.height != root.height) {
    // The keyframe is the chain's root (the default policy): the root field is the answer.
    frame.motion.resize(2 * n);
    std::copy(root.dx.begin(), root.dx.end(), frame.motion.begin());
    std::copy(root.dy.begin(), root.dy.end(), frame.motion.begin() + n);
  } else {
    frame.motion.resize(2 * n);
    for (int i = 0; i < root.height; ++i) {
      for (int j = 0; j < root.width; ++j) {
        const size_t k = static_cast<size_t>(i) * root.width + j;
        // Solve x = R_t(p) - R_K(p + x): a few fixed-point steps from x0 = R_t(p) - R_K(p).
        float x = root.dx[k] - keyRoot_.dx[k], y = root.dy[k] - keyRoot_.dy[k];
        for (int it = 0; it < 3; ++it) {
          float kx, ky;
          follow(keyRoot_, i, j, x, y, kx, ky);
          x = root.dx[k] - kx;
          y = root.dy[k] - ky;
        }
        frame.motion[k] = x;
        frame.motion[n + k] = y;
      }
    }
  }
  ready.push_back(std::move(frame));
}

void KeyframeComposer::emitDirect(DecodedFrame frame, const BlockField& blocks,
                                  std::vector<DecodedFrame>& ready) {
  if (frame.isKeyframe) keyframeIndex_ = frame.index;
  frame.keyframeIndex = keyframeIndex_;
  if (mode_ == MotionMode::Reference) {
    const size_t n = blocks.past.size();
    frame.hasMotion = true;
    frame.motionWidth = blocks.past.width;
    frame.motionHeight = blocks.past.height;
    frame.motion.assign(2 * n, 0.f);
    for (size_t k = 0; k < n; ++k) {
      if (blocks.hasPast[k]) {
        frame.motion[k] = blocks.past.dx[k];
        frame.motion[n + k] = blocks.past.dy[k];
      } else if (!blocks.hasFuture.empty() && blocks.hasFuture[k]) {
        frame.motion[k] = blocks.future.dx[k];
        frame.motion[n + k] = blocks.future.dy[k];
      }
    }
  }
  ready.push_back(std::move(frame));
}

void KeyframeComposer::releasePending(const MotionGrid* futureRoot,
                                      std::vector<DecodedFrame>& ready) {
  for (Held& held : pending_) {
    MotionGrid root = composeBetween(held.blocks, futureRoot);
    emit(std::move(held.frame), root, ready);
  }
  pending_.clear();
}

void KeyframeComposer::push(DecodedFrame frame, BlockField blocks,
                            std::vector<DecodedFrame>& ready) {
  if (mode_ != MotionMode::Accumulated) {
    emitDirect(std::move(frame), blocks, ready);
    return;
  }
  if (frame.pictType == 'B' && haveAnchor_ && !blocks.toPreviousPicture) {
    pending_.push_back({std::move(frame), std::move(blocks)});
    if (pending_.size() >= kMaxHeldFrames) releasePending(nullptr, ready);
    return;
  }
  float intraShare = 0;
  if (policy_.mode == KeyframePolicy::Mode::Adaptive) {
    size_t intra = 0;
    for (size_t k = 0; k < blocks.hasPast.size(); ++k)
      intra += (!blocks.hasPast[k] && (blocks.hasFuture.empty() || !blocks.hasFuture[k])) ||
               (!blocks.unexplained.empty() && blocks.unexplained[k]);
    intraShare = blocks.hasPast.empty() ? 1.f : float(intra) / blocks.hasPast.size();
  }
  MotionGrid root = composeAnchor(blocks);
  releasePending(&root, ready);
  if (policy_.mode == KeyframePolicy::Mode::Adaptive && !frame.isKeyframe)
    frame.isKeyframe = wantsKeyframe(frame, root, intraShare);
  if (frame.isKeyframe && (frame.pictType == 'I' || blocks.toPreviousPicture)) {
    // A new chain starts at a keyframe I-frame: nothing after it refers across it. Nor across
    // any keyframe when every picture refers to the one before (estimated motion).
    for (size_t k = 0; k < root.size(); ++k) root.dx[k] = root.dy[k] = 0.f;
  }
  emit(std::move(frame), root, ready);
  anchorRoot_ = std::move(root);
  haveAnchor_ = true;
}

void KeyframeComposer::flush(std::vector<DecodedFrame>& ready) { releasePending(nullptr, ready); }

bool KeyframeComposer::wantsKeyframe(const DecodedFrame& frame, const MotionGrid& root,
                                     float intraShare) const {
  if (frame.index - keyframeIndex_ >= policy_.maxInterval) return true;
  if (intraShare >= policy_.intraShare) return true;
  // Median displacement to the keyframe, approximated cell by cell as |R_t(p) - R_K(p)|.
  const bool sameGrid = keyRoot_.width == root.width && keyRoot_.height == root.height;
  std::vector<float> magnitude(root.size());
  for (size_t k = 0; k < root.size(); ++k) {
    const float dx = root.dx[k] - (sameGrid ? keyRoot_.dx[k] : 0.f);
    const float dy = root.dy[k] - (sameGrid ? keyRoot_.dy[k] : 0.f);
    magnitude[k] = std::sqrt(dx * dx + dy * dy);
  }
  if (magnitude.empty()) return false;
  std::nth_element(magnitude.begin(), magnitude.begin() + magnitude.size() / 2, magnitude.end());
  const float limit = policy_.maxMotion > 0 ? policy_.maxMotion
                                            : 0.08f * std::max(frame.width, frame.height);
  return magnitude[magnitude.size() / 2] >= limit;
}

}  // namespace arseg
