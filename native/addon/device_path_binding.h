// JavaScript class NativeDevicePath (device/device_path.h): the pipeline's device path, features
// in and labels out, on the GPU ('cuda') or the emulated device ('cuda-emulated', for tests).
#pragma once

#include <napi.h>

#include <memory>

#include "../device/device_path.h"

namespace arseg {

class DevicePathBinding : public Napi::ObjectWrap<DevicePathBinding> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit DevicePathBinding(const Napi::CallbackInfo& info);

 private:
  Napi::Value labels(const Napi::CallbackInfo& info);
  Napi::Value fuse(const Napi::CallbackInfo& info);
  Napi::Value dropKeyframe(const Napi::CallbackInfo& info);
  Napi::Value getInfo(const Napi::CallbackInfo& info);

  std::shared_ptr<DevicePath> path_;
};

}  // namespace arseg
