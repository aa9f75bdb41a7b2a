#include "reference_resolver.h"

#include <algorithm>
#include <utility>

#include "../common/recycled_storage.h"

namespace arseg {

namespace {

constexpr int64_t kUnknown = -1;  // kRefPictureUnknown
constexpr int64_t kNone = -2;     // kRefPictureNone
// Decode numbers remembered: far more than any reference reaches back (16 pictures in a DPB,
// long-term references included while they are this recent).
constexpr size_t kRemembered = 4096;

}  // namespace

void ReferenceResolver::push(DecodedFrame frame, int64_t decodeNumber, std::vector<int64_t> refPictures,
                             std::vector<DecodedFrame>& ready) {
  if (decodeNumber >= 0) {
    displayIndexOf_[decodeNumber] = frame.index;
    mapped_.push_back(decodeNumber);
    if (mapped_.size() > kRemembered) {
      // A decode number can come back after a decoder flush: forget it only if it still
      // points at the old frame.
      const int64_t old = mapped_.front();
      mapped_.pop_front();
      auto it = displayIndexOf_.find(old);
      if (it != displayIndexOf_.end() && it->second < frame.index - int64_t(kRemembered)) displayIndexOf_.erase(it);
    }
  }
  refPictures.resize(frame.vectors.size() / kVectorColumns, kUnknown);
  const int64_t previousAnchor = lastAnchor_;
  if (frame.pictType != 'B') {
    anchors_.push_back(frame.index);
    lastAnchor_ = frame.index;
  }
  // The few distinct pictures the vectors name (and whether any unnamed one points ahead), so
  // that waiting and resolving look each up once.
  std::vector<int64_t> pictures;
  bool ahead = false;
  const int32_t* vectors = frame.vectors.data();
  const int64_t* refs = refPictures.data();
  const size_t rows = refPictures.size();
  int64_t last = kNone;  // only ever a picture (>= 0): rows naming the last one skip the rest
  for (size_t i = 0; i < rows; ++i) {
    const int64_t ref = refs[i];
    if (ref == last) continue;
    if (ref >= 0) {
      if (std::find(pictures.begin(), pictures.end(), ref) == pictures.end()) pictures.push_back(ref);
      last = ref;
    } else if (ref == kUnknown && vectors[i * kVectorColumns] > 0) {
      ahead = true;
    }
  }
  pending_.push_back(
      {std::move(frame), std::move(refPictures), std::move(pictures), ahead, previousAnchor, arrivals_++});
  release(false, ready);
  // Anchors older than every held frame's are no longer looked up.
  const int64_t oldest = pending_.empty() ? lastAnchor_ : pending_.front().frame.index;
  size_t drop = 0;
  while (drop + 1 < anchors_.size() && anchors_[drop + 1] <= oldest) ++drop;
  if (drop) anchors_.erase(anchors_.begin(), anchors_.begin() + drop);
}

void ReferenceResolver::flush(std::vector<DecodedFrame>& ready) { release(true, ready); }

bool ReferenceResolver::resolvable(const Pending& p, bool atEnd) const {
  if (atEnd) return true;
  const bool timedOut = arrivals_ - 1 - p.arrival >= kMaxWait;
  bool needNextAnchor = p.needsNextAnchor;
  for (int64_t ref : p.pictures) {
    if (displayIndexOf_.count(ref)) continue;
    if (!timedOut) return false;
    needNextAnchor = true;  // given up on: the nearest anchor in its direction (maybe ahead)
  }
  // The nearest anchor after the frame: the last one pushed, if it comes after it.
  return !needNextAnchor || lastAnchor_ > p.frame.index;
}

void ReferenceResolver::resolve(Pending& p, bool atEnd) {
  DecodedFrame& f = p.frame;
  const size_t n = p.refPictures.size();
  // Both are written for every row below: sized without a fill first. vectorRefs is handed to
  // JavaScript (storage from earlier frames'), compositionRefs comes back through recycle().
  int32_t* vectorRefs = nullptr;
  if (fillsVectorRefs_) {
    sizeForOverwrite(f.vectorRefs, n);
    vectorRefs = f.vectorRefs.data();
  } else {
    f.vectorRefs.clear();
  }
  f.compositionRefs.swap(spareRefs_);
  spareRefs_.clear();
  sizeForOverwrite(f.compositionRefs, n);
  int32_t* compositionRefs = f.compositionRefs.data();
  int64_t nextAnchor = -1;
  auto it = std::upper_bound(anchors_.begin(), anchors_.end(), f.index);
  if (it != anchors_.end()) nextAnchor = *it;
  (void)atEnd;
  // Distance of each distinct picture; 0 where it never came out.
  std::vector<int32_t> distance(p.pictures.size(), 0);
  for (size_t k = 0; k < p.pictures.size(); ++k) {
    auto found = displayIndexOf_.find(p.pictures[k]);
    if (found == displayIndexOf_.end() || found->second == f.index) continue;
    const int64_t d = f.index - found->second;
    if (d > INT32_MIN && d <= INT32_MAX) distance[k] = static_cast<int32_t>(d);
  }
  int64_t lastRef = kNone;
  int32_t lastDistance = 0;
  const int64_t* refs = p.refPictures.data();
  for (size_t i = 0; i < n;) {
    const int64_t ref = refs[i];
    if (ref >= 0) {
      if (ref != lastRef) {
        lastRef = ref;
        lastDistance = distance[std::find(p.pictures.begin(), p.pictures.end(), ref) - p.pictures.begin()];
      }
      if (lastDistance != 0) {
        // A run of rows naming the same picture (mostly the whole frame), filled at once: row
        // by row this loop cost more than exporting the rows.
        size_t end = i + 1;
        while (end < n && refs[end] == ref) ++end;
        std::fill(compositionRefs + i, compositionRefs + end, lastDistance);
        if (vectorRefs) std::fill(vectorRefs + i, vectorRefs + end, lastDistance);
        i = end;
        continue;
      }
    }
    if (ref == kNone) {
      if (vectorRefs) vectorRefs[i] = kVectorRefNone;
      compositionRefs[i] = 0;
    } else {
      // Unknown: the nearest anchor in the vector's direction.
      const int32_t source = f.vectors[i * kVectorColumns];
      int64_t assumed = 0;
      if (source < 0 && p.previousAnchor >= 0) assumed = f.index - p.previousAnchor;
      if (source > 0 && nextAnchor > f.index) assumed = f.index - nextAnchor;
      compositionRefs[i] = static_cast<int32_t>(assumed);
      if (vectorRefs)
        vectorRefs[i] = nearestAnchorsAreExact_ && ref == kUnknown ? static_cast<int32_t>(assumed) : kVectorRefUnknown;
    }
    ++i;
  }
}

void ReferenceResolver::release(bool atEnd, std::vector<DecodedFrame>& ready) {
  while (!pending_.empty() && resolvable(pending_.front(), atEnd)) {
    resolve(pending_.front(), atEnd);
    ready.push_back(std::move(pending_.front().frame));
    // The next frame's export takes this storage (motion_vectors.cc, sizeForOverwrite): no
    // allocation and zero-fill per frame.
    RecycledStorage<int64_t>::give(std::move(pending_.front().refPictures));
    pending_.pop_front();
  }
}

}  // namespace arseg
