#include "device_path.h"

#include <algorithm>
#include <string>

#include "../common/coded_error.h"

namespace arseg {

namespace {

constexpr size_t kFloat = sizeof(float);
// Resizes whose tables stay on the device: HR, LR and AR frames each have their own (logits of
// different sizes, or a different first resize), and one more.
constexpr size_t kTapsKept = 4;

void checkHead(const PointwiseHeadWeights& h, const char* which) {
  if (h.channels < 1 || h.classes < 1 || h.classes > 255)
    throw CodedError("ERR_INVALID_ARG",
                     std::string(which) + " needs 1 or more channels and 1 to 255 classes (8-bit labels)");
  if (h.weight.size() != static_cast<size_t>(h.classes) * h.channels || h.bias.size() != static_cast<size_t>(h.classes))
    throw CodedError("ERR_SHAPE", std::string(which) + " needs classes x channels weights and classes biases");
}

void checkWindow(const CreffWeights& w) {
  if (w.window > cudakernel::kMaxWindow)
    throw CodedError("ERR_UNSUPPORTED", "the CUDA kernel supports windows up to " +
                                            std::to_string(cudakernel::kMaxWindow) + "; use the CPU kernel");
}

struct CreffDeviceWeights {
  const float *qw, *qb, *kw, *kb, *vw, *vb;
};

// Queues CReFF (and in keyframe-conv mode the keyframe's convolutions when keyK/keyV are to be
// computed) on the backend.
cudakernel::Params creffParams(const CreffDeviceWeights& w, const CreffShape& s, const float* lr, const float* key,
                               const float* keyK, const float* keyV, const float* motion, WarpSampling sampling,
                               CreffMode mode, float* out) {
  return cudakernel::Params{lr,
                            key,
                            keyK,
                            keyV,
                            motion,
                            w.qw,
                            w.qb,
                            w.kw,
                            w.kb,
                            w.vw,
                            w.vb,
                            out,
                            s.channels,
                            s.lrHeight,
                            s.lrWidth,
                            s.height,
                            s.width,
                            sampling == WarpSampling::Official,
                            mode == CreffMode::KeyframeConv};
}

}  // namespace

DevicePath::DevicePath(std::unique_ptr<DeviceBackend> backend, std::shared_ptr<const CreffWeights> creff,
                       PointwiseHeadWeights head, PointwiseHeadWeights lrHead)
    : backend_(std::move(backend)), creff_(std::move(creff)), head_(std::move(head)), lrHead_(std::move(lrHead)) {
  checkHead(head_, "the head");
  if (hasLrHead()) {
    checkHead(lrHead_, "the LR head");
    if (lrHead_.channels != head_.channels || lrHead_.classes != head_.classes)
      throw CodedError("ERR_SHAPE", "the LR head is " + std::to_string(lrHead_.channels) + " -> " +
                                        std::to_string(lrHead_.classes) + ", the head " +
                                        std::to_string(head_.channels) + " -> " + std::to_string(head_.classes));
  }
  if (creff_) {
    if (creff_->channels != head_.channels)
      throw CodedError("ERR_SHAPE", "CReFF has " + std::to_string(creff_->channels) + " channels, the head " +
                                        std::to_string(head_.channels));
    checkWindow(*creff_);
    qw_ = upload(creff_->qWeight);
    qb_ = upload(creff_->qBias);
    kw_ = upload(creff_->kWeight);
    kb_ = upload(creff_->kBias);
    vw_ = upload(creff_->vWeight);
    vb_ = upload(creff_->vBias);
  }
  headWeight_ = upload(head_.weight);
  headBias_ = upload(head_.bias);
  if (hasLrHead()) {
    lrHeadWeight_ = upload(lrHead_.weight);
    lrHeadBias_ = upload(lrHead_.bias);
  }
}

DeviceBuffer DevicePath::upload(const std::vector<float>& host) {
  DeviceBuffer b(*backend_, host.size() * kFloat);
  backend_->toDevice(b.floats(), host.data(), host.size() * kFloat);
  return b;
}

void DevicePath::ensure(DeviceBuffer& buffer, size_t bytes) {
  if (buffer.bytes() >= bytes) return;
  buffer.reset();  // free first: the peak is one buffer, not two
  buffer = DeviceBuffer(*backend_, bytes);
}

void DevicePath::checkRequest(const DeviceLabelsRequest& r) const {
  if (r.outHeight < 1 || r.outWidth < 1 || r.outHeight > (1 << 16) || r.outWidth > (1 << 16))
    throw CodedError("ERR_SHAPE", "the labels' size must be 1 to 65536 pixels per side");
  if (r.twoStep && (r.via.height < 1 || r.via.width < 1 || r.via.height > (1 << 16) || r.via.width > (1 << 16)))
    throw CodedError("ERR_SHAPE", "the first resize's size must be 1 to 65536 pixels per side");
}

const DevicePath::DeviceTaps& DevicePath::tapsOnDevice(const DeviceLabelsRequest& request, int height, int width) {
  LabelsResize resize;
  resize.height = height, resize.width = width;
  resize.outHeight = request.outHeight, resize.outWidth = request.outWidth;
  resize.upsampling = request.upsampling;
  resize.twoStep = request.twoStep;
  if (request.twoStep) resize.via = request.via;
  for (size_t i = 0; i < taps_.size(); ++i) {
    if (!(taps_[i].taps->resize == resize)) continue;
    std::rotate(taps_.begin(), taps_.begin() + static_cast<std::ptrdiff_t>(i),
                taps_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    return taps_.front();
  }
  if (taps_.size() >= kTapsKept) taps_.pop_back();
  DeviceTaps t;
  t.taps = labelsTaps(resize);  // the host's tables, shared with the CPU kernel's
  if (!t.taps->identity) {      // the plain arg-max reads no tables
    const size_t rowBytes = t.taps->rows.size() * sizeof(AxisTaps),
                 columnBytes = t.taps->columns.size() * sizeof(AxisTaps);
    t.rows = DeviceBuffer(*backend_, rowBytes);
    t.columns = DeviceBuffer(*backend_, columnBytes);
    backend_->toDevice(t.rows.bytesPtr(), t.taps->rows.data(), rowBytes);
    backend_->toDevice(t.columns.bytesPtr(), t.taps->columns.data(), columnBytes);
  }
  taps_.insert(taps_.begin(), std::move(t));
  return taps_.front();
}

DeviceLabels DevicePath::labels(const float* feature, int height, int width, const DeviceLabelsRequest& request,
                                const CreffMode* keepAs) {
  checkRequest(request);
  if (height < 1 || width < 1) throw CodedError("ERR_SHAPE", "the feature's height and width must be positive");
  if (keepAs && !creff_) throw CodedError("ERR_INVALID_ARG", "this device path has no CReFF to keep a keyframe for");
  std::lock_guard<std::mutex> lock(mutex_);
  const uint64_t up = backend_->bytesToDevice(), down = backend_->bytesToHost();
  const size_t plane = static_cast<size_t>(height) * width, bytes = head_.channels * plane * kFloat;
  const float* onDevice;
  if (keepAs) {
    // The keyframe of a new GOP: replaces the previous one (freed first).
    keyK_.reset();
    keyV_.reset();
    key_.reset();
    keyHeight_ = keyWidth_ = 0;
    key_ = DeviceBuffer(*backend_, bytes);
    backend_->toDevice(key_.floats(), feature, bytes);
    keyHeight_ = height;
    keyWidth_ = width;
    keyMode_ = *keepAs;
    onDevice = key_.floats();
  } else {
    ensure(input_, bytes);
    backend_->toDevice(input_.floats(), feature, bytes);
    onDevice = input_.floats();
  }
  const DeviceTaps& taps = tapsOnDevice(request, height, width);
  backend_->startTimer();
  if (keepAs && *keepAs == CreffMode::KeyframeConv) {
    keyK_ = DeviceBuffer(*backend_, bytes);
    keyV_ = DeviceBuffer(*backend_, bytes);
    backend_->depthwise(key_.floats(), kw_.floats(), kb_.floats(), keyK_.floats(), head_.channels, height, width);
    backend_->depthwise(key_.floats(), vw_.floats(), vb_.floats(), keyV_.floats(), head_.channels, height, width);
  }
  return finish(onDevice, height, width, request, taps, up, down);
}

DeviceLabels DevicePath::fuse(const float* lr, int lrHeight, int lrWidth, const float* motion, size_t motionFloats,
                              WarpSampling sampling, const DeviceLabelsRequest& request) {
  checkRequest(request);
  if (!creff_) throw CodedError("ERR_INVALID_ARG", "this device path has no CReFF");
  std::lock_guard<std::mutex> lock(mutex_);
  if (!key_.floats()) throw CodedError("ERR_INVALID_ARG", "no keyframe on the device: call labels() with keepAs first");
  CreffShape s;
  s.channels = head_.channels;
  s.lrHeight = lrHeight;
  s.lrWidth = lrWidth;
  s.height = keyHeight_;
  s.width = keyWidth_;
  validateCreff(*creff_, s);
  if (motionFloats != 2 * s.plane())
    throw CodedError("ERR_SHAPE", "the motion field holds " + std::to_string(motionFloats) +
                                      " values, the keyframe's 2 x " + std::to_string(s.height) + " x " +
                                      std::to_string(s.width) + " needs " + std::to_string(2 * s.plane()));
  const uint64_t up = backend_->bytesToDevice(), down = backend_->bytesToHost();
  const size_t lrBytes = s.channels * s.lrPlane() * kFloat, motionBytes = 2 * s.plane() * kFloat;
  // The LR feature and the motion share one upload buffer (two copies, one allocation).
  ensure(input_, lrBytes + motionBytes);
  float* dLr = input_.floats();
  float* dMotion = dLr + s.channels * s.lrPlane();
  backend_->toDevice(dLr, lr, lrBytes);
  backend_->toDevice(dMotion, motion, motionBytes);
  ensure(fused_, s.channels * s.plane() * kFloat);
  const DeviceTaps& taps = tapsOnDevice(request, s.height, s.width);
  backend_->startTimer();
  const CreffDeviceWeights w{qw_.floats(), qb_.floats(), kw_.floats(), kb_.floats(), vw_.floats(), vb_.floats()};
  backend_->creff(creffParams(w, s, dLr, key_.floats(), keyK_.floats(), keyV_.floats(), dMotion, sampling, keyMode_,
                              fused_.floats()),
                  creff_->window);
  return finish(fused_.floats(), s.height, s.width, request, taps, up, down);
}

DeviceLabels DevicePath::finish(const float* deviceFeature, int height, int width, const DeviceLabelsRequest& request,
                                const DeviceTaps& taps, uint64_t toDeviceBefore, uint64_t toHostBefore) {
  const size_t plane = static_cast<size_t>(height) * width;
  const size_t outPixels = static_cast<size_t>(request.outHeight) * request.outWidth;
  ensure(logits_, head_.classes * plane * kFloat);
  ensure(labels_, outPixels);
  const bool lr = request.head == DecoderHead::Lr && hasLrHead();
  backend_->head(devicekernel::HeadParams{deviceFeature, (lr ? lrHeadWeight_ : headWeight_).floats(),
                                          (lr ? lrHeadBias_ : headBias_).floats(), logits_.floats(), head_.channels,
                                          head_.classes, plane});
  backend_->labels(devicekernel::LabelsParams{
      logits_.floats(), labels_.bytesPtr(), reinterpret_cast<const AxisTaps*>(taps.rows.bytesPtr()),
      reinterpret_cast<const AxisTaps*>(taps.columns.bytesPtr()), head_.classes, height, width, request.outHeight,
      request.outWidth, taps.taps->columnTaps, taps.taps->identity});
  DeviceLabels out;
  out.milliseconds = backend_->stopTimer();
  out.labels.resize(outPixels);
  backend_->toHost(out.labels.data(), labels_.bytesPtr(), outPixels);
  if (request.logits) {
    out.logits.resize(head_.classes * plane);
    backend_->toHost(out.logits.data(), logits_.floats(), out.logits.size() * kFloat);
  }
  out.bytesToDevice = backend_->bytesToDevice() - toDeviceBefore;
  out.bytesToHost = backend_->bytesToHost() - toHostBefore;
  return out;
}

void DevicePath::dropKeyframe() {
  std::lock_guard<std::mutex> lock(mutex_);
  key_.reset();
  keyK_.reset();
  keyV_.reset();
  keyHeight_ = keyWidth_ = 0;
}

double creffOnDevice(DeviceBackend& backend, const CreffWeights& w, const CreffShape& s, const float* lr,
                     const float* key, const float* motion, WarpSampling sampling, CreffMode mode, float* out) {
  validateCreff(w, s);
  checkWindow(w);
  const size_t C = s.channels, plane = s.plane();
  auto up = [&](const float* host, size_t floats) {
    DeviceBuffer b(backend, floats * kFloat);
    backend.toDevice(b.floats(), host, floats * kFloat);
    return b;
  };
  DeviceBuffer dLr = up(lr, C * s.lrPlane()), dKey = up(key, C * plane), dMotion = up(motion, 2 * plane);
  DeviceBuffer qw = up(w.qWeight.data(), C * 9), qb = up(w.qBias.data(), C);
  DeviceBuffer kw = up(w.kWeight.data(), C * 9), kb = up(w.kBias.data(), C);
  DeviceBuffer vw = up(w.vWeight.data(), C * 9), vb = up(w.vBias.data(), C);
  const bool keyframeConv = mode == CreffMode::KeyframeConv;
  DeviceBuffer dKeyK(backend, keyframeConv ? C * plane * kFloat : 0),
      dKeyV(backend, keyframeConv ? C * plane * kFloat : 0);
  DeviceBuffer dOut(backend, C * plane * kFloat);
  backend.startTimer();
  if (keyframeConv) {
    backend.depthwise(dKey.floats(), kw.floats(), kb.floats(), dKeyK.floats(), s.channels, s.height, s.width);
    backend.depthwise(dKey.floats(), vw.floats(), vb.floats(), dKeyV.floats(), s.channels, s.height, s.width);
  }
  const CreffDeviceWeights dw{qw.floats(), qb.floats(), kw.floats(), kb.floats(), vw.floats(), vb.floats()};
  backend.creff(creffParams(dw, s, dLr.floats(), dKey.floats(), dKeyK.floats(), dKeyV.floats(), dMotion.floats(),
                            sampling, mode, dOut.floats()),
                w.window);
  const double ms = backend.stopTimer();
  backend.toHost(out, dOut.floats(), C * plane * kFloat);
  return ms;
}

}  // namespace arseg
