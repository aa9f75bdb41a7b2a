#include "emulated_backend.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "../common/coded_error.h"
#include "../common/parallel_for.h"

namespace arseg {

namespace emu {
thread_local ThreadContext context;
}  // namespace emu

namespace {

using cudakernel::kTile;
using cudakernel::Params;

// A reusable barrier for a fixed number of threads (C++17 has none).
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const long generation = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation != generation_; });
  }
  static void thunk(void* self) { static_cast<Barrier*>(self)->wait(); }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  const int count_;
  int arrived_ = 0;
  long generation_ = 0;
};

template <int K>
void emulateCreffGrid(const Params& p) {
  const int blocksX = (p.W + kTile - 1) / kTile, blocksY = (p.H + kTile - 1) / kTile;
  const int threads = kTile * kTile;
  std::vector<float> shared(cudakernel::sharedFloats(K));
  Barrier barrier(threads);
  auto body = [&](int tid) {
    emu::context = {tid, threads, 0, 0, &Barrier::thunk, &barrier};
    for (int b = 0; b < blocksX * blocksY; ++b) {
      barrier.wait();  // the previous block is done with shared memory
      if (tid == 0) std::fill(shared.begin(), shared.end(), std::numeric_limits<float>::quiet_NaN());
      barrier.wait();
      emu::context.blockX = b % blocksX;
      emu::context.blockY = b / blocksX;
      cudakernel::creffBlock<K>(p, shared.data());
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) pool.emplace_back(body, t);
  for (std::thread& t : pool) t.join();
}

// An element-wise kernel (one thread per element, no shared memory, no barrier): the threads are
// independent, so they run in parallel chunks.
template <typename Fn>
void emulateElementwise(size_t count, Fn&& fn) {
  constexpr size_t kChunk = 4096;
  const size_t chunks = (count + kChunk - 1) / kChunk;
  parallelFor(static_cast<int>(chunks), 0, [&](int chunk, int) {
    const size_t begin = static_cast<size_t>(chunk) * kChunk;
    const size_t end = begin + kChunk < count ? begin + kChunk : count;
    for (size_t i = begin; i < end; ++i) fn(i);
  });
}

double nowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void* EmulatedBackend::allocate(size_t bytes) {
  // Poisoned like fresh device memory can be anything: a kernel reading what nobody wrote gives NaN.
  void* p = std::malloc(bytes);
  if (!p) throw CodedError("ERR_CUDA", "emulated device: out of memory (" + std::to_string(bytes) + " bytes)");
  std::memset(p, 0xff, bytes);
  return p;
}

void EmulatedBackend::release(void* device) noexcept { std::free(device); }

void EmulatedBackend::copyToDevice(void* device, const void* host, size_t bytes) { std::memcpy(device, host, bytes); }
void EmulatedBackend::copyToHost(void* host, const void* device, size_t bytes) { std::memcpy(host, device, bytes); }

void EmulatedBackend::depthwise(const float* in, const float* weight, const float* bias, float* out, int channels,
                                int height, int width) {
  emulateElementwise(static_cast<size_t>(channels) * height * width,
                     [&](size_t i) { cudakernel::depthwiseAt(i, in, weight, bias, out, channels, height, width); });
}

void EmulatedBackend::creff(const Params& p, int window) {
  switch (window) {
    case 1: emulateCreffGrid<1>(p); break;
    case 3: emulateCreffGrid<3>(p); break;
    case 5: emulateCreffGrid<5>(p); break;
    case 7: emulateCreffGrid<7>(p); break;
    case 9: emulateCreffGrid<9>(p); break;
    case 11: emulateCreffGrid<11>(p); break;
    default:
      throw CodedError("ERR_UNSUPPORTED", "the CUDA kernel supports windows 1 to " +
                                              std::to_string(cudakernel::kMaxWindow) + "; use the CPU kernel");
  }
}

void EmulatedBackend::head(const devicekernel::HeadParams& p) {
  emulateElementwise(p.plane, [&](size_t i) { devicekernel::headAt(p, i); });
}

void EmulatedBackend::labels(const devicekernel::LabelsParams& p) {
  emulateElementwise(static_cast<size_t>(p.outH) * p.outW, [&](size_t i) { devicekernel::labelAt(p, i); });
}

void EmulatedBackend::startTimer() { started_ = nowMs(); }
double EmulatedBackend::stopTimer() { return nowMs() - started_; }

std::unique_ptr<DeviceBackend> openEmulatedBackend() { return std::make_unique<EmulatedBackend>(); }

}  // namespace arseg
