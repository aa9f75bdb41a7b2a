// The luma pyramids (estimator.h) of the last few pictures, by display index, so that a picture
// estimated as the current one need not be rebuilt when it is the reference of a later one (the
// motion fill of a B-pyramid matches several B-frames against the same P-frame, and a P-frame
// filled as the current picture is the next ones' reference).
//
// Bounded: at most `capacity` pyramids; inserting into a full cache evicts the least recently
// used one and rebuilds into its storage (no allocation once warm, no copy). Because the
// victim is the least recently used, the pyramid returned by the call before stays valid as
// long as capacity >= 2: a caller can hold a reference and a current pyramid together.
#pragma once

#include <cstdint>
#include <vector>

#include "estimator.h"

namespace arseg {

class PyramidCache {
 public:
  explicit PyramidCache(size_t capacity) : capacity_(capacity < 2 ? 2 : capacity) { entries_.reserve(capacity_); }

  // The pyramid of picture `key`, or null; marks it as used.
  const LumaPyramid* find(int64_t key) {
    for (Entry& e : entries_)
      if (e.valid && e.key == key) {
        e.used = ++clock_;
        return &e.pyramid;
      }
    return nullptr;
  }

  // Storage for picture `key`'s pyramid, to be filled by the caller (buildPyramid): a fresh
  // entry, or the least recently used one's recycled. Any older entry for `key` is replaced.
  LumaPyramid& insert(int64_t key) {
    erase(key);
    Entry* slot = nullptr;
    if (entries_.size() < capacity_) {
      entries_.emplace_back();
      slot = &entries_.back();
    } else {
      slot = &entries_.front();
      for (Entry& e : entries_)
        if (e.used < slot->used) slot = &e;
    }
    slot->key = key;
    slot->used = ++clock_;
    slot->valid = true;
    return slot->pyramid;
  }

  // Forgets picture `key` (its picture was replaced): its storage stays for reuse.
  void erase(int64_t key) {
    for (Entry& e : entries_)
      if (e.valid && e.key == key) {
        e.valid = false;
        e.key = kNoKey;
        e.used = 0;
      }
  }

  // Forgets every picture before `key` (no frame can still be matched against them).
  void eraseBefore(int64_t key) {
    for (Entry& e : entries_)
      if (e.valid && e.key < key) erase(e.key);
  }

  size_t size() const {
    size_t n = 0;
    for (const Entry& e : entries_) n += e.valid;
    return n;
  }
  size_t capacity() const { return capacity_; }

 private:
  static constexpr int64_t kNoKey = INT64_MIN;
  struct Entry {
    int64_t key = kNoKey;
    uint64_t used = 0;  // clock_ at the last find or insert; 0 = free
    bool valid = false;
    LumaPyramid pyramid;
  };
  size_t capacity_;
  uint64_t clock_ = 0;
  // At most capacity_ entries, reserved up front: pointers handed out stay put.
  std::vector<Entry> entries_;
};

}  // namespace arseg
