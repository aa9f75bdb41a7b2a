// The device path of the pipeline: features in, labels out, everything between on the device.
// The keyframe's feature is uploaded once and stays on the device for its GOP; for every frame
// the LR feature and the motion field go up, CReFF, the decoder's pointwise head (the HR
// network's, or the LR network's own for LR and AR frames) and the upsampling + arg-max (any
// resize a bundle declares, by its tap tables) run there, and only the labels come back (the
// logits only when asked).
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
#include "../postprocess/labels_taps.h"
#include "device_backend.h"

namespace arseg {

// The decoder's 1x1 convolution: weight classes x channels, bias classes.
struct PointwiseHeadWeights {
  int channels = 0, classes = 0;
  std::vector<float> weight, bias;
};

// Which network's decoder head makes a frame's logits: the HR network's (HR frames), or the LR
// network's own (LR and AR frames, when the bundle has one; otherwise the HR head serves them).
enum class DecoderHead { Hr, Lr };

struct DeviceLabelsRequest {
  int outHeight = 0, outWidth = 0;  // the labels' size (the frame's)
  // The resize to the labels (labels_taps.h): `upsampling`, through `via` first when twoStep.
  LogitsUpsampling upsampling = LogitsUpsampling::AlignCorners;
  bool twoStep = false;
  LogitsResize via;
  DecoderHead head = DecoderHead::Hr;
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
  // creff may be null: then fuse() is refused (a head-only path). lrHead: the LR network's own
  // head, with head's channels and classes; empty (0 classes): `head` serves every frame.
  DevicePath(std::unique_ptr<DeviceBackend> backend, std::shared_ptr<const CreffWeights> creff,
             PointwiseHeadWeights head, PointwiseHeadWeights lrHead = {});

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
  bool hasLrHead() const { return lrHead_.classes > 0; }

 private:
  // A resize's tap tables on the device (labels_taps.h), uploaded on first use.
  struct DeviceTaps {
    std::shared_ptr<const LabelsTaps> taps;
    DeviceBuffer rows, columns;
  };

  DeviceLabels finish(const float* deviceFeature, int height, int width, const DeviceLabelsRequest& request,
                      const DeviceTaps& taps, uint64_t toDeviceBefore, uint64_t toHostBefore);
  void checkRequest(const DeviceLabelsRequest& request) const;
  // The tables of the request's resize of height x width logits on the device: kept for the
  // last few resizes (one per branch of a video), so that they cross the bus once per size, not
  // once per frame (that call counts their bytes).
  const DeviceTaps& tapsOnDevice(const DeviceLabelsRequest& request, int height, int width);
  DeviceBuffer upload(const std::vector<float>& host);
  // Grows `buffer` to at least `bytes` (contents not kept).
  void ensure(DeviceBuffer& buffer, size_t bytes);

  std::mutex mutex_;  // one call at a time on the backend
  std::unique_ptr<DeviceBackend> backend_;
  std::shared_ptr<const CreffWeights> creff_;
  PointwiseHeadWeights head_, lrHead_;
  DeviceBuffer qw_, qb_, kw_, kb_, vw_, vb_, headWeight_, headBias_, lrHeadWeight_, lrHeadBias_;
  std::vector<DeviceTaps> taps_;  // most recently used first
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
