#include "creff_binding.h"

#include <cmath>
#include <vector>

#include "../common/coded_error.h"
#include "../creff/creff_dispatch.h"
#include "../device/device_backend.h"
#include "frame_js.h"
#include "js_args.h"
#include "js_errors.h"
#include "promise_worker.h"

namespace arseg {

namespace {

Napi::FunctionReference keyframeConstructor;
Napi::FunctionReference creffConstructor;

std::vector<float> copyFloats(const Napi::Object& o, const char* key) {
  Napi::Float32Array a = float32Array(o.Get(key), std::string("weights.") + key);
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

CreffMode parseMode(const std::string& m) {
  if (m == "exact") return CreffMode::Exact;
  if (m == "keyframe-conv") return CreffMode::KeyframeConv;
  invalidArg("option 'mode' must be 'exact' or 'keyframe-conv'");
}

int parseThreads(const Napi::Object& o) {
  Napi::Value v = o.Get("threads");
  if (v.IsUndefined() || v.IsNull()) return 0;
  return integerIn(v, "threads", 1, 256);
}

}  // namespace

// --- NativeKeyframe -------------------------------------------------------------------------

Napi::FunctionReference* KeyframeBinding::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeKeyframe", {InstanceMethod<&KeyframeBinding::getInfo>("info")});
  keyframeConstructor = Napi::Persistent(cls);
  exports.Set("NativeKeyframe", cls);
  return &keyframeConstructor;
}

KeyframeBinding::KeyframeBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KeyframeBinding>(info) {}

Napi::Value KeyframeBinding::getInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (prepared) {
    o.Set("channels", prepared->channels);
    o.Set("height", prepared->height);
    o.Set("width", prepared->width);
    o.Set("mode", prepared->mode == CreffMode::Exact ? "exact" : "keyframe-conv");
  }
  return o;
}

// --- NativeCReFF ----------------------------------------------------------------------------

void CreffBinding::define(Napi::Env env, Napi::Object exports) {
  KeyframeBinding::define(env, exports);
  Napi::Function cls = DefineClass(
      env, "NativeCReFF",
      {InstanceMethod<&CreffBinding::prepareKeyframe>("prepareKeyframe"), InstanceMethod<&CreffBinding::run>("run")});
  creffConstructor = Napi::Persistent(cls);
  exports.Set("NativeCReFF", cls);
  Napi::Function available = Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env e = info.Env();
    std::string reason, fix;
    Napi::Object o = Napi::Object::New(e);
    o.Set("available", cudaUsable(&reason, &fix));
    o.Set("reason", reason);
    o.Set("fix", fix);
    return o;
  });
  exports.Set("cudaStatus", available);
}

std::shared_ptr<const CreffWeights> CreffBinding::weightsOf(const Napi::Value& v, const std::string& what) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(creffConstructor.Value()))
    invalidArg(what + " must be a NativeCReFF");
  return Unwrap(v.As<Napi::Object>())->weights_;
}

// new NativeCReFF({ channels, window, qWeight, qBias, kWeight, kBias, vWeight, vBias })
CreffBinding::CreffBinding(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CreffBinding>(info) {
  Napi::Env env = info.Env();
  guardSync(env, [&] {
    if (info.Length() < 1 || !info[0].IsObject()) invalidArg("CReFF weights must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    auto w = std::make_shared<CreffWeights>();
    w->channels = integerIn(o.Get("channels"), "weights.channels", 1, 1 << 16);
    w->window = integerIn(o.Get("window"), "weights.window", 1, 31);
    w->qWeight = copyFloats(o, "qWeight");
    w->qBias = copyFloats(o, "qBias");
    w->kWeight = copyFloats(o, "kWeight");
    w->kBias = copyFloats(o, "kBias");
    w->vWeight = copyFloats(o, "vWeight");
    w->vBias = copyFloats(o, "vBias");
    CreffShape probe;
    probe.channels = w->channels;
    probe.lrHeight = probe.lrWidth = probe.height = probe.width = 1;
    validateCreff(*w, probe);
    weights_ = std::move(w);
    return env.Undefined();
  });
}

// prepareKeyframe(key: Float32Array, height, width, { mode, threads }): Promise<NativeKeyframe>
Napi::Value CreffBinding::prepareKeyframe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    Napi::Float32Array key = float32Array(info[0], "key");
    const int H = integerIn(info[1], "height", 1, 1 << 20), W = integerIn(info[2], "width", 1, 1 << 20);
    Napi::Object opts = info.Length() > 3 && info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
    const CreffMode mode = parseMode(optionString(opts, "mode", "exact"));
    const int threads = parseThreads(opts);
    checkLength(key, size_t(weights_->channels) * H * W, "the keyframe feature");
    auto weights = weights_;
    const float* data = key.Data();
    auto result = std::make_shared<std::shared_ptr<const PreparedKeyframe>>();
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("key", key);
    return PromiseWorker::start(
        env, holder,
        [=] {
          *result = std::make_shared<PreparedKeyframe>(arseg::prepareKeyframe(*weights, data, H, W, mode, threads));
        },
        [result](Napi::Env e) -> Napi::Value {
          Napi::Object obj = keyframeConstructor.New({});
          KeyframeBinding::Unwrap(obj)->prepared = *result;
          return obj;
        },
        nullptr);
  });
}

// run(lr, lrHeight, lrWidth, key: Float32Array | NativeKeyframe, height, width, motion, options)
//   options: { kernel: 'fused' | 'reference' | 'cuda-emulated', device: 'cpu' | 'cuda', sampling: 'exact' | 'official',
//              mode: 'exact' | 'keyframe-conv', threads, output,
//              head: { weight: Float32Array (classes x C), bias: Float32Array (classes) } }
// Resolves with { output: Float32Array (C x H x W, or classes x H x W logits with a head),
// milliseconds (kernel time) }.
Napi::Value CreffBinding::run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guardSync(env, [&]() -> Napi::Value {
    if (info.Length() < 8) invalidArg("run() needs lr, lrHeight, lrWidth, key, height, width, motion, options");
    CreffShape s;
    s.channels = weights_->channels;
    Napi::Float32Array lr = float32Array(info[0], "lr");
    s.lrHeight = integerIn(info[1], "lrHeight", 1, 1 << 20);
    s.lrWidth = integerIn(info[2], "lrWidth", 1, 1 << 20);
    s.height = integerIn(info[4], "height", 1, 1 << 20);
    s.width = integerIn(info[5], "width", 1, 1 << 20);
    Napi::Float32Array motion = float32Array(info[6], "motion");
    if (!info[7].IsObject()) invalidArg("options must be an object");
    Napi::Object opts = info[7].As<Napi::Object>();
    const std::string kernelName = optionString(opts, "kernel", "fused");
    const std::string device = optionString(opts, "device", "cpu");
    const std::string samplingName = optionString(opts, "sampling", "exact");
    if (kernelName != "fused" && kernelName != "reference" && kernelName != "cuda-emulated")
      invalidArg("option 'kernel' must be 'fused', 'reference' or 'cuda-emulated'");
    if (device != "cpu" && device != "cuda") invalidArg("option 'device' must be 'cpu' or 'cuda'");
    if (samplingName != "exact" && samplingName != "official")
      invalidArg("option 'sampling' must be 'exact' or 'official'");
    CreffCall call;
    call.kernel = device == "cuda"                ? CreffKernel::Cuda
                  : kernelName == "reference"     ? CreffKernel::Reference
                  : kernelName == "cuda-emulated" ? CreffKernel::CudaEmulated
                                                  : CreffKernel::Fused;
    call.sampling = samplingName == "official" ? WarpSampling::Official : WarpSampling::Exact;
    call.mode = parseMode(optionString(opts, "mode", "exact"));
    call.threads = parseThreads(opts);
    validateCreff(*weights_, s);
    checkLength(lr, size_t(s.channels) * s.lrPlane(), "the LR feature");
    checkLength(motion, 2 * s.plane(), "the motion field");

    std::shared_ptr<const PreparedKeyframe> prepared;
    Napi::Object holder = Napi::Object::New(env);  // keeps every input alive during the work
    holder.Set("lr", lr);
    holder.Set("motion", motion);
    holder.Set("key", info[3]);
    Napi::Float32Array rawKey;
    if (info[3].IsObject() && info[3].As<Napi::Object>().InstanceOf(keyframeConstructor.Value())) {
      prepared = KeyframeBinding::Unwrap(info[3].As<Napi::Object>())->prepared;
      if (!prepared) invalidArg("the keyframe is not prepared");
      if (call.kernel != CreffKernel::Fused)
        invalidArg("a prepared keyframe is for the fused CPU kernel; pass the raw feature otherwise");
      if (prepared->channels != s.channels || prepared->height != s.height || prepared->width != s.width)
        throw CodedError("ERR_SHAPE", "the prepared keyframe does not match height x width x channels");
    } else {
      rawKey = float32Array(info[3], "key");
      checkLength(rawKey, size_t(s.channels) * s.plane(), "the keyframe feature");
      call.key = rawKey.Data();
    }

    // options.head: the decoder's pointwise head, applied to the fused feature so that the
    // output is the logits (creff_dispatch.h says how each kernel applies it).
    auto headWeights = std::make_shared<std::vector<float>>();
    auto headBias = std::make_shared<std::vector<float>>();
    int classes = 0;
    Napi::Value headOption = opts.Get("head");
    if (!headOption.IsUndefined()) {
      if (!headOption.IsObject()) invalidArg("options.head must be { weight: Float32Array, bias: Float32Array }");
      if (device != "cpu") invalidArg("options.head is for the CPU kernels");
      Napi::Object head = headOption.As<Napi::Object>();
      Napi::Float32Array bias = float32Array(head.Get("bias"), "options.head.bias");
      Napi::Float32Array weight = float32Array(head.Get("weight"), "options.head.weight");
      if (bias.ElementLength() < 1 || bias.ElementLength() > 65536)
        throw CodedError("ERR_SHAPE", "options.head.bias holds " + std::to_string(bias.ElementLength()) +
                                          " values: the head needs 1 to 65536 classes");
      classes = static_cast<int>(bias.ElementLength());
      checkLength(weight, size_t(classes) * s.channels, "options.head.weight");
      headWeights->assign(weight.Data(), weight.Data() + weight.ElementLength());
      headBias->assign(bias.Data(), bias.Data() + bias.ElementLength());
    }
    const size_t outChannels = classes > 0 ? size_t(classes) : size_t(s.channels);
    if (call.kernel == CreffKernel::Cuda) {  // refused at once, on the main thread
      std::string reason, fix;
      if (!cudaUsable(&reason, &fix)) throw CodedError("ERR_CUDA_UNAVAILABLE", unavailableMessage(reason, fix));
    }

    // options.output: a caller-owned Float32Array of C x H x W (classes x H x W with a head) to
    // write into (reused from frame to frame, it spares allocating and faulting in a new buffer
    // per call). It must not alias an input: the kernels read the inputs while writing it.
    float* outData = nullptr;
    std::shared_ptr<Napi::ObjectReference> outputRef;  // released on the main thread with the worker
    Napi::Value outputOption = opts.Get("output");
    if (!outputOption.IsUndefined() && !outputOption.IsNull()) {
      Napi::Float32Array output = float32Array(outputOption, "options.output");
      checkLength(output, outChannels * s.plane(), "options.output");
      checkNoOverlap(output, lr, "the LR feature");
      checkNoOverlap(output, motion, "the motion field");
      if (call.key) checkNoOverlap(output, rawKey, "the keyframe feature");
      outputRef = std::make_shared<Napi::ObjectReference>(Napi::Persistent(output.As<Napi::Object>()));
      outData = output.Data();
    }
    auto weights = weights_;
    call.lr = lr.Data();
    call.motion = motion.Data();
    auto owned = std::make_shared<std::vector<float>>();
    auto millis = std::make_shared<double>(0);
    return PromiseWorker::start(
        env, holder,
        [=]() mutable {
          float* out = outData;
          if (!out) {
            owned->resize(outChannels * s.plane());
            out = owned->data();
          }
          CreffHead head;
          if (classes > 0) {
            head = CreffHead{headWeights->data(), headBias->data(), classes};
            call.head = &head;
          }
          call.prepared = prepared.get();
          *millis = runCreff(*weights, s, call, out);
        },
        [owned, millis, outputRef, headWeights, headBias](Napi::Env e) -> Napi::Value {
          Napi::Object result = Napi::Object::New(e);
          if (outputRef)
            result.Set("output", outputRef->Value());
          else
            result.Set("output", adoptFloat32(e, std::move(*owned)));
          result.Set("milliseconds", *millis);
          return result;
        },
        nullptr);
  });
}

}  // namespace arseg
