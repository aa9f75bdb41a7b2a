// The fused CUDA kernel of CReFF. One block computes a 16 x 16 tile of output pixels, one
// thread per pixel, in two passes over chunks of channels:
//   pass 1: for each chunk, the block stages in shared memory the upsampled LR feature over the
//           tile (+1 halo) and the warped keyframe over the tile (+K/2+1 halo), convolves them
//           into Q (per thread) and Kf (tile + K/2 halo), and every thread adds the chunk's
//           contribution to its K*K scores, kept in registers;
//   softmax in registers;
//   pass 2: for each chunk, the block stages the warped keyframe again, convolves it into V,
//           and every thread accumulates its weighted values and writes U + A.
// Nothing of size H x W x K*K exists anywhere. Sampling and coordinate maps are the same
// functions the CPU kernels use (sampling.h). In mode KeyframeConv the k and v convolutions of
// the keyframe are computed once by a separate kernel and warped instead.
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../common/coded_error.h"
#include "creff_cuda.h"
#include "sampling.h"

namespace arseg {

namespace {

constexpr int kTile = 16;
constexpr int kChunk = 8;
constexpr int kMaxWindow = 11;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw CodedError("ERR_CUDA", std::string(what) + ": " + cudaGetErrorString(err));
}

// A device allocation owned for the duration of one call.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t floats) {
    if (floats) check(cudaMalloc(&ptr_, floats * sizeof(float)), "cudaMalloc");
  }
  DeviceBuffer(const float* host, size_t floats) : DeviceBuffer(floats) {
    if (floats) check(cudaMemcpy(ptr_, host, floats * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  float* get() const { return ptr_; }

 private:
  float* ptr_ = nullptr;
};

class Event {
 public:
  Event() { check(cudaEventCreate(&event_), "cudaEventCreate"); }
  ~Event() { cudaEventDestroy(event_); }
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_{};
};

struct Params {
  const float* lr;
  const float* key;     // Exact: F_k; KeyframeConv: unused
  const float* keyK;    // KeyframeConv: dwconv_k(F_k)
  const float* keyV;    // KeyframeConv: dwconv_v(F_k)
  const float* motion;
  const float *qw, *qb, *kw, *kb, *vw, *vb;  // C x 9, C
  float* out;
  int C, h, w, H, W;
  bool official;
  bool keyframeConv;
};

__device__ __forceinline__ float sampleTaps(const float* plane, const BilinearTaps& t) {
  return t.weight[0] * plane[t.offset[0]] + t.weight[1] * plane[t.offset[1]] +
         t.weight[2] * plane[t.offset[2]] + t.weight[3] * plane[t.offset[3]];
}

__device__ __forceinline__ BilinearTaps warpTapsAt(const Params& p, int y, int x) {
  const size_t i = static_cast<size_t>(y) * p.W + x;
  const size_t plane = static_cast<size_t>(p.H) * p.W;
  return bilinearZero(warpSource(x, p.motion[i], p.W, p.official),
                      warpSource(y, p.motion[plane + i], p.H, p.official), p.H, p.W);
}

// Stages the warped keyframe (channels c0..c0+n) over a square region starting at (y0, x0) of
// side `side` into smem[cc * side*side + pos]; zero outside the image.
__device__ void stageWarped(const Params& p, const float* source, int c0, int n, int y0, int x0,
                            int side, float* smem) {
  const size_t plane = static_cast<size_t>(p.H) * p.W;
  for (int pos = threadIdx.x; pos < side * side; pos += blockDim.x) {
    const int y = y0 + pos / side, x = x0 + pos % side;
    const bool inside = y >= 0 && y < p.H && x >= 0 && x < p.W;
    BilinearTaps t{};
    if (inside) t = warpTapsAt(p, y, x);
    for (int cc = 0; cc < n; ++cc)
      smem[cc * side * side + pos] = inside ? sampleTaps(source + (c0 + cc) * plane, t) : 0.f;
  }
}

// Depthwise 3x3 of a staged region (side+2 square, origin one pixel further out) into a region
// of `side`, zero where the output position is outside the image.
__device__ void convolveStaged(const Params& p, const float* in, int c0, int n, int y0, int x0,
                               int side, const float* weight, const float* bias, float* out) {
  const int inSide = side + 2;
  for (int pos = threadIdx.x; pos < side * side; pos += blockDim.x) {
    const int i = pos / side, j = pos % side;
    const int y = y0 + i, x = x0 + j;
    const bool inside = y >= 0 && y < p.H && x >= 0 && x < p.W;
    for (int cc = 0; cc < n; ++cc) {
      float acc = 0.f;
      if (inside) {
        const int c = c0 + cc;
        acc = bias[c];
        const float* src = in + cc * inSide * inSide;
#pragma unroll
        for (int t = 0; t < 9; ++t) acc += weight[c * 9 + t] * src[(i + t / 3) * inSide + (j + t % 3)];
      }
      out[cc * side * side + pos] = acc;
    }
  }
}

template <int K>
__global__ void creffKernel(Params p) {
  constexpr int R = K / 2;
  constexpr int KS = kTile + 2 * R;  // Kf / V region side
  constexpr int FS = KS + 2;         // warped region side
  constexpr int US = kTile + 2;      // U region side
  extern __shared__ float smem[];
  float* fw = smem;                       // kChunk x FS x FS
  float* kv = fw + kChunk * FS * FS;      // kChunk x KS x KS (Kf, then V)
  float* us = kv + kChunk * KS * KS;      // kChunk x US x US

  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int x0 = blockIdx.x * kTile, y0 = blockIdx.y * kTile;
  const int x = x0 + tx, y = y0 + ty;
  const bool mine = x < p.W && y < p.H;
  const size_t plane = static_cast<size_t>(p.H) * p.W;
  const size_t lrPlane = static_cast<size_t>(p.h) * p.w;
  const float scaleY = alignCornersScale(p.h, p.H), scaleX = alignCornersScale(p.w, p.W);

  float score[K * K];
#pragma unroll
  for (int o = 0; o < K * K; ++o) score[o] = 0.f;

  // Pass 1: scores.
  for (int c0 = 0; c0 < p.C; c0 += kChunk) {
    const int n = min(kChunk, p.C - c0);
    // U over the tile + 1 halo, zero outside the image.
    for (int pos = threadIdx.x; pos < US * US; pos += blockDim.x) {
      const int uy = y0 - 1 + pos / US, ux = x0 - 1 + pos % US;
      const bool inside = uy >= 0 && uy < p.H && ux >= 0 && ux < p.W;
      BilinearTaps t{};
      if (inside) t = bilinearClamped(ux * scaleX, uy * scaleY, p.h, p.w);
      for (int cc = 0; cc < n; ++cc)
        us[cc * US * US + pos] = inside ? sampleTaps(p.lr + (c0 + cc) * lrPlane, t) : 0.f;
    }
    if (p.keyframeConv) {
      stageWarped(p, p.keyK, c0, n, y0 - R, x0 - R, KS, kv);
    } else {
      stageWarped(p, p.key, c0, n, y0 - R - 1, x0 - R - 1, FS, fw);
      __syncthreads();
      convolveStaged(p, fw, c0, n, y0 - R, x0 - R, KS, p.kw, p.kb, kv);
    }
    __syncthreads();
    if (mine) {
      for (int cc = 0; cc < n; ++cc) {
        const int c = c0 + cc;
        float q = p.qb[c];
        const float* u = us + cc * US * US;
#pragma unroll
        for (int t = 0; t < 9; ++t) q += p.qw[c * 9 + t] * u[(ty + t / 3) * US + (tx + t % 3)];
        const float* kf = kv + cc * KS * KS;
#pragma unroll
        for (int oy = 0; oy < K; ++oy)
#pragma unroll
          for (int ox = 0; ox < K; ++ox) score[oy * K + ox] += q * kf[(ty + oy) * KS + (tx + ox)];
      }
    }
    __syncthreads();
  }

  // Softmax over the window, in registers.
  float peak = score[0];
#pragma unroll
  for (int o = 1; o < K * K; ++o) peak = fmaxf(peak, score[o]);
  float total = 0.f;
#pragma unroll
  for (int o = 0; o < K * K; ++o) {
    score[o] = __expf(score[o] - peak);
    total += score[o];
  }
  const float inv = 1.f / total;

  // Pass 2: weighted values and the residual.
  const BilinearTaps self = bilinearClamped(x * scaleX, y * scaleY, p.h, p.w);
  for (int c0 = 0; c0 < p.C; c0 += kChunk) {
    const int n = min(kChunk, p.C - c0);
    if (p.keyframeConv) {
      stageWarped(p, p.keyV, c0, n, y0 - R, x0 - R, KS, kv);
    } else {
      stageWarped(p, p.key, c0, n, y0 - R - 1, x0 - R - 1, FS, fw);
      __syncthreads();
      convolveStaged(p, fw, c0, n, y0 - R, x0 - R, KS, p.vw, p.vb, kv);
    }
    __syncthreads();
    if (mine) {
      for (int cc = 0; cc < n; ++cc) {
        const int c = c0 + cc;
        const float* v = kv + cc * KS * KS;
        float acc = 0.f;
#pragma unroll
        for (int oy = 0; oy < K; ++oy)
#pragma unroll
          for (int ox = 0; ox < K; ++ox) acc += score[oy * K + ox] * v[(ty + oy) * KS + (tx + ox)];
        p.out[c * plane + static_cast<size_t>(y) * p.W + x] = sampleTaps(p.lr + c * lrPlane, self) + acc * inv;
      }
    }
    __syncthreads();
  }
}

// dwconv (zero padding, bias) of a C x H x W tensor, for mode KeyframeConv.
__global__ void depthwiseKernel(const float* in, const float* weight, const float* bias, float* out,
                                int C, int H, int W) {
  const size_t plane = static_cast<size_t>(H) * W;
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= plane * C) return;
  const int c = static_cast<int>(i / plane);
  const int y = static_cast<int>((i % plane) / W), x = static_cast<int>(i % W);
  float acc = bias[c];
  for (int t = 0; t < 9; ++t) {
    const int yy = y + t / 3 - 1, xx = x + t % 3 - 1;
    if (yy >= 0 && yy < H && xx >= 0 && xx < W) acc += weight[c * 9 + t] * in[c * plane + yy * W + xx];
  }
  out[i] = acc;
}

template <int K>
void launch(const Params& p, cudaStream_t stream) {
  constexpr int R = K / 2, KS = kTile + 2 * R, FS = KS + 2, US = kTile + 2;
  const size_t shared = sizeof(float) * kChunk * (FS * FS + KS * KS + US * US);
  check(cudaFuncSetAttribute(creffKernel<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)),
        "cudaFuncSetAttribute");
  const dim3 grid((p.W + kTile - 1) / kTile, (p.H + kTile - 1) / kTile);
  creffKernel<K><<<grid, kTile * kTile, shared, stream>>>(p);
  check(cudaGetLastError(), "CReFF kernel launch");
}

}  // namespace

bool cudaCreffAvailable(std::string* why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    if (why)
      *why = err != cudaSuccess ? std::string("no usable CUDA device: ") + cudaGetErrorString(err)
                                : "no CUDA device";
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return false;
  }
  return true;
}

double creffCuda(const CreffWeights& w, const CreffShape& s, const float* lr, const float* key,
                 const float* motion, WarpSampling sampling, CreffMode mode, float* out) {
  validateCreff(w, s);
  if (w.window > kMaxWindow)
    throw CodedError("ERR_UNSUPPORTED", "the CUDA kernel supports windows up to " +
                                            std::to_string(kMaxWindow) + "; use the CPU kernel");
  std::string why;
  if (!cudaCreffAvailable(&why)) throw CodedError("ERR_CUDA_UNAVAILABLE", why);
  const size_t C = s.channels, plane = s.plane();
  DeviceBuffer dLr(lr, C * s.lrPlane()), dKey(key, C * plane), dMotion(motion, 2 * plane);
  DeviceBuffer dOut(C * plane);
  DeviceBuffer qw(w.qWeight.data(), C * 9), qb(w.qBias.data(), C);
  DeviceBuffer kw(w.kWeight.data(), C * 9), kb(w.kBias.data(), C);
  DeviceBuffer vw(w.vWeight.data(), C * 9), vb(w.vBias.data(), C);
  const bool keyframeConv = mode == CreffMode::KeyframeConv;
  DeviceBuffer dKeyK(keyframeConv ? C * plane : 0), dKeyV(keyframeConv ? C * plane : 0);

  Params p{dLr.get(), dKey.get(), dKeyK.get(), dKeyV.get(), dMotion.get(), qw.get(), qb.get(),
           kw.get(), kb.get(), vw.get(), vb.get(), dOut.get(), s.channels, s.lrHeight, s.lrWidth,
           s.height, s.width, sampling == WarpSampling::Official, keyframeConv};
  Event start, stop;
  check(cudaEventRecord(start.get()), "cudaEventRecord");
  if (keyframeConv) {
    const int threads = 256;
    const unsigned blocks = static_cast<unsigned>((C * plane + threads - 1) / threads);
    depthwiseKernel<<<blocks, threads>>>(dKey.get(), kw.get(), kb.get(), dKeyK.get(), s.channels, s.height, s.width);
    depthwiseKernel<<<blocks, threads>>>(dKey.get(), vw.get(), vb.get(), dKeyV.get(), s.channels, s.height, s.width);
    check(cudaGetLastError(), "depthwise kernel launch");
  }
  switch (w.window) {
    case 1: launch<1>(p, nullptr); break;
    case 3: launch<3>(p, nullptr); break;
    case 5: launch<5>(p, nullptr); break;
    case 7: launch<7>(p, nullptr); break;
    case 9: launch<9>(p, nullptr); break;
    case 11: launch<11>(p, nullptr); break;
    default: throw CodedError("ERR_UNSUPPORTED", "unsupported CUDA window");
  }
  check(cudaEventRecord(stop.get()), "cudaEventRecord");
  check(cudaEventSynchronize(stop.get()), "CReFF kernel");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, start.get(), stop.get()), "cudaEventElapsedTime");
  check(cudaMemcpy(out, dOut.get(), C * plane * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
  return ms;
}

}  // namespace arseg
