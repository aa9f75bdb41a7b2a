// What the NVIDIA driver says, asked without the CUDA runtime: libcuda.so.1 opened with dlopen
// (cuInit, cuDriverGetVersion, cuDeviceGetCount and each GPU's attributes), the kernel module's
// version from /proc/driver/nvidia/version (else NVML's), and the diagnosis of whether the CUDA
// kernels of this build can run, in words a user can act on: "no NVIDIA driver found", "driver
// 535.129.03 (CUDA 12.2) is older than 580.65.06, needed by ...", "no GPU", ... Every build has
// this (no CUDA headers needed), so a build without CUDA kernels still reports the machine's GPUs.
#pragma once

#include <string>
#include <vector>

namespace arseg {

struct CudaDeviceFacts {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  size_t memoryBytes = 0;
  int multiprocessors = 0;
  int clockKHz = 0;  // SM clock (0: the driver does not say)
  int memoryClockKHz = 0;
  int memoryBusBits = 0;
  std::string pciBusId;
};

struct CudaDriverFacts {
  bool library = false;       // libcuda.so.1 loaded
  std::string libraryError;   // dlerror() when not
  bool kernelModule = false;  // /proc/driver/nvidia/version exists
  std::string version;        // the driver release, e.g. "535.129.03" ("" unknown)
  int cudaVersion = 0;        // cuDriverGetVersion, e.g. 12020 for CUDA 12.2 (0 unknown)
  int initResult = -1;        // cuInit's CUresult (0 success; -1 not called)
  std::string initError;      // its name and description
  std::vector<CudaDeviceFacts> devices;
};

// Asks the driver; never throws. Computed once per process (later calls return the first answer).
const CudaDriverFacts& cudaDriverFacts();
// Asks again (for tests of the parsing); never throws.
CudaDriverFacts probeCudaDriver();

// What this build's CUDA code needs (device_backend.h's CudaBuildInfo, parsed).
struct CudaNeeds {
  bool built = false;            // the build has CUDA kernels
  int runtimeVersion = 0;        // e.g. 11080
  std::string driverFloor;       // e.g. "450.80.02"
  std::vector<int> machineCode;  // SM versions with cubins, e.g. {75, 80, 86, 89, 90}
  std::vector<int> ptx;          // virtual architectures with PTX, e.g. {90}
};
// Parses CMAKE_CUDA_ARCHITECTURES ("75-real;80-real;90" or with commas or spaces: NN-real
// machine code, NN-virtual PTX, NN both).
void parseCudaArchitectures(const std::string& list, CudaNeeds* needs);

struct CudaDiagnosis {
  bool ok = false;
  std::string reason;  // the first problem, "" when ok
  std::string fix;     // what to do about it
};
// The first reason the CUDA kernels cannot run here, checked in the order a user fixes them:
// the driver, its version, a GPU, the build's kernels, the GPUs' architectures.
CudaDiagnosis diagnoseCuda(const CudaDriverFacts& driver, const CudaNeeds& needs);

// "12.2" for 12020.
std::string cudaVersionString(int version);

}  // namespace arseg
