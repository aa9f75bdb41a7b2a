// The device path of the pipeline: features in, labels out, everything between on the device.
// The keyframe's feature is uploaded once and stays on the device for its GOP; for every frame
// the LR feature and the motion field go up, CReFF, the decoder's pointwise head and the
// upsampling + arg-max run there, and only the labels come back (the logits only when asked).
// Compared with returning the fused feature and the logits to the host, that saves per fused
// frame the keyframe feature's upload, the fused feature's download and re-upload, and the
// logits' download (BENCHMARKS.md, "Bytes across the bus").
//
// The same code runs on a CUDA GPU or, for tests, on the emulated device (device_backend.h).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "../creff/creff_types.h"
#include "../postprocess/logits_to_labels.h"
#include "device_backend.h"

namespace arseg {

// The decoder's 1x1 convolution: weight classes x channels, bias classes.
struct PointwiseHeadWeights {
  int channels = 0, classes = 0;
  std::vector<float> weight, bias;
};

struct DeviceLabelsRequest {
  int outHeight = 0, outWidth = 0;  // the labels' size (the frame's)
  LogitsUpsampling upsampling = LogitsUpsampling::AlignCorners;
  bool logits = false;  // also bring the logits back
};

struct DeviceLabels {
  std::vector<uint8_t> labels;                  // outHeight x outWidth
  std::vector<float> logits;                    // classes x height x width of the feature, when asked
  double milliseconds = 0;                      // device time of the kernels
  uint64_t bytesToDevice = 0, bytesToHost = 0;  // this call's traffic across the bus
};

class DevicePath {
 public:
  // creff may be null: then fuse() is refused (a head-only path).
  DevicePath(std::unique_ptr<DeviceBackend> backend, std::shared_ptr<const CreffWeights> creff,
             PointwiseHeadWeights head);

  // The labels of a feature (channels x height x width, host memory). With keepAs, the feature
  // also becomes the keyframe for fuse() (prepared in that mode), replacing the previous one.
  DeviceLabels labels(const float* feature, int height, int width, const DeviceLabelsRequest& request,
                      const CreffMode* keepAs);

  // CReFF of an LR feature (channels x lrHeight x lrWidth) with the kept keyframe along motion
  // (2 x H x W at the keyframe feature's size, in its pixels), then the head and the labels.
  // motionFloats: the motion array's length, checked against the keyframe's 2 x H x W.
  DeviceLabels fuse(const float* lr, int lrHeight, int lrWidth, const float* motion, size_t motionFloats,
                    WarpSampling sampling, const DeviceLabelsRequest& request);

  // Frees the keyframe (the end of a segmentation).
  void dropKeyframe();

  const char* backendName() const { return backend_->name(); }
  int channels() const { return head_.channels; }
  int classes() const { return head_.classes; }
  bool hasCreff() const { return creff_ != nullptr; }

 private:
  DeviceLabels finish(const float* deviceFeature, int height, int width, const DeviceLabelsRequest& request,
                      uint64_t toDeviceBefore, uint64_t toHostBefore);
  void checkRequest(const DeviceLabelsRequest& request) const;
  DeviceBuffer upload(const std::vector<float>& host);
  // Grows `buffer` to at least `bytes` (contents not kept).
  void ensure(DeviceBuffer& buffer, size_t bytes);

  std::mutex mutex_;  // one call at a time on the backend
  std::unique_ptr<DeviceBackend> backend_;
  std::shared_ptr<const CreffWeights> creff_;
  PointwiseHeadWeights head_;
  DeviceBuffer qw_, qb_, kw_, kb_, vw_, vb_, headWeight_, headBias_;
  // The keyframe: F_k, and in keyframe-conv mode its k and v convolutions.
  DeviceBuffer key_, keyK_, keyV_;
  int keyHeight_ = 0, keyWidth_ = 0;
  CreffMode keyMode_ = CreffMode::Exact;
  // Scratch, reused from frame to frame.
  DeviceBuffer input_, motion_, fused_, logits_, labels_;
};

// CReFF with host arrays in and out (CReFF.run with device 'cuda'): uploads, runs the fused
// kernel, downloads the C x H x W result. Returns the kernels' device time in milliseconds.
double creffOnDevice(DeviceBackend& backend, const CreffWeights& w, const CreffShape& s, const float* lr,
                     const float* key, const float* motion, WarpSampling sampling, CreffMode mode, float* out);

}  // namespace arseg
