// Exercises the native core without Node, so AddressSanitizer/UBSan and valgrind can watch
// every libav object's life: whole clips with every output, the packet reader, truncated and
// byte-flipped inputs, refused codecs, and an aborted reader; and the compute kernels (CReFF,
// the pointwise head, the labels, the motion estimator) on shapes that reach their edges. Run by
// scripts/native-check.sh.
//
// usage: arseg_selftest FIXTURE_DIR [SCRATCH_DIR]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <cmath>
#include <vector>

#include "../common/coded_error.h"
#include "../creff/creff_cuda_emulator.h"
#include "../creff/creff_fused_cpu.h"
#include "../creff/creff_reference.h"
#include "../motion/estimator.h"
#include "../motion/estimator_reference.h"
#include "../postprocess/logits_to_labels.h"
#include "../postprocess/pointwise_head.h"
#include "../video/file_reader.h"
#include "../video/packet_reader.h"

using namespace arseg;

namespace {

int checks = 0;
int failures = 0;

void expect(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

FrameRequest fullRequest() {
  FrameRequest req;
  req.rgb = true;
  req.vectors = true;
  req.motion = MotionMode::Accumulated;
  req.stride = 8;
  TensorSpec a;
  a.width = 96;
  a.height = 64;
  TensorSpec b;
  b.width = 192;
  b.height = 128;
  b.bgr = true;
  req.tensors = {a, b};
  return req;
}

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Reads a whole file; returns frames read and the error code ("" when none).
std::pair<int, std::string> readAll(const std::string& path, FrameRequest req) {
  int frames = 0;
  try {
    FileReader reader(path, std::move(req));
    reader.open();
    DecodedFrame f;
    while (reader.next(f)) ++frames;
    return {frames, ""};
  } catch (const CodedError& e) {
    return {frames, e.code()};
  }
}

float median(std::vector<float> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  av_log_set_level(AV_LOG_QUIET);  // expected decoder complaints about the damaged inputs
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FIXTURE_DIR [SCRATCH_DIR]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string scratch = argc > 2 ? argv[2] : "/tmp";

  for (const char* name : {"translate-p.mp4", "translate-b.mp4", "translate-refs.mp4", "zoom.mp4",
                           "mpeg4.mp4", "mpeg2.mpg", "translate-p.h264"}) {
    auto [frames, code] = readAll(dir + "/" + name, fullRequest());
    expect(code.empty() && frames >= 24, std::string(name) + " decodes (" + code + ")");
  }

  {  // known motion: the frame 3 after the keyframe moved 3 x (2.25, -1.5)
    FileReader reader(dir + "/translate-b.mp4", fullRequest());
    reader.open();
    DecodedFrame f;
    for (int i = 0; i < 4; ++i) reader.next(f);
    const size_t n = f.motion.size() / 2;
    const float dx = median(std::vector<float>(f.motion.begin(), f.motion.begin() + n));
    const float dy = median(std::vector<float>(f.motion.begin() + n, f.motion.end()));
    expect(std::abs(dx - 6.75f) < 0.5f && std::abs(dy + 4.5f) < 0.5f, "accumulated motion of frame 3");
  }

  {  // the packet reader, fed in uneven chunks
    const std::vector<uint8_t> bytes = slurp(dir + "/translate-p.h264");
    PacketReader decoder("h264", fullRequest());
    int frames = 0;
    DecodedFrame f;
    for (size_t at = 0; at < bytes.size(); at += 1531) {
      const size_t n = std::min<size_t>(1531, bytes.size() - at);
      decoder.decode(std::vector<uint8_t>(bytes.begin() + at, bytes.begin() + at + n), AV_NOPTS_VALUE);
      while (decoder.next(f)) ++frames;
    }
    decoder.flush();
    while (decoder.next(f)) ++frames;
    expect(frames == 36, "packet decoder gives 36 frames");
  }

  {  // truncated: frames first, then ERR_TRUNCATED
    std::vector<uint8_t> bytes = slurp(dir + "/translate-b.mp4");
    bytes.resize(bytes.size() / 2);
    spit(scratch + "/selftest-cut.mp4", bytes);
    auto [frames, code] = readAll(scratch + "/selftest-cut.mp4", fullRequest());
    expect(code == "ERR_TRUNCATED" && frames > 0, "truncated file: " + code);
  }

  {  // refused: bitstream motion from VP9; estimated instead by default and when forced
    FrameRequest bitstream = fullRequest();
    bitstream.motionSource = MotionSource::Bitstream;
    auto [frames, code] = readAll(dir + "/translate-vp9.webm", bitstream);
    expect(code == "ERR_NO_MOTION_VECTORS", "vp9 bitstream motion refused: " + code);
    FrameRequest plain;
    auto [frames2, code2] = readAll(dir + "/translate-vp9.webm", plain);
    expect(code2.empty() && frames2 == 24, "vp9 decodes without motion");
    for (const char* name : {"translate-vp9.webm", "translate-mjpeg.avi", "hevc.mp4"}) {
      auto [frames3, code3] = readAll(dir + "/" + name, fullRequest());
      expect(code3.empty() && frames3 >= 12, std::string(name) + " with estimated motion (" + code3 + ")");
    }
    FrameRequest forced = fullRequest();
    forced.motionSource = MotionSource::Estimate;
    forced.keyframes.mode = KeyframePolicy::Mode::Adaptive;
    FileReader reader(dir + "/translate-b.mp4", forced);
    reader.open();
    DecodedFrame f;
    for (int i = 0; i < 4; ++i) reader.next(f);
    const size_t n = f.motion.size() / 2;
    const float dx = median(std::vector<float>(f.motion.begin(), f.motion.begin() + n));
    const float dy = median(std::vector<float>(f.motion.begin() + n, f.motion.end()));
    expect(f.motionSource == DecodedFrame::Source::Estimated && std::abs(dx - 6.75f) < 0.5f &&
               std::abs(dy + 4.5f) < 0.5f,
           "estimated accumulated motion of frame 3");
  }

  // The motion estimator against its reference on frames that reach its edges: the smallest
  // frame it searches, odd sizes, every finest level, strides from 1 to 16, a prior, motion
  // pointing far out of the frame, and a frame too small to search.
  for (const auto& [W, H, finest, stride, shift, prior] : std::vector<std::tuple<int, int, int, int, float, bool>>{
           {16, 16, 1, 8, 0.5f, false}, {97, 61, 1, 4, 1.75f, true}, {64, 48, 0, 1, -2.5f, false},
           {130, 70, 2, 5, 3.25f, true}, {40, 200, 1, 16, 40.f, false}, {9, 9, 0, 2, 0.f, false},
           {7, 30, 1, 8, 1.f, false}}) {
    auto image = [&](float ox) {
      std::vector<uint8_t> img(size_t(W) * H);
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
          img[size_t(y) * W + x] = static_cast<uint8_t>(
              128 + 50 * std::sin(0.37f * (x + ox) + 0.11f * y) + 40 * std::cos(0.23f * y - 0.19f * (x + ox)));
      return img;
    };
    const std::vector<uint8_t> a = image(0), b = image(shift);
    EstimatorOptions o;
    o.finestLevel = finest;
    MotionGrid guess;
    if (prior) {
      guess = MotionGrid(W, H, 3);
      std::fill(guess.dx.begin(), guess.dx.end(), shift);
    }
    FieldEstimate fast, ref;
    estimateFieldReference(a.data(), W, b.data(), W, W, H, prior ? &guess : nullptr, stride, o, ref);
    if (frameLargeEnough(W, H, o)) {
      LumaPyramid pa, pb;
      buildPyramid(a.data(), W, W, H, o, pa);
      buildPyramid(b.data(), W, W, H, o, pb);
      estimateField(pa, pb, prior ? &guess : nullptr, stride, o, fast);
    } else {
      fast = ref;
    }
    float worst = 0;
    for (size_t k = 0; k < ref.field.size(); ++k)
      worst = std::max({worst, std::abs(fast.field.dx[k] - ref.field.dx[k]), std::abs(fast.field.dy[k] - ref.field.dy[k])});
    const std::string what = "estimator " + std::to_string(W) + "x" + std::to_string(H);
    expect(fast.field.width == ref.field.width && fast.matched == ref.matched && worst < 1e-2f,
           what + " matches its reference (" + std::to_string(worst) + ")");
    MotionEstimator streaming(o);
    FieldEstimate got;
    streaming.push(a.data(), W, W, H, stride, true, got);
    const bool second = streaming.push(b.data(), W, W, H, stride, true, got);
    expect(second == frameLargeEnough(W, H, o), what + " streaming");
    std::vector<int32_t> rows;
    if (second) estimatedVectors(got, rows);
    expect(rows.size() % 10 == 0, what + " as vectors");
  }

  {  // missing file and no video stream
    expect(readAll(scratch + "/does-not-exist.mp4", FrameRequest{}).second == "ERR_NOT_FOUND", "missing file");
    expect(readAll(dir + "/audio-only.m4a", FrameRequest{}).second == "ERR_NO_VIDEO_STREAM", "audio only");
  }

  {  // aborted mid-stream
    FileReader reader(dir + "/translate-p.mp4", fullRequest());
    reader.open();
    DecodedFrame f;
    reader.next(f);
    reader.abort();
    std::string code;
    try {
      while (reader.next(f)) {
      }
    } catch (const CodedError& e) {
      code = e.code();
    }
    expect(code == "ERR_ABORTED", "abort interrupts reading: " + code);
  }

  {  // byte-flipped variants: frames or a coded error, never a crash
    const std::vector<uint8_t> original = slurp(dir + "/translate-b.mp4");
    uint32_t x = 2463534242u;
    int coded = 0;
    for (int variant = 0; variant < 40; ++variant) {
      std::vector<uint8_t> bytes = original;
      for (int k = 0; k < 1 + variant % 20; ++k) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes[x % bytes.size()] ^= static_cast<uint8_t>(1 + (x >> 24) % 255);
      }
      if (variant % 5 == 4) bytes.resize(x % bytes.size());
      const std::string path = scratch + "/selftest-fuzz.mp4";
      spit(path, bytes);
      if (!readAll(path, fullRequest()).second.empty()) ++coded;
    }
    expect(true, "fuzz variants survived (" + std::to_string(coded) + " ended in coded errors)");
  }

  // CReFF: the fused kernel (threads, tiles, halos) against the reference, including windows
  // larger than the image, a 1x1 image and motion far outside.
  // lrScale 0: LR wider than the output (U through the channel-last fallback); 200 rows cross
  // the fused kernel's work-unit seams.
  for (const auto& [K, H, W, C, far, wide] : std::vector<std::tuple<int, int, int, int, bool, bool>>{
           {7, 37, 70, 16, false, false}, {1, 20, 20, 3, false, false}, {3, 1, 1, 2, false, false},
           {11, 9, 40, 5, true, false}, {5, 17, 18, 11, false, false}, {7, 20, 24, 5, false, true},
           {5, 200, 20, 3, false, false}}) {
    CreffWeights w;
    w.channels = C;
    w.window = K;
    uint32_t x = 12345u + K;
    auto rnd = [&x](size_t n, float scale) {
      std::vector<float> v(n);
      for (float& f : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        f = (static_cast<float>(x) / 4294967296.f * 2.f - 1.f) * scale;
      }
      return v;
    };
    w.qWeight = rnd(C * 9, 0.33f), w.kWeight = rnd(C * 9, 0.33f), w.vWeight = rnd(C * 9, 0.33f);
    w.qBias = rnd(C, 0.3f), w.kBias = rnd(C, 0.3f), w.vBias = rnd(C, 0.3f);
    CreffShape s;
    s.channels = C, s.height = H, s.width = W, s.lrHeight = (H + 1) / 2, s.lrWidth = (W + 1) / 2;
    if (wide) s.lrHeight = H + 10, s.lrWidth = 2 * W + 2;
    const std::vector<float> lr = rnd(C * s.lrPlane(), 1.5f), key = rnd(C * s.plane(), 1.5f);
    std::vector<float> motion = rnd(2 * s.plane(), far ? 400.f : 5.f);
    for (CreffMode mode : {CreffMode::Exact, CreffMode::KeyframeConv}) {
      std::vector<float> ref(C * s.plane()), fused(C * s.plane());
      creffReference(w, s, lr.data(), key.data(), motion.data(), WarpSampling::Exact, mode, ref.data());
      const PreparedKeyframe prepared = prepareKeyframe(w, key.data(), H, W, mode, 2);
      creffFusedCpu(w, s, lr.data(), prepared, motion.data(), WarpSampling::Exact, fused.data(), 2);
      float worst = 0;
      for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(ref[i] - fused[i]));
      if (K <= 11 && H * W <= 400) {  // the CUDA device code, emulated (slow: small cases only)
        std::vector<float> emu(C * s.plane());
        creffCudaEmulated(w, s, lr.data(), key.data(), motion.data(), WarpSampling::Exact, mode, emu.data());
        for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(ref[i] - emu[i]));
      }
      expect(worst < 1e-4f, "CReFF fused/emulated CUDA vs reference K=" + std::to_string(K) + " " + std::to_string(H) +
                                 "x" + std::to_string(W) + ": " + std::to_string(worst));
      // with the decoder's head applied inside the kernel: the same logits as the head applied
      // to the fused feature
      const int classes = 3;
      const std::vector<float> hw = rnd(classes * C, 0.5f), hb = rnd(classes, 0.5f);
      std::vector<float> logits(classes * s.plane()), expected(classes * s.plane());
      const CreffHead head{hw.data(), hb.data(), classes};
      creffFusedCpu(w, s, lr.data(), prepared, motion.data(), WarpSampling::Exact, logits.data(), 2, &head);
      pointwiseHead(fused.data(), C, H, W, hw.data(), hb.data(), classes, expected.data(), 1);
      expect(logits == expected, "CReFF with the head vs the head after CReFF, K=" + std::to_string(K));
    }
  }

  // The pointwise head against a plain loop: spans shorter than a vector, ragged ends, one
  // class, 255 classes, several tasks, and strided planes.
  for (const auto& [C, K, H, W] : std::vector<std::tuple<int, int, int, int>>{
           {6, 12, 7, 5}, {3, 1, 1, 7}, {5, 255, 9, 33}, {17, 7, 128, 100}, {64, 12, 3, 16}}) {
    uint32_t x = 777u + C * 31 + K;
    auto rnd = [&x](size_t n) {
      std::vector<float> v(n);
      for (float& f : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        f = static_cast<float>(x) / 4294967296.f * 2.f - 1.f;
      }
      return v;
    };
    const size_t plane = static_cast<size_t>(H) * W;
    const std::vector<float> feature = rnd(C * plane), weight = rnd(static_cast<size_t>(K) * C), bias = rnd(K);
    std::vector<float> logits(K * plane, 1e30f);
    pointwiseHead(feature.data(), C, H, W, weight.data(), bias.data(), K, logits.data(), 2);
    double worst = 0;
    for (int k = 0; k < K; ++k)
      for (size_t p = 0; p < plane; ++p) {
        double sum = 0;
        for (int c = 0; c < C; ++c) sum += static_cast<double>(weight[k * C + c]) * feature[c * plane + p];
        worst = std::max(worst, std::abs(sum + bias[k] - logits[k * plane + p]));
      }
    expect(worst < 1e-5 * C, "pointwise head " + std::to_string(C) + "->" + std::to_string(K) + " at " +
                                 std::to_string(H) + "x" + std::to_string(W) + ": " + std::to_string(worst));
    // The same pixels as a span of strided planes (a tile's rows would be), on one thread.
    const size_t count = std::min<size_t>(plane, 21);
    std::vector<float> strided(K * (count + 3), -1.f);
    pointwiseHeadPixels(feature.data(), plane, C, count, weight.data(), bias.data(), K, strided.data(), count + 3);
    bool same = true;
    for (int k = 0; k < K; ++k)
      for (size_t p = 0; p < count + 3; ++p)
        same = same && strided[k * (count + 3) + p] == (p < count ? logits[k * plane + p] : -1.f);
    expect(same, "pointwise head on strided planes writes the same values and nothing else");
  }

  // Labels from logits already at the frame size (the plain arg-max path) against a scalar
  // arg-max, with many ties (values on a coarse grid): the first maximum wins.
  for (const auto& [K, H, W] : std::vector<std::tuple<int, int, int>>{{12, 7, 5}, {1, 3, 3}, {255, 4, 37}, {5, 90, 101}}) {
    const size_t plane = static_cast<size_t>(H) * W;
    std::vector<float> logits(K * plane);
    uint32_t x = 99u + K;
    for (float& f : logits) {
      x = x * 1664525u + 1013904223u;
      f = static_cast<float>((x >> 24) % 5) - 2.f;
    }
    std::vector<uint8_t> labels(plane, 254);
    logitsToLabels(logits.data(), K, H, W, H, W, LogitsUpsampling::AlignCorners, labels.data(), 2);
    bool same = true;
    for (size_t p = 0; p < plane; ++p) {
      int best = 0;
      for (int k = 1; k < K; ++k)
        if (logits[k * plane + p] > logits[best * plane + p]) best = k;
      same = same && labels[p] == best;
    }
    expect(same, "same-size labels are the first arg-max, " + std::to_string(K) + " classes at " +
                     std::to_string(H) + "x" + std::to_string(W));
  }

  std::printf("selftest: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
