// Module entry point: registers the bindings and reports the libav it was built against.
#include <napi.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswscale/swscale.h>
}

#include "../video/motion_vectors.h"
#include "creff_binding.h"
#include "device_path_binding.h"
#include "doctor_binding.h"
#include "frame_js.h"
#include "head_binding.h"
#include "labels_binding.h"
#include "motion_binding.h"
#include "packet_reader_binding.h"
#include "thread_priority_binding.h"
#include "video_reader_binding.h"

namespace {

Napi::Object versions(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("avformat", AV_STRINGIFY(LIBAVFORMAT_VERSION));
  o.Set("avcodec", AV_STRINGIFY(LIBAVCODEC_VERSION));
  o.Set("avutil", AV_STRINGIFY(LIBAVUTIL_VERSION));
  o.Set("swscale", AV_STRINGIFY(LIBSWSCALE_VERSION));
  o.Set("avcodecRuntime", avcodec_version());
  o.Set("configuration", avcodec_configuration());
  // Built against ar-seg-native's patched libav (patches/ffmpeg/): exact references, HEVC vectors.
  o.Set("exactReferences", arseg::libavExportsExactRefs());
  return o;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  av_log_set_level(AV_LOG_QUIET);  // failures reach callers as coded errors, not stderr noise
  arseg::VideoReaderBinding::define(env, exports);
  arseg::PacketReaderBinding::define(env, exports);
  arseg::CreffBinding::define(env, exports);
  arseg::DevicePathBinding::define(env, exports);
  arseg::defineDoctor(env, exports);
  arseg::defineHead(env, exports);
  arseg::defineLabels(env, exports);
  arseg::defineMotion(env, exports);
  arseg::defineRecycling(env, exports);
  arseg::defineThreadPriority(env, exports);
  exports.Set("libav", versions(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(ar_seg_native, init)
