#pragma once
// A std::allocator whose storage starts on a cache line (64 bytes), for arrays the vectorised
// kernels load and store a whole vector at a time: glibc's malloc aligns to 16 bytes only, so a
// 64-byte (AVX-512) store into a 16-aligned array straddles two cache lines every time, and a
// 32-byte one every other time. With the array aligned, a row whose length is a multiple of 16
// floats (160 cells at 720p, stride 8) keeps every row's vectors on whole lines.

#include <cstddef>
#include <new>
#include <vector>

namespace arseg {

template <typename T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr std::size_t kAlignment = 64;

  AlignedAllocator() noexcept = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlignment)));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(kAlignment)); }

  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const noexcept {
    return false;
  }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace arseg
