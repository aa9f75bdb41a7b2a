#include "doctor_binding.h"

#include <dlfcn.h>

#include <string>

#include "../common/coded_error.h"
#include "../device/cuda_driver.h"
#include "../device/device_backend.h"
#include "js_errors.h"

namespace arseg {

namespace {

Napi::Object driverToJs(Napi::Env env, const CudaDriverFacts& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("library", f.library);
  o.Set("libraryError", f.libraryError);
  o.Set("kernelModule", f.kernelModule);
  o.Set("version", f.version);
  o.Set("cudaVersion", f.cudaVersion);
  o.Set("initResult", f.initResult);
  o.Set("initError", f.initError);
  Napi::Array devices = Napi::Array::New(env, f.devices.size());
  for (size_t i = 0; i < f.devices.size(); ++i) {
    const CudaDeviceFacts& d = f.devices[i];
    Napi::Object g = Napi::Object::New(env);
    g.Set("index", d.index);
    g.Set("name", d.name);
    g.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    g.Set("memoryBytes", static_cast<double>(d.memoryBytes));
    g.Set("multiprocessors", d.multiprocessors);
    g.Set("clockKHz", d.clockKHz);
    g.Set("memoryClockKHz", d.memoryClockKHz);
    g.Set("memoryBusBits", d.memoryBusBits);
    g.Set("pciBusId", d.pciBusId);
    devices.Set(i, g);
  }
  o.Set("devices", devices);
  return o;
}

// cudaDriver(): { driver, build, diagnosis: { ok, reason, fix } }
Napi::Value cudaDriver(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    const CudaDriverFacts& facts = cudaDriverFacts();
    const CudaBuildInfo build = cudaBuildInfo();
    CudaNeeds needs;
    needs.built = build.built;
    needs.runtimeVersion = build.runtimeVersion;
    needs.driverFloor = build.driverFloor;
    parseCudaArchitectures(build.architectures, &needs);
    Napi::Object o = Napi::Object::New(env);
    o.Set("driver", driverToJs(env, facts));
    Napi::Object b = Napi::Object::New(env);
    b.Set("built", build.built);
    b.Set("runtimeVersion", build.runtimeVersion);
    b.Set("runtime", build.built ? cudaVersionString(build.runtimeVersion) : "");
    b.Set("toolkit", build.toolkit);
    b.Set("architectures", build.architectures);
    b.Set("driverFloor", build.driverFloor);
    Napi::Array sm = Napi::Array::New(env), ptx = Napi::Array::New(env);
    for (size_t i = 0; i < needs.machineCode.size(); ++i) sm.Set(i, "sm_" + std::to_string(needs.machineCode[i]));
    for (size_t i = 0; i < needs.ptx.size(); ++i) ptx.Set(i, "compute_" + std::to_string(needs.ptx[i]));
    b.Set("machineCode", sm);
    b.Set("ptx", ptx);
    o.Set("build", b);
    std::string reason, fix;
    Napi::Object d = Napi::Object::New(env);
    d.Set("ok", cudaUsable(&reason, &fix));
    d.Set("reason", reason);
    d.Set("fix", fix);
    o.Set("diagnosis", d);
    return o;
  });
}

// canLoadLibrary(name): { loaded, error } — dlopen (resolving lazily, kept private to it) and
// dlclose at once: whether the dynamic loader finds the library and its dependencies here.
Napi::Value canLoadLibrary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString())
      throw CodedError("ERR_INVALID_ARG", "the library name must be a string");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    Napi::Object o = Napi::Object::New(env);
    dlerror();
    void* handle = dlopen(name.c_str(), RTLD_LAZY | RTLD_LOCAL);
    o.Set("loaded", handle != nullptr);
    if (!handle) {
      const char* err = dlerror();
      o.Set("error", err ? err : "dlopen failed");
    } else {
      o.Set("error", "");
      dlclose(handle);
    }
    return o;
  });
}

}  // namespace

void defineDoctor(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaDriver", Napi::Function::New(env, cudaDriver, "cudaDriver"));
  exports.Set("canLoadLibrary", Napi::Function::New(env, canLoadLibrary, "canLoadLibrary"));
}

}  // namespace arseg
