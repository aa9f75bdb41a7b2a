#include "creff_cuda_emulator.h"

#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "../common/coded_error.h"
#include "creff_cuda_kernel.cuh"

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
void emulateGrid(const Params& p) {
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

}  // namespace

void creffCudaEmulated(const CreffWeights& w, const CreffShape& s, const float* lr, const float* key,
                       const float* motion, WarpSampling sampling, CreffMode mode, float* out) {
  validateCreff(w, s);
  const size_t plane = s.plane(), C = s.channels;
  const bool keyframeConv = mode == CreffMode::KeyframeConv;
  std::vector<float> keyK(keyframeConv ? C * plane : 0), keyV(keyK.size());
  for (size_t i = 0; i < keyK.size(); ++i) {  // the depthwise kernel, one "thread" per element
    cudakernel::depthwiseAt(i, key, w.kWeight.data(), w.kBias.data(), keyK.data(), s.channels, s.height, s.width);
    cudakernel::depthwiseAt(i, key, w.vWeight.data(), w.vBias.data(), keyV.data(), s.channels, s.height, s.width);
  }
  const Params p{lr, key, keyK.data(), keyV.data(), motion, w.qWeight.data(), w.qBias.data(),
                 w.kWeight.data(), w.kBias.data(), w.vWeight.data(), w.vBias.data(), out,
                 s.channels, s.lrHeight, s.lrWidth, s.height, s.width,
                 sampling == WarpSampling::Official, keyframeConv};
  switch (w.window) {
    case 1: emulateGrid<1>(p); break;
    case 3: emulateGrid<3>(p); break;
    case 5: emulateGrid<5>(p); break;
    case 7: emulateGrid<7>(p); break;
    case 9: emulateGrid<9>(p); break;
    case 11: emulateGrid<11>(p); break;
    default:
      throw CodedError("ERR_UNSUPPORTED", "the CUDA kernel supports windows 1 to " +
                                              std::to_string(cudakernel::kMaxWindow));
  }
}

}  // namespace arseg
