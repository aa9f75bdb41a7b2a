#pragma once
// Storage recycled from arrays handed to JavaScript.
//
// The per-frame arrays a reader hands out (motion vectors, their references, the dense field)
// become the storage of typed arrays (frame_js.cc adopts the std::vector, no copy). Allocated
// fresh for every frame, they cost the decoding thread malloc, first-touch page faults and the
// kernel's page handling on every frame: glibc trims the decoding thread's arena as the
// finalisers free the old ones, so each new frame faults its pages in again (BENCHMARKS.md,
// "Cost of exact motion"). Here a finaliser hands its vector back instead, and the decoding
// thread takes it for a later frame: the same pages, already mapped.
//
// Finalisers run on the JavaScript thread, readers decode on worker threads: one lock. The pool
// is bounded (kMaxBytes per element type) so that a burst of finalisers after a garbage
// collection does not pin memory; what does not fit is freed as before.
//
// The motion composer's grids come here too as a reader ends (keyframe_composer.cc): the next
// reader's first frames take them instead of allocating and zero-filling a window of grids.

#include <cstddef>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

namespace arseg {

template <typename T>
class RecycledStorage {
 public:
  static constexpr size_t kMaxBytes = size_t(24) << 20;  // per element type, all readers together
  static constexpr size_t kMaxVectors = 256;

  // An empty vector with room for at least `capacity` elements: a recycled one when one is that
  // large (the smallest such, so that small arrays do not take the large ones' storage), else
  // freshly reserved.
  // With keepElements, a recycled vector keeps the elements of the array it was (its size too),
  // for a caller that overwrites them all (sizeForOverwrite below).
  static std::vector<T> take(size_t capacity, bool keepElements = false) {
    std::vector<T> out;
    if (capacity == 0) return out;
    {
      Pool& p = pool();
      std::lock_guard<std::mutex> lock(p.mutex);
      size_t best = p.spares.size();
      for (size_t i = p.spares.size(); i-- > 0;) {
        const size_t c = p.spares[i].capacity();
        if (c >= capacity && (best == p.spares.size() || c < p.spares[best].capacity())) {
          best = i;
          if (c == capacity) break;
        }
      }
      if (best != p.spares.size()) {
        out.swap(p.spares[best]);
        p.spares[best].swap(p.spares.back());
        p.spares.pop_back();
        p.bytes -= out.capacity() * sizeof(T);
      }
    }
    if (!keepElements) out.clear();  // a spare keeps the elements of the array it was
    // Fresh storage gets a quarter more room than asked: the next frames' arrays vary in
    // length (the vectors' count does), and a spare a few rows too short would be no use.
    if (out.capacity() < capacity) {
      out.clear();
      out.reserve(capacity + capacity / 4);
    }
    return out;
  }

  // Hands a vector's storage to the pool (or frees it when the pool is full).
  static void give(std::vector<T>&& v) {
    const size_t bytes = v.capacity() * sizeof(T);
    if (bytes == 0) return;
    std::vector<T> dropped;  // freed outside the lock
    {
      Pool& p = pool();
      std::lock_guard<std::mutex> lock(p.mutex);
      if (p.bytes + bytes <= kMaxBytes && p.spares.size() < kMaxVectors) {
        p.spares.push_back(std::move(v));
        p.bytes += bytes;
        return;
      }
      dropped = std::move(v);
    }
  }

  // Frees every spare (tests; a host that wants the memory back).
  static void clear() {
    std::vector<std::vector<T>> dropped;
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    dropped.swap(p.spares);
    p.bytes = 0;
  }

  static size_t spareBytes() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    return p.bytes;
  }

 private:
  struct Pool {
    std::mutex mutex;
    std::vector<std::vector<T>> spares;
    size_t bytes = 0;
  };
  // Never destroyed: finalisers may still run while the process exits, after static
  // destructors would have run.
  static Pool& pool() {
    static Pool* p = new Pool();
    return *p;
  }
};

// Empties `v` and gives it room for `capacity` elements, from the pool when its own storage is
// too small (which goes back to the pool).
template <typename T>
void emptyWithCapacity(std::vector<T>& v, size_t capacity) {
  v.clear();
  if (v.capacity() >= capacity) return;
  std::vector<T> fresh = RecycledStorage<T>::take(capacity);
  v.swap(fresh);
  RecycledStorage<T>::give(std::move(fresh));
}

// Gives `v` exactly n elements for a caller that then writes every one of them: storage from
// the pool when its own is too small (which goes back to the pool), keeping the elements it
// holds, so that only those beyond its old size are value-initialised. The zero-fill of a plain
// resize after clear() wrote each frame's arrays twice (bench/decode.js, callgrind: 1% of
// decoding's instructions for the vectors alone).
template <typename T>
void sizeForOverwrite(std::vector<T>& v, size_t n) {
  static_assert(std::is_trivially_copyable<T>::value, "stale elements are overwritten, never read");
  if (v.capacity() < n) {
    std::vector<T> fresh = RecycledStorage<T>::take(n, true);
    v.swap(fresh);
    RecycledStorage<T>::give(std::move(fresh));
  }
  v.resize(n);
}

}  // namespace arseg
