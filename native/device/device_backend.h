// Where the device path (device_path.h) runs: a CUDA GPU (cuda_backend.cu), or the same device
// code on the CPU through the emulator (emulated_backend.cc), which is how everything built on
// this interface is tested on machines without a GPU. A backend owns device memory, copies
// across the bus (and counts the bytes), and launches the kernels of creff_cuda_kernel.cuh and
// labels_kernel.cuh. Calls on one backend must not overlap (DevicePath serialises them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "../creff/creff_cuda_kernel.cuh"
#include "../postprocess/labels_kernel.cuh"

namespace arseg {

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  // "cuda" or "cuda-emulated".
  virtual const char* name() const = 0;

  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* device) noexcept = 0;

  // Copies across the bus, counted.
  void toDevice(void* device, const void* host, size_t bytes) {
    if (!bytes) return;
    copyToDevice(device, host, bytes);
    bytesToDevice_ += bytes;
  }
  void toHost(void* host, const void* device, size_t bytes) {
    if (!bytes) return;
    copyToHost(host, device, bytes);
    bytesToHost_ += bytes;
  }
  uint64_t bytesToDevice() const { return bytesToDevice_; }
  uint64_t bytesToHost() const { return bytesToHost_; }

  // Kernels, queued in order on the backend's stream (the emulator runs them at once).
  virtual void depthwise(const float* in, const float* weight, const float* bias, float* out, int channels, int height,
                         int width) = 0;
  virtual void creff(const cudakernel::Params& p, int window) = 0;
  virtual void head(const devicekernel::HeadParams& p) = 0;
  virtual void labels(const devicekernel::LabelsParams& p) = 0;

  // Milliseconds of device work from startTimer() to stopTimer() (CUDA events; the emulator's
  // wall clock). stopTimer waits for the work.
  virtual void startTimer() = 0;
  virtual double stopTimer() = 0;

 protected:
  virtual void copyToDevice(void* device, const void* host, size_t bytes) = 0;
  virtual void copyToHost(void* host, const void* device, size_t bytes) = 0;

 private:
  uint64_t bytesToDevice_ = 0, bytesToHost_ = 0;
};

// One device allocation, released with its owner.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBackend& backend, size_t bytes) : backend_(&backend), bytes_(bytes) {
    if (bytes) ptr_ = backend.allocate(bytes);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : backend_(std::exchange(o.backend_, nullptr)),
        ptr_(std::exchange(o.ptr_, nullptr)),
        bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      backend_ = std::exchange(o.backend_, nullptr);
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  void reset() noexcept {
    if (ptr_) backend_->release(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  size_t bytes() const { return bytes_; }
  float* floats() const { return static_cast<float*>(ptr_); }
  uint8_t* bytesPtr() const { return static_cast<uint8_t*>(ptr_); }

 private:
  DeviceBackend* backend_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// The CPU emulation of the device: always available, slow (tests).
std::unique_ptr<DeviceBackend> openEmulatedBackend();

// The CUDA GPU: throws CodedError ERR_CUDA_UNAVAILABLE with the reason (cudaUsable's) when this
// build or machine has none.
std::unique_ptr<DeviceBackend> openCudaBackend();

// Whether openCudaBackend() would succeed; otherwise false with the reason and its fix, in words
// a user can act on (cuda_driver.h's diagnosis first, then the CUDA runtime's own answer).
bool cudaUsable(std::string* reason, std::string* fix = nullptr);

// The message of ERR_CUDA_UNAVAILABLE: "<reason>; to fix: <fix>".
inline std::string unavailableMessage(const std::string& reason, const std::string& fix) {
  return fix.empty() ? reason : reason + "; to fix: " + fix;
}

// The CUDA this build was compiled with (cuda_backend.cu; the stub says none).
struct CudaBuildInfo {
  bool built = false;
  int runtimeVersion = 0;     // CUDART_VERSION, e.g. 11080; 0 without CUDA
  std::string toolkit;        // nvcc's version, e.g. "11.8.89"
  std::string architectures;  // CMAKE_CUDA_ARCHITECTURES, e.g. "75-real;80-real;...;90"
  std::string driverFloor;    // the driver the statically linked runtime needs, e.g. "450.80.02"
};
CudaBuildInfo cudaBuildInfo();

}  // namespace arseg
