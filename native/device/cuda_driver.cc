#include "cuda_driver.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

namespace arseg {

namespace {

// The few driver API entry points used, declared here so that no CUDA header is needed
// (CUresult is an int enum, CUdevice an int).
using CuInit = int (*)(unsigned);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuDeviceGet = int (*)(int*, int);
using CuDeviceGetName = int (*)(char*, int, int);
using CuDeviceGetAttribute = int (*)(int*, int, int);
using CuDeviceTotalMem = int (*)(size_t*, int);
using CuDeviceGetPCIBusId = int (*)(char*, int, int);
using CuGetErrorString = int (*)(int, const char**);

// CUdevice_attribute values (cuda.h; stable since CUDA 2-5).
constexpr int kAttrClockRate = 13;
constexpr int kAttrMultiprocessorCount = 16;
constexpr int kAttrMemoryClockRate = 36;
constexpr int kAttrGlobalMemoryBusWidth = 37;
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;

template <typename F>
F symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 18:56:32 UTC 2023"
std::string kernelModuleVersion(bool* present) {
  std::ifstream in("/proc/driver/nvidia/version");
  *present = static_cast<bool>(in);
  if (!in) return "";
  std::string line;
  std::getline(in, line);
  std::smatch m;
  static const std::regex version(R"((\d{3,4}\.\d+(?:\.\d+)?))");
  return std::regex_search(line, m, version) ? m[1].str() : "";
}

// NVML's answer, for when /proc does not say (it needs the kernel module too).
std::string nvmlDriverVersion() {
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!nvml) return "";
  std::string out;
  auto init = symbol<int (*)()>(nvml, "nvmlInit_v2");
  auto version = symbol<int (*)(char*, unsigned)>(nvml, "nvmlSystemGetDriverVersion");
  auto shutdown = symbol<int (*)()>(nvml, "nvmlShutdown");
  if (init && version && shutdown && init() == 0) {
    char buffer[96] = {};
    if (version(buffer, sizeof buffer) == 0) out = buffer;
    shutdown();
  }
  dlclose(nvml);
  return out;
}

std::string joinArchs(const std::vector<int>& v, const char* prefix) {
  std::string s;
  for (int a : v) s += (s.empty() ? "" : ", ") + std::string(prefix) + std::to_string(a);
  return s;
}

// "GPU 0 (NVIDIA H100, compute capability 9.0)"
std::string describe(const CudaDeviceFacts& d) {
  return "GPU " + std::to_string(d.index) + " (" + d.name + ", compute capability " + std::to_string(d.major) + "." +
         std::to_string(d.minor) + ")";
}

const char* kDriverFix =
    "install the NVIDIA driver, 525.60.13 or newer (what ONNX Runtime's CUDA 12 provider needs), e.g. "
    "`apt install nvidia-driver` (Debian, non-free) and reboot; in a container, start it with the NVIDIA "
    "Container Toolkit (`docker run --gpus all ...`)";

}  // namespace

std::string cudaVersionString(int version) {
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}

CudaDriverFacts probeCudaDriver() {
  CudaDriverFacts f;
  f.version = kernelModuleVersion(&f.kernelModule);
  // Not closed: libcuda does not support being unloaded, and the CUDA runtime (linked into this
  // addon) opens it again anyway.
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    f.libraryError = err ? err : "dlopen failed";
    return f;
  }
  f.library = true;
  auto init = symbol<CuInit>(lib, "cuInit");
  auto driverVersion = symbol<CuDriverGetVersion>(lib, "cuDriverGetVersion");
  auto count = symbol<CuDeviceGetCount>(lib, "cuDeviceGetCount");
  auto get = symbol<CuDeviceGet>(lib, "cuDeviceGet");
  auto name = symbol<CuDeviceGetName>(lib, "cuDeviceGetName");
  auto attribute = symbol<CuDeviceGetAttribute>(lib, "cuDeviceGetAttribute");
  auto totalMem = symbol<CuDeviceTotalMem>(lib, "cuDeviceTotalMem_v2");
  auto pciBusId = symbol<CuDeviceGetPCIBusId>(lib, "cuDeviceGetPCIBusId");
  auto errorString = symbol<CuGetErrorString>(lib, "cuGetErrorString");
  auto errorName = symbol<CuGetErrorString>(lib, "cuGetErrorName");
  if (!init || !driverVersion || !count || !get || !name || !attribute) {
    f.library = false;
    f.libraryError = "libcuda.so.1 lacks the CUDA driver API (cuInit, cuDeviceGetCount...)";
    return f;
  }
  if (driverVersion(&f.cudaVersion) != 0) f.cudaVersion = 0;
  f.initResult = init(0);
  if (f.initResult != 0) {
    const char* n = nullptr;
    const char* s = nullptr;
    if (errorName) errorName(f.initResult, &n);
    if (errorString) errorString(f.initResult, &s);
    f.initError = std::string(n ? n : "CUDA error " + std::to_string(f.initResult)) + (s ? std::string(": ") + s : "");
  } else {
    int n = 0;
    if (count(&n) != 0) n = 0;
    for (int i = 0; i < n; ++i) {
      int dev = 0;
      if (get(&dev, i) != 0) continue;
      CudaDeviceFacts d;
      d.index = i;
      char buffer[256] = {};
      if (name(buffer, sizeof buffer - 1, dev) == 0) d.name = buffer;
      auto attr = [&](int a) {
        int v = 0;
        return attribute(&v, a, dev) == 0 ? v : 0;
      };
      d.major = attr(kAttrComputeCapabilityMajor);
      d.minor = attr(kAttrComputeCapabilityMinor);
      d.multiprocessors = attr(kAttrMultiprocessorCount);
      d.clockKHz = attr(kAttrClockRate);
      d.memoryClockKHz = attr(kAttrMemoryClockRate);
      d.memoryBusBits = attr(kAttrGlobalMemoryBusWidth);
      if (totalMem && totalMem(&d.memoryBytes, dev) != 0) d.memoryBytes = 0;
      char bus[64] = {};
      if (pciBusId && pciBusId(bus, sizeof bus - 1, dev) == 0) d.pciBusId = bus;
      f.devices.push_back(d);
    }
  }
  if (f.version.empty() && f.initResult == 0) f.version = nvmlDriverVersion();
  return f;
}

const CudaDriverFacts& cudaDriverFacts() {
  static const CudaDriverFacts facts = probeCudaDriver();
  return facts;
}

void parseCudaArchitectures(const std::string& list, CudaNeeds* needs) {
  std::string spaced = list;  // ';' (CMake's lists), ',' (the build's definition) and spaces separate
  std::replace(spaced.begin(), spaced.end(), ';', ' ');
  std::replace(spaced.begin(), spaced.end(), ',', ' ');
  {
    std::stringstream words(spaced);
    std::string word;
    while (words >> word) {
      const size_t dash = word.find('-');
      const std::string number = word.substr(0, dash);
      if (number.empty() || !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      const int sm = std::stoi(number);
      const std::string kind = dash == std::string::npos ? "" : word.substr(dash + 1);
      if (kind.empty() || kind == "real") needs->machineCode.push_back(sm);
      if (kind.empty() || kind == "virtual") needs->ptx.push_back(sm);
    }
  }
  std::sort(needs->machineCode.begin(), needs->machineCode.end());
  std::sort(needs->ptx.begin(), needs->ptx.end());
}

CudaDiagnosis diagnoseCuda(const CudaDriverFacts& driver, const CudaNeeds& needs) {
  CudaDiagnosis d;
  auto fail = [&](std::string reason, std::string fix) {
    d.reason = std::move(reason);
    d.fix = std::move(fix);
    return d;
  };
  // 1. A driver: its user-space library and, for cuInit to find anything, its kernel module.
  if (!driver.library)
    return fail("no NVIDIA driver found (libcuda.so.1 cannot be loaded: " + driver.libraryError + ")", kDriverFix);
  if (driver.initResult != 0 && !driver.kernelModule)
    return fail(
        "no NVIDIA driver found: libcuda.so.1 is installed, but the NVIDIA kernel module is not loaded "
        "(no /proc/driver/nvidia/version; cuInit: " +
            driver.initError + ")",
        kDriverFix);
  const std::string named = driver.version.empty() ? "the NVIDIA driver" : "driver " + driver.version;
  const std::string withCuda =
      driver.cudaVersion ? named + " (CUDA " + cudaVersionString(driver.cudaVersion) + ")" : named;
  // 2. Its version, against the runtime this build links (minor-version compatibility: any
  // driver of the runtime's major version).
  if (needs.built && driver.cudaVersion && driver.cudaVersion / 1000 < needs.runtimeVersion / 1000)
    return fail(withCuda + " is older than " + needs.driverFloor + ", needed by the CUDA " +
                    cudaVersionString(needs.runtimeVersion) + " runtime this build of ar-seg-native links",
                "upgrade the NVIDIA driver to " + needs.driverFloor +
                    " or newer, or use the prebuilt addon (CUDA 11.8 runtime: any driver from 450.80.02)");
  // 3. A GPU.
  if (driver.initResult == 100 /* CUDA_ERROR_NO_DEVICE */ || (driver.initResult == 0 && driver.devices.empty()))
    return fail("no GPU: " + withCuda + " is loaded but sees no CUDA device",
                "check `nvidia-smi`; CUDA_VISIBLE_DEVICES must not hide every GPU; in a container, pass the GPUs "
                "(`--gpus all`)");
  if (driver.initResult != 0)
    return fail(withCuda + " failed to initialise: cuInit: " + driver.initError,
                "check `nvidia-smi` and the kernel log (`dmesg | grep -i nvrm`); a driver upgraded without a reboot "
                "fails this way");
  // 4. The build's kernels.
  if (!needs.built)
    return fail("this build of ar-seg-native has no CUDA kernels (nvcc was not found when it was built)",
                "use the prebuilt addon (`npm rebuild ar-seg-native` without --build-from-source), or build from "
                "source with a CUDA toolkit installed (Debian 12: nvidia-cuda-toolkit)");
  // 5. The GPU the kernels run on (the runtime's device 0): a cubin of its major version at or
  // below its minor, else the PTX compiled by the driver for it.
  const CudaDeviceFacts& gpu = driver.devices.front();
  const int cc = gpu.major * 10 + gpu.minor;
  const bool cubin = std::any_of(needs.machineCode.begin(), needs.machineCode.end(),
                                 [&](int sm) { return sm / 10 == gpu.major && sm <= cc; });
  const bool ptx = std::any_of(needs.ptx.begin(), needs.ptx.end(), [&](int sm) { return sm <= cc; });
  if (!cubin && !ptx)
    return fail(describe(gpu) + " is older than what this build targets (machine code for " +
                    joinArchs(needs.machineCode, "sm_") +
                    (needs.ptx.empty() ? "" : "; PTX for " + joinArchs(needs.ptx, "compute_")) + ")",
                "run on a Turing or newer GPU (compute capability 7.5+), or choose one with CUDA_VISIBLE_DEVICES");
  if (!cubin && driver.cudaVersion && driver.cudaVersion < needs.runtimeVersion)
    return fail(describe(gpu) + " runs this build's PTX (" + joinArchs(needs.ptx, "compute_") +
                    "), which needs a driver for CUDA " + cudaVersionString(needs.runtimeVersion) + " or newer; " +
                    withCuda + " is older",
                "upgrade the NVIDIA driver");
  d.ok = true;
  return d;
}

}  // namespace arseg
