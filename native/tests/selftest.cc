// Exercises the native core without Node, so AddressSanitizer/UBSan and valgrind can watch
// every libav object's life: whole clips with every output, the packet reader, truncated and
// byte-flipped inputs, refused codecs, and an aborted reader; and the compute kernels (CReFF,
// the pointwise head, the labels, the motion estimator) on shapes that reach their edges. Run by
// scripts/native-check.sh.
//
// usage: arseg_selftest FIXTURE_DIR [SCRATCH_DIR]
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../common/coded_error.h"
#include "../common/recycled_storage.h"
#include "../common/simd.h"
#include "../common/thread_priority.h"
#include "../creff/creff_fused_cpu.h"
#include "../creff/creff_reference.h"
#include "../device/cuda_driver.h"
#include "../device/device_path.h"
#include "../device/emulated_backend.h"
#include "../motion/block_field.h"
#include "../motion/compose_step.h"
#include "../motion/estimator.h"
#include "../motion/estimator_reference.h"
#include "../motion/keyframe_composer.h"
#include "../motion/pyramid_cache.h"
#include "../motion/reference_resolver.h"
#include "../motion/resize_field.h"
#include "../postprocess/labels_taps.h"
#include "../postprocess/logits_to_labels.h"
#include "../postprocess/pointwise_head.h"
#include "../video/file_reader.h"
#include "../video/frame_pipeline.h"
#include "../video/motion_vectors.h"
#include "../video/packet_reader.h"
#include "../video/tensor_resize.h"

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
  TensorSpec c;  // the official LR input: resized from a, floor(96 x 0.37) x floor(64 x 0.37)
  c.from = 0;
  c.scale = 0.37;
  req.tensors = {a, b, c};
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

  for (const char* name : {"translate-p.mp4", "translate-b.mp4", "translate-refs.mp4", "zoom.mp4", "mpeg4.mp4",
                           "mpeg2.mpg", "translate-p.h264", "x264-default.mp4"}) {
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

  {  // joined mid-stream, waiting for the first keyframe; then one access unit per call
    const std::vector<uint8_t> bytes = slurp(dir + "/translate-p.h264");
    PacketReader decoder("h264", fullRequest(), /*waitForKeyframe=*/true);
    int frames = 0;
    DecodedFrame f;
    for (size_t at = bytes.size() / 5; at < bytes.size(); at += 977) {
      const size_t n = std::min<size_t>(977, bytes.size() - at);
      decoder.decode(std::vector<uint8_t>(bytes.begin() + at, bytes.begin() + at + n), AV_NOPTS_VALUE);
      while (decoder.next(f)) expect(frames++ > 0 || f.pictType == 'I', "the first frame is the keyframe");
    }
    decoder.flush();
    while (decoder.next(f)) ++frames;
    expect(frames == 24 && decoder.skippedBeforeKeyframe() > 0 && decoder.decodeErrors() == 0,
           "mid-stream packet decoder starts at the next keyframe");

    // Access units: cut before every slice that starts a picture (first_mb_in_slice = 0, the
    // top bit after the NAL header) and the parameter sets in front of it.
    std::vector<size_t> cuts;
    bool sawSlice = false;
    for (size_t i = 0; i + 4 < bytes.size(); ++i) {
      if (bytes[i] != 0 || bytes[i + 1] != 0 || bytes[i + 2] != 1) continue;
      const int type = bytes[i + 3] & 0x1f;
      const size_t start = i > 0 && bytes[i - 1] == 0 ? i - 1 : i;
      const bool slice = type == 1 || type == 5;
      if ((slice && (bytes[i + 4] & 0x80) && sawSlice) || ((type == 7 || type == 8) && sawSlice)) {
        cuts.push_back(start);
        sawSlice = false;
      }
      sawSlice = sawSlice || slice;
    }
    cuts.push_back(bytes.size());
    PacketReader units("h264", fullRequest(), false, /*accessUnits=*/true);
    size_t from = 0;
    int immediate = 0;
    for (size_t cut : cuts) {
      units.decode(std::vector<uint8_t>(bytes.begin() + from, bytes.begin() + cut), AV_NOPTS_VALUE);
      from = cut;
      int got = 0;
      while (units.next(f)) ++got;
      immediate += got == 1;
    }
    units.flush();
    while (units.next(f)) {
    }
    expect(cuts.size() == 36 && immediate == 36, "one access unit per call gives its frame at once");
  }

  {  // truncated: frames first, then ERR_TRUNCATED
    std::vector<uint8_t> bytes = slurp(dir + "/translate-b.mp4");
    bytes.resize(bytes.size() / 2);
    spit(scratch + "/selftest-cut.mp4", bytes);
    auto [frames, code] = readAll(scratch + "/selftest-cut.mp4", fullRequest());
    expect(code == "ERR_TRUNCATED" && frames > 0, "truncated file: " + code);
  }

  {  // MPEG-TS cut inside a transport packet: frames, then ERR_TRUNCATED; no frames: ERR_EMPTY_INPUT
    std::vector<uint8_t> bytes = slurp(dir + "/translate-p.ts");
    bytes.resize(100 * 188 + 61);
    spit(scratch + "/selftest-cut.ts", bytes);
    auto [frames, code] = readAll(scratch + "/selftest-cut.ts", fullRequest());
    expect(code == "ERR_TRUNCATED" && frames > 0, "TS cut mid-packet: " + code);
    auto [frames2, code2] = readAll(dir + "/zero-frames.mp4", fullRequest());
    expect(code2 == "ERR_EMPTY_INPUT" && frames2 == 0, "a track with no frames: " + code2);
    FileReader rotated(dir + "/rotated-90.mp4", FrameRequest{});
    rotated.open();
    expect(rotated.info().rotation == 90 && rotated.info().fps == 25, "rotation and fps of rotated-90.mp4");
  }

  {  // a frame the decoder drops leaves its index unused (mpeg4.mp4, frame 5's VOP header wiped)
    std::vector<uint8_t> bytes = slurp(dir + "/mpeg4.mp4");
    const uint8_t vop[4] = {0, 0, 1, 0xb6};
    size_t at = 0;
    for (int found = 0; at + 4 <= bytes.size(); ++at)
      if (std::equal(vop, vop + 4, bytes.begin() + at) && found++ == 5) break;
    std::fill(bytes.begin() + at, bytes.begin() + at + 8, 0xff);
    spit(scratch + "/selftest-dropped.mp4", bytes);
    FileReader reader(scratch + "/selftest-dropped.mp4", fullRequest());
    reader.open();
    DecodedFrame f;
    std::vector<int64_t> indices;
    while (reader.next(f)) indices.push_back(f.index);
    expect(indices.size() == 23 && indices[5] == 6 && indices.back() == 23 && reader.framesDropped() == 1,
           "a dropped frame keeps the later indices (" + std::to_string(indices.size()) + " frames)");
  }

  {  // interlaced (MBAFF): motion refused at the first frame; vectors alone decode
    auto [frames, code] = readAll(dir + "/h264-mbaff.mp4", fullRequest());
    expect(code == "ERR_NO_MOTION_VECTORS" && frames == 0, "interlaced motion refused: " + code);
    FrameRequest vectorsOnly;
    vectorsOnly.vectors = true;
    auto [frames2, code2] = readAll(dir + "/h264-mbaff.mp4", vectorsOnly);
    expect(code2.empty() && frames2 == 24, "interlaced vectors alone decode (" + code2 + ")");
  }

  if (libavExportsExactRefs()) {  // the patched libav: HEVC vectors, frame threads, Main10
    // (kept short: valgrind runs this too). The motion fill checks itself on the way: each
    // filled cell against the whole picture estimated from pyramids built afresh, so that a
    // cached pyramid of the wrong picture, or a partial estimate that differs, shows.
    FillCheck check;
    for (const char* name : {"x264-default.mp4", "x265-default.mp4", "hevc-main10.mp4", "hevc-wpp.mp4",
                             "hevc-tiles.mp4", "object-intra.mp4"}) {
      for (int threads : {1, 3}) {
        FrameRequest req = fullRequest();
        req.threads = threads;
        req.stride = threads == 1 ? 8 : 4;
        req.fillCheck = &check;
        auto [frames, code] = readAll(dir + "/" + name, req);
        expect(code.empty() && frames >= 12, std::string(name) + " decodes with motion (" + code + ")");
      }
    }
    expect(check.fills > 20 && check.reused > 10 && check.cells > 1000 && check.mismatches == 0,
           "motion fill: " + std::to_string(check.fills.load()) + " pictures, " + std::to_string(check.cells.load()) +
               " cells, " + std::to_string(check.reused.load()) + " pyramids reused, " +
               std::to_string(check.mismatches.load()) + " cells unlike a fresh full estimate");
    FrameRequest official = fullRequest();
    official.composition = Composition::Official;
    official.stride = 1;
    official.tensors.clear();
    official.rgb = false;
    auto [frames, code] = readAll(dir + "/hevc-zoom.mp4", official);
    expect(code.empty() && frames == 12, "official composition per pixel (" + code + ")");
  } else {  // HEVC without the patch: refused from the bitstream (estimated by default, below)
    FrameRequest bitstream = fullRequest();
    bitstream.motionSource = MotionSource::Bitstream;
    auto [frames, code] = readAll(dir + "/hevc.mp4", bitstream);
    expect(code == "ERR_NO_MOTION_VECTORS", "hevc bitstream motion refused: " + code);
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
    expect(
        f.motionSource == DecodedFrame::Source::Estimated && std::abs(dx - 6.75f) < 0.5f && std::abs(dy + 4.5f) < 0.5f,
        "estimated accumulated motion of frame 3");
  }

  // The motion estimator against its reference on frames that reach its edges: the smallest
  // frame it searches, odd sizes, every finest level, strides from 1 to 16, a prior, motion
  // pointing far out of the frame, and a frame too small to search.
  for (const auto& [W, H, finest, stride, shift, prior] :
       std::vector<std::tuple<int, int, int, int, float, bool>>{{16, 16, 1, 8, 0.5f, false},
                                                                {97, 61, 1, 4, 1.75f, true},
                                                                {64, 48, 0, 1, -2.5f, false},
                                                                {130, 70, 2, 5, 3.25f, true},
                                                                {40, 200, 1, 16, 40.f, false},
                                                                {9, 9, 0, 2, 0.f, false},
                                                                {7, 30, 1, 8, 1.f, false}}) {
    auto image = [&](float ox) {
      std::vector<uint8_t> img(size_t(W) * H);
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
          img[size_t(y) * W + x] = static_cast<uint8_t>(128 + 50 * std::sin(0.37f * (x + ox) + 0.11f * y) +
                                                        40 * std::cos(0.23f * y - 0.19f * (x + ox)));
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
      worst =
          std::max({worst, std::abs(fast.field.dx[k] - ref.field.dx[k]), std::abs(fast.field.dy[k] - ref.field.dy[k])});
    const std::string what = "estimator " + std::to_string(W) + "x" + std::to_string(H);
    expect(fast.field.width == ref.field.width && fast.matched == ref.matched && worst < 1e-2f,
           what + " matches its reference (" + std::to_string(worst) + ")");
    if (frameLargeEnough(W, H, o)) {
      // Only some cells wanted (scattered ones and a corner block): exactly the full estimate's
      // values there, zero and unmatched elsewhere; a mask of the wrong size gives nothing.
      LumaPyramid pa, pb;
      buildPyramid(a.data(), W, W, H, o, pa);
      buildPyramid(b.data(), W, W, H, o, pb);
      const MotionGrid& g = fast.field;
      std::vector<uint8_t> wanted(g.size(), 0);
      for (int i = 0; i < g.height; ++i)
        for (int j = 0; j < g.width; ++j)
          wanted[size_t(i) * g.width + j] = (i * 7 + j * 3) % 11 == 0 || (i >= g.height - 2 && j < 2);
      FieldEstimate part;
      estimateField(pa, pb, prior ? &guess : nullptr, stride, o, part, &wanted);
      size_t differ = 0, count = 0;
      for (size_t k = 0; k < g.size(); ++k) {
        count += wanted[k];
        if (wanted[k])
          differ += part.field.dx[k] != g.dx[k] || part.field.dy[k] != g.dy[k] || part.matched[k] != fast.matched[k];
        else
          differ += part.field.dx[k] != 0.f || part.field.dy[k] != 0.f || part.matched[k] != 0;
      }
      expect(count > 0 && differ == 0, what + ": " + std::to_string(count) + " wanted cells as in the full estimate (" +
                                           std::to_string(differ) + " differ)");
      wanted.pop_back();
      estimateField(pa, pb, nullptr, stride, o, part, &wanted);
      expect(part.field.empty() && part.matched.empty(), what + ": a wanted mask of the wrong size");
    }
    MotionEstimator streaming(o);
    FieldEstimate got;
    streaming.push(a.data(), W, W, H, stride, true, got);
    const bool second = streaming.push(b.data(), W, W, H, stride, true, got);
    expect(second == frameLargeEnough(W, H, o), what + " streaming");
    std::vector<int32_t> rows;
    if (second) estimatedVectors(got, rows);
    expect(rows.size() % 10 == 0, what + " as vectors");
  }

  {  // the motion fill's pyramid cache: what it returns is the key's pyramid, built afresh
    const int W = 50, H = 38;
    EstimatorOptions o;
    auto image = [&](int seed) {
      std::vector<uint8_t> img(size_t(W) * H);
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) img[size_t(y) * W + x] = static_cast<uint8_t>((x * 31 + y * 17 + seed * 59) % 251);
      return img;
    };
    auto same = [](const LumaPyramid& p, const LumaPyramid& q) {
      if (p.frameWidth != q.frameWidth || p.frameHeight != q.frameHeight || p.levels.size() != q.levels.size())
        return false;
      for (size_t l = 0; l < p.levels.size(); ++l) {
        const PyramidLevel &a = p.levels[l], &b = q.levels[l];
        if (a.width != b.width || a.height != b.height) return false;
        for (int y = 0; y < a.height; ++y)
          if (!std::equal(a.origin() + size_t(y) * a.stride, a.origin() + size_t(y) * a.stride + a.width,
                          b.origin() + size_t(y) * b.stride))
            return false;
      }
      return true;
    };
    auto fresh = [&](int seed) {
      LumaPyramid p;
      const std::vector<uint8_t> img = image(seed);
      buildPyramid(img.data(), W, W, H, o, p);
      return p;
    };
    PyramidCache cache(3);
    auto build = [&](int64_t key) -> const LumaPyramid& {
      LumaPyramid& p = cache.insert(key);
      const std::vector<uint8_t> img = image(static_cast<int>(key));
      buildPyramid(img.data(), W, W, H, o, p);
      return p;
    };
    const LumaPyramid& p1 = build(1);
    const float* storage1 = p1.levels[0].storage.data();
    build(2);
    build(3);
    expect(cache.find(1) == &p1 && same(*cache.find(1), fresh(1)), "pyramid cache: key 1 is picture 1");
    // 1 was used last: 4 takes the least recently used (2), rebuilt in its storage, and 1 stays put
    const LumaPyramid* two = cache.find(2);
    cache.find(1);
    cache.find(3);
    const LumaPyramid& p4 = build(4);
    expect(&p4 == two && cache.find(2) == nullptr && cache.size() == 3, "pyramid cache evicts the least recently used");
    expect(same(p4, fresh(4)) && same(*cache.find(1), fresh(1)) && same(*cache.find(3), fresh(3)) &&
               !same(p4, fresh(2)) && p1.levels[0].storage.data() == storage1,
           "pyramid cache: every key gives its own picture's pyramid, no storage moved");
    cache.erase(3);
    expect(cache.find(3) == nullptr && cache.size() == 2, "pyramid cache: a replaced picture is forgotten");
    cache.eraseBefore(4);
    expect(cache.find(1) == nullptr && cache.find(4) == &p4 && cache.size() == 1, "pyramid cache: older ones go");
    // a held reference survives the next insert (capacity >= 2), and freed entries are reused
    const LumaPyramid& p5 = build(5);
    const LumaPyramid& p6 = build(6);
    expect(same(p5, fresh(5)) && same(p6, fresh(6)) && same(p4, fresh(4)) && cache.size() == 3,
           "pyramid cache: held pyramids stay valid");
  }

  {  // references: exact decode numbers, the nearest-anchor assumption, placeholders, waits
    ReferenceResolver resolver(false);
    std::vector<DecodedFrame> out;
    auto frame = [](int64_t index, char type, std::vector<int32_t> sources) {
      DecodedFrame f;
      f.index = index;
      f.pictType = type;
      for (int32_t s : sources) {
        const int32_t row[10] = {s, 16, 16, 8, 8, 8, 8, 4, 0, 4};
        f.vectors.insert(f.vectors.end(), row, row + 10);
      }
      return f;
    };
    // Spare storage holding stale values: every entry of vectorRefs must be written.
    RecycledStorage<int32_t>::give(std::vector<int32_t>(16, 77));
    // display I0 B1 P2, decoded I0 P2 B1: B1 names P2 (decode number 1) before P2 comes out
    resolver.push(frame(0, 'I', {}), 0, {}, out);
    resolver.push(frame(1, 'B', {-1, 1, -1}), 2, {0, 1, kRefPictureNone}, out);
    expect(out.size() == 1 && resolver.pending() == 1, "a B-frame waits for its future reference");
    resolver.push(frame(2, 'P', {-1, -1}), 1, {0, kRefPictureUnknown}, out);
    expect(out.size() == 3, "released once it came out");
    if (out.size() == 3) {
      const DecodedFrame& b = out[1];
      expect(b.vectorRefs == std::vector<int32_t>({1, -1, kVectorRefNone}), "B-frame references");
      expect(b.compositionRefs == std::vector<int32_t>({1, -1, 0}), "B-frame composition references");
      const DecodedFrame& p = out[2];
      // unknown: the nearest anchor before (I0, 2 back); not exact, so vectorRefs says 0
      expect(p.vectorRefs == std::vector<int32_t>({2, kVectorRefUnknown}), "P-frame references");
      expect(p.compositionRefs == std::vector<int32_t>({2, 2}), "P-frame assumed reference");
    }
    {  // without vectorRefs (vectors not handed out), on recycled compositionRefs holding stale values
      ReferenceResolver quiet(false, false);
      std::vector<DecodedFrame> q;
      quiet.push(frame(0, 'I', {}), 0, {}, q);
      quiet.recycle(std::vector<int32_t>(8, 77));
      quiet.push(frame(1, 'B', {-1, 1, -1}), 2, {0, 1, kRefPictureNone}, q);
      quiet.push(frame(2, 'P', {-1, -1}), 1, {0, kRefPictureUnknown}, q);
      expect(q.size() == 3 && q[1].vectorRefs.empty() && q[2].vectorRefs.empty() &&
                 q[1].compositionRefs == std::vector<int32_t>({1, -1, 0}) &&
                 q[2].compositionRefs == std::vector<int32_t>({2, 2}),
             "composition references without vectorRefs, every entry written");
    }
    // a reference that never comes out: unknown after kMaxWait frames, never a hang
    out.clear();
    ReferenceResolver lost(false);
    lost.push(frame(0, 'P', {-1}), 5, {99}, out);
    for (int64_t i = 1; i <= ReferenceResolver::kMaxWait; ++i) lost.push(frame(i, 'P', {}), 5 + i, {}, out);
    expect(out.size() == size_t(ReferenceResolver::kMaxWait) + 1 && out[0].vectorRefs[0] == kVectorRefUnknown,
           "a lost reference times out");
    ReferenceResolver mpeg(true);
    out.clear();
    mpeg.push(frame(0, 'I', {}), -1, {}, out);
    mpeg.push(frame(1, 'B', {-1, 1}), -1, {kRefPictureUnknown, kRefPictureUnknown}, out);
    mpeg.flush(out);
    expect(out.size() == 2 && out[1].vectorRefs == std::vector<int32_t>({1, kVectorRefUnknown}) &&
               out[1].compositionRefs == std::vector<int32_t>({1, 0}),
           "nearest anchors: exact where they exist; no anchor after the end");
  }

  {  // composition: a B-frame held for its future reference, bi-prediction, official rounding
    const int w = 32, h = 16;
    auto blocks = [&](int stride, std::vector<std::array<int32_t, 3>> preds) {  // source, ref, mx
      std::vector<int32_t> rows, refs;
      for (auto [source, ref, mx] : preds) {
        const int32_t row[10] = {source, 32, 16, 0, 0, 16, 8, mx, 0, 4};
        rows.insert(rows.end(), row, row + 10);
        refs.push_back(ref);
      }
      return rasteriseBlocks(rows.data(), refs.data(), refs.size(), w, h, stride);
    };
    for (Composition how : {Composition::Bilinear, Composition::Official}) {
      const int stride = how == Composition::Official ? 1 : 4;
      KeyframeComposer composer(MotionMode::Accumulated, KeyframePolicy{}, how, 4);
      std::vector<DecodedFrame> out;
      auto frame = [&](int64_t index, char type) {
        DecodedFrame f;
        f.index = index;
        f.pictType = type;
        f.width = w;
        f.height = h;
        f.isKeyframe = index == 0;
        return f;
      };
      composer.push(frame(0, 'I'), blocks(stride, {}), out);
      // B1: list 0 from I0 (+1.5 px), list 1 from P2 (-1.5 px); P2: from I0 (+3 px)
      composer.push(frame(1, 'B'), blocks(stride, {{-1, 1, 6}, {1, -1, -6}}), out);
      expect(out.size() == 1 && composer.pending() == 1, "B-frame held for P2");
      composer.push(frame(2, 'P'), blocks(stride, {{-1, 2, 12}}), out);
      composer.flush(out);
      expect(out.size() == 3, "all frames out, in order");
      if (out.size() == 3) {
        const float b = out[1].motion[2 * out[1].motionWidth + 2];
        const float p = out[2].motion[2 * out[2].motionWidth + 2];
        if (how == Composition::Bilinear) {
          expect(std::abs(b - 1.5f) < 1e-5f && std::abs(p - 3.f) < 1e-5f, "bilinear: B 1.5, P 3");
        } else {
          // list 0 only, each step rounded half to even: 1.5 -> 2; 3 -> 3
          expect(b == 2.f && p == 3.f, "official: B " + std::to_string(b) + ", P " + std::to_string(p));
        }
      }
    }
  }

  {  // a composer hands its grids to the pool as it ends; the next one composes on them (stale
     // contents) exactly as on fresh storage
    using GridPool = RecycledStorage<float>;
    const int w = 64, h = 32, stride = 8;
    auto run = [&]() {
      std::vector<DecodedFrame> out;
      KeyframeComposer composer(MotionMode::Accumulated, KeyframePolicy{}, Composition::Bilinear, stride);
      for (int64_t t = 0; t < 6; ++t) {
        DecodedFrame f;
        f.index = t;
        f.pictType = t == 0 ? 'I' : 'P';
        f.width = w;
        f.height = h;
        f.isKeyframe = t == 0;
        std::vector<int32_t> rows, refs;
        for (int y = 8; t > 0 && y < h; y += 16)
          for (int x = 8; x < w; x += 16) {
            const int32_t row[10] = {-1, 16, 16, 0, 0, x, y, int32_t(4 * t + x / 8), int32_t(-3 * t), 4};
            rows.insert(rows.end(), row, row + 10);
            refs.push_back(1);
          }
        BlockField blocks = composer.spareBlocks();
        rasteriseBlocks(rows.data(), refs.data(), refs.size(), w, h, stride, blocks);
        composer.push(std::move(f), std::move(blocks), out);
      }
      composer.flush(out);
      return out;
    };
    GridPool::clear();
    const std::vector<DecodedFrame> first = run();
    const size_t pooled = GridPool::spareBytes();
    // Dirty the pooled grids: a composer must not read what it did not write.
    std::vector<std::vector<float>> dirty;
    while (GridPool::spareBytes() > 0) dirty.push_back(GridPool::take(1, true));
    for (auto& v : dirty) {
      std::fill(v.begin(), v.end(), 1e6f);
      GridPool::give(std::move(v));
    }
    const std::vector<DecodedFrame> second = run();
    bool same = first.size() == 6 && second.size() == 6;
    for (size_t i = 0; same && i < first.size(); ++i) same = first[i].motion == second[i].motion;
    expect(pooled > 0 && GridPool::spareBytes() > 0 && same,
           "composer grids pooled at its end, the next composer's output unchanged on them");
    GridPool::clear();
  }

  {  // rasterising against the plain definition (a cell takes the last block of its slot whose
     // span holds the cell's centre), on blocks aligned to the cells (the fast bounds) and not,
     // partly or wholly outside the frame, at power-of-two strides and others
    uint32_t seed = 777;
    auto rnd = [&seed](int n) {
      seed = seed * 1664525u + 1013904223u;
      return static_cast<int>((seed >> 8) % static_cast<uint32_t>(n));
    };
    int cases = 0, same = 0;
    for (int stride : {1, 2, 3, 4, 5, 6, 8, 16}) {
      for (int round = 0; round < 30; ++round) {
        // odd sizes too, and (at the large strides) grids of one or two cells
        const int fw = round % 10 == 9 ? 1 + rnd(2 * stride + 2) : 24 + rnd(80);
        const int fh = round % 10 == 8 ? 1 + rnd(2 * stride + 2) : 16 + rnd(60);
        std::vector<int32_t> rows, refs;
        const int count = 1 + rnd(60);
        for (int n = 0; n < count; ++n) {
          const int sizes[] = {4, 8, 16, 32, 64, 6, 12};
          // blocks of 2 x 2 cells on cell boundaries often (the fast path), at the frame's edges
          // and beyond them (negative centres) too
          const bool cellBlock = rnd(2) == 0;
          const int w = cellBlock ? 2 * stride : sizes[rnd(7)], h = cellBlock ? 2 * stride : sizes[rnd(7)];
          int x, y;
          if (cellBlock && rnd(4)) {
            x = stride * (rnd(fw / stride + 5) - 3);
            y = stride * (rnd(fh / stride + 5) - 3);
          } else {
            // aligned to 4 px mostly (codec blocks), sometimes anywhere, some beyond the frame
            x = rnd(3) ? 4 * (rnd(fw / 4 + 8) - 4) : rnd(fw + 40) - 20;
            y = rnd(3) ? 4 * (rnd(fh / 4 + 8) - 4) : rnd(fh + 40) - 20;
          }
          // quarter pixels mostly; other scales, powers of two or not, between them; a few
          // malformed rows (sizes or scale not positive) that must change nothing
          const int scales[] = {4, 4, 4, 4, 4, 1, 2, 8, 3, 4};
          int scale = scales[rnd(10)];
          int bw = w, bh = h;
          if (rnd(40) == 0) (rnd(3) == 0 ? scale : rnd(2) ? bw : bh) = -rnd(2) * 2 * stride;
          const int source = rnd(2) ? -1 : 1, mx = rnd(64) - 32, my = rnd(256) - 128 + rnd(2);
          const int32_t row[10] = {source, bw, bh, 0, 0, x + w / 2, y + h / 2, mx, my, scale};
          rows.insert(rows.end(), row, row + 10);
          refs.push_back(rnd(5) - 2);
        }
        const BlockField b = rasteriseBlocks(rows.data(), refs.data(), refs.size(), fw, fh, stride);
        const int gw = (fw + stride - 1) / stride, gh = (fh + stride - 1) / stride;
        bool ok = b.width() == gw && b.height() == gh;
        std::vector<int32_t> distinct;  // what distinctDistances must give
        for (int s = 0; s < 2 && ok; ++s) {
          std::vector<int32_t> ref(static_cast<size_t>(gw) * gh, 0);
          std::vector<float> vx(ref.size(), 0.f), vy(ref.size(), 0.f);
          bool any = false;
          for (size_t n = 0; n < refs.size(); ++n) {
            const int32_t* r = rows.data() + 10 * n;
            if ((r[0] > 0 ? 1 : 0) != s || refs[n] == 0 || r[1] <= 0 || r[2] <= 0 || r[9] <= 0) continue;
            any = true;
            for (int i = 0; i < gh; ++i)
              for (int j = 0; j < gw; ++j) {
                // centres and edges doubled: 2 * (j * stride) + stride - 1 against 2 * dst -+ w
                const int cx = 2 * j * stride + stride - 1, cy = 2 * i * stride + stride - 1;
                if (cx < 2 * r[5] - r[1] || cx >= 2 * r[5] + r[1] || cy < 2 * r[6] - r[2] || cy >= 2 * r[6] + r[2])
                  continue;
                const size_t k = static_cast<size_t>(i) * gw + j;
                ref[k] = refs[n];
                vx[k] = static_cast<float>(r[7]) / static_cast<float>(r[9]);
                vy[k] = static_cast<float>(r[8]) / static_cast<float>(r[9]);
              }
          }
          if (!any) {
            ok = ok &&
                 (!b.hasSlot(s) || std::all_of(b.ref[s].begin(), b.ref[s].end(), [](int32_t d) { return d == 0; }));
            continue;
          }
          ok = ok && b.hasSlot(s) && b.ref[s] == ref;
          for (int32_t d : ref)
            if (d != 0) distinct.push_back(d);
          for (size_t k = 0; ok && k < ref.size(); ++k)
            if (ref[k] != 0) ok = b.vec[s].dx[k] == vx[k] && b.vec[s].dy[k] == vy[k];
        }
        std::sort(distinct.begin(), distinct.end());
        distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
        std::vector<int32_t> got;
        distinctDistances(b, got);
        ok = ok && got == distinct;
        ++cases;
        same += ok ? 1 : 0;
      }
    }
    expect(cases == 240 && same == cases, "rasterising (and its distinct distances) equals the plain definition: " +
                                              std::to_string(same) + " of " + std::to_string(cases));
  }

  {  // distinctDistances (vectorised, skipping runs) against its plain definition: runs of one
     // distance with zeros between, lengths around the vector widths, values that come back
    uint32_t seed = 4242;
    auto rnd = [&seed](int n) {
      seed = seed * 1664525u + 1013904223u;
      return static_cast<int>((seed >> 8) % static_cast<uint32_t>(n));
    };
    int cases = 0, same = 0;
    for (int round = 0; round < 200; ++round) {
      BlockField b;
      const int slots = 1 + rnd(2);
      const size_t n = static_cast<size_t>(rnd(90));
      for (int s = 0; s < slots; ++s) {
        b.ref[s].assign(n, 0);
        size_t k = 0;
        while (k < n) {
          const size_t run = 1 + static_cast<size_t>(rnd(round % 3 == 0 ? 4 : 40));
          const int32_t d = rnd(3) == 0 ? 0 : rnd(9) - 4;
          for (size_t e = 0; e < run && k < n; ++e, ++k) b.ref[s][k] = rnd(25) == 0 ? rnd(7) - 3 : d;
        }
      }
      std::vector<int32_t> got, want;
      distinctDistances(b, got);
      distinctDistancesReference(b, want);
      ++cases;
      same += got == want ? 1 : 0;
    }
    expect(same == cases,
           "distinctDistances equals its plain definition: " + std::to_string(same) + " of " + std::to_string(cases));
  }

  {  // the vectorised composition step against its plain loop: bit for bit, on grids of every
     // width around the vector widths, one or two slots, several distances (one missing, one
     // the chain's root), motion that lands off the grid, with and without a fallback field
    uint32_t seed = 12345;
    auto rnd = [&seed](int n) {
      seed = seed * 1664525u + 1013904223u;
      return static_cast<int>((seed >> 8) % static_cast<uint32_t>(n));
    };
    auto grid = [&](int gw, int gh, int stride, bool smooth) {
      MotionGrid g(gw * stride, gh * stride, stride);
      for (size_t k = 0; k < g.size(); ++k) {
        g.dx[k] = smooth ? 3.25f + 0.01f * static_cast<float>(k % 7) : 0.25f * static_cast<float>(rnd(200) - 100);
        g.dy[k] = smooth ? -1.5f : 0.125f * static_cast<float>(rnd(200) - 100);
      }
      return g;
    };
    int cases = 0, same = 0;
    for (int stride : {3, 4, 8}) {
      for (int gw : {1, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 48}) {
        for (int gh : {1, 2, 5, 12}) {
          for (int variant = 0; variant < 4; ++variant) {
            const bool uniform = variant % 2 == 0, twoSlots = variant >= 2;
            BlockField b;
            for (int s = 0; s < (twoSlots ? 2 : 1); ++s) {
              b.vec[s] = MotionGrid(gw * stride, gh * stride, stride);
              b.ref[s].assign(b.vec[s].size(), 0);
              for (size_t k = 0; k < b.vec[s].size(); ++k) {
                // uniform: one translation, a few intra cells; else anything up to 40 px
                const bool intra = rnd(uniform ? 20 : 5) == 0;
                b.ref[s][k] = intra ? 0 : (uniform ? (s ? -1 : 1) : std::array<int, 5>{1, 2, 3, -1, 7}[rnd(5)]);
                b.vec[s].dx[k] = uniform ? 3.f : 0.25f * static_cast<float>(rnd(321) - 160);
                b.vec[s].dy[k] = uniform ? -1.25f : 0.25f * static_cast<float>(rnd(321) - 160);
              }
            }
            const MotionGrid r1 = grid(gw, gh, stride, uniform), r2 = grid(gw, gh, stride, false),
                             back = grid(gw, gh, stride, false), fallback = grid(gw, gh, stride, false);
            // distance 3: the chain's root (zero field); 7: missing
            std::vector<StepReference> refs(5);
            refs[0] = {1, true, &r1};
            refs[1] = {2, true, &r2};
            refs[2] = {3, true, nullptr};
            refs[3] = {-1, true, &back};
            refs[4] = {7, false, nullptr};
            for (const MotionGrid* fb : {static_cast<const MotionGrid*>(nullptr), &fallback}) {
              MotionGrid plain, fast = grid(gw, gh, stride, false);  // fast starts dirty
              composeStepReference(b, refs.data(), refs.size(), fb, plain);
              composeStep(b, refs.data(), refs.size(), fb, fast);
              ++cases;
              same += fast.width == plain.width && fast.height == plain.height &&
                      std::memcmp(fast.dx.data(), plain.dx.data(), plain.size() * sizeof(float)) == 0 &&
                      std::memcmp(fast.dy.data(), plain.dy.data(), plain.size() * sizeof(float)) == 0;
            }
          }
        }
      }
    }
    expect(same == cases, "composition step equals its plain loop bit for bit (" + std::to_string(same) + "/" +
                              std::to_string(cases) + " cases)");
  }

  {  // rasterising into the blocks of an earlier frame equals rasterising afresh
    auto rows = [](std::vector<std::array<int32_t, 4>> blocks) {  // source, dst_x, mx, ref
      std::vector<int32_t> out, refs;
      for (auto [source, x, mx, ref] : blocks) {
        const int32_t row[10] = {source, 16, 16, 0, 0, x, 8, mx, 4, 4};
        out.insert(out.end(), row, row + 10);
        refs.push_back(ref);
      }
      return std::make_pair(out, refs);
    };
    const auto [bi, biRefs] = rows({{-1, 8, 4, 1}, {1, 8, -4, -1}, {-1, 24, 8, 2}});
    const auto [p, pRefs] = rows({{-1, 24, 12, 1}});
    BlockField reused = rasteriseBlocks(bi.data(), biRefs.data(), biRefs.size(), 40, 16, 4);
    const bool hadSlot1 = reused.hasSlot(1);
    rasteriseBlocks(p.data(), pRefs.data(), pRefs.size(), 40, 16, 4, reused);
    const BlockField fresh = rasteriseBlocks(p.data(), pRefs.data(), pRefs.size(), 40, 16, 4);
    bool ok = hadSlot1 && !reused.hasSlot(1) && reused.ref[0] == fresh.ref[0] && reused.width() == fresh.width() &&
              reused.height() == fresh.height();
    for (size_t k = 0; k < fresh.size(); ++k)
      if (fresh.ref[0][k] != 0)
        ok = ok && reused.vec[0].dx[k] == fresh.vec[0].dx[k] && reused.vec[0].dy[k] == fresh.vec[0].dy[k];
    // B into B: slot 1 emptied and refilled (its distances zeroed once, resetSlot), on a
    // larger frame than the storage held
    const auto [bi2, bi2Refs] = rows({{1, 24, -8, -2}, {-1, 8, 4, 1}});
    BlockField again = rasteriseBlocks(bi.data(), biRefs.data(), biRefs.size(), 40, 16, 4);
    rasteriseBlocks(bi2.data(), bi2Refs.data(), bi2Refs.size(), 48, 24, 4, again);
    const BlockField fresh2 = rasteriseBlocks(bi2.data(), bi2Refs.data(), bi2Refs.size(), 48, 24, 4);
    ok = ok && again.hasSlot(1) && again.ref[0] == fresh2.ref[0] && again.ref[1] == fresh2.ref[1] &&
         again.width() == fresh2.width() && again.height() == fresh2.height();
    // a stride that is not a power of two, and a motion_scale that is not: divisions
    std::vector<int32_t> odd = {-1, 8, 8, 0, 0, 20, 4, 7, -5, 3};
    const int32_t oddRef = 1;
    const BlockField o = rasteriseBlocks(odd.data(), &oddRef, 1, 40, 16, 6);
    // the block spans [16, 24) x [0, 8): of the centres j * 6 + 2.5 only cell (0, 3)'s is in it
    const size_t below = 1 * o.width() + 3;
    ok = ok && o.width() == 7 && o.height() == 3 && o.ref[0][3] == 1 && o.ref[0][2] == 0 && o.vec[0].dx[3] == 7.f / 3 &&
         o.vec[0].dy[3] == -5.f / 3 && o.ref[0][below] == 0;
    expect(ok, "rasterising into reused blocks (P after B, B after B), odd stride and scale");
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

  {  // the pixel limit: refused at open (the probe learns no size, the first decode refuses)
    FrameRequest req = fullRequest();
    req.maxPixels = 64 * 48 - 1;
    auto [frames, code] = readAll(dir + "/mpeg1-64x48.m1v", req);
    expect(code == "ERR_INPUT_TOO_LARGE" && frames == 0, "pixel limit refuses at open: " + code);
    req.maxPixels = 64 * 48;
    auto [frames2, code2] = readAll(dir + "/mpeg1-64x48.m1v", req);
    expect(code2.empty() && frames2 >= 2, "pixel limit admits its own size: " + code2);
    const std::vector<uint8_t> bytes = slurp(dir + "/translate-p.h264");  // 192x128 H.264
    PacketReader decoder("h264", [] {
      FrameRequest r = fullRequest();
      r.maxPixels = 1000;
      return r;
    }());
    std::string code3;
    try {
      decoder.decode(bytes, AV_NOPTS_VALUE);
      decoder.flush();
      DecodedFrame f;
      while (decoder.next(f)) {
      }
    } catch (const CodedError& e) {
      code3 = e.code();
    }
    expect(code3 == "ERR_INPUT_TOO_LARGE", "packet reader pixel limit: " + code3);
  }

  {  // a FIFO: abort() ends the wait for a writer; with a writer it reads like the file
    const std::string fifo = scratch + "/selftest.fifo";
    ::unlink(fifo.c_str());
    expect(::mkfifo(fifo.c_str(), 0600) == 0, "mkfifo");
    {
      FileReader reader(fifo, fullRequest());
      std::thread stopper([&reader] {
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        reader.abort();
      });
      std::string code;
      try {
        reader.open();
      } catch (const CodedError& e) {
        code = e.code();
      }
      stopper.join();
      expect(code == "ERR_ABORTED", "abort ends the wait for a FIFO writer: " + code);
    }
    const std::vector<uint8_t> bytes = slurp(dir + "/translate-p.h264");
    std::thread writer([&fifo, &bytes] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::ofstream out(fifo, std::ios::binary);  // blocks until the reader has opened it
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    });
    auto [frames, code] = readAll(fifo, fullRequest());
    writer.join();
    expect(code.empty() && frames == 36, "a FIFO with a writer gives 36 frames (" + code + ")");
    ::unlink(fifo.c_str());
  }

  // byte-flipped variants: frames or a coded error, never a crash (HEVC: the patched decoder's
  // export, and the composition that follows it)
  for (const char* name : {"translate-b.mp4", "x265-default.mp4"}) {
    if (std::string(name) == "x265-default.mp4" && !libavExportsExactRefs()) continue;
    const std::vector<uint8_t> original = slurp(dir + "/" + name);
    uint32_t x = 2463534242u;
    int coded = 0;
    const int variants = std::string(name) == "x265-default.mp4" ? 24 : 40;
    for (int variant = 0; variant < variants; ++variant) {
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
      FrameRequest req = fullRequest();
      req.threads = variant % 2 ? 1 : 3;
      if (variant % 3 == 0) req.composition = Composition::Official;
      if (!readAll(path, req).second.empty()) ++coded;
    }
    expect(true, std::string(name) + " fuzz variants survived (" + std::to_string(coded) + " ended in coded errors)");
  }

  // CReFF: the fused kernel (threads, tiles, halos) against the reference, including windows
  // larger than the image, a 1x1 image and motion far outside.
  // lrScale 0: LR wider than the output (U through the channel-last fallback); 200 rows cross
  // the fused kernel's work-unit seams.
  for (const auto& [K, H, W, C, far, wide] :
       std::vector<std::tuple<int, int, int, int, bool, bool>>{{7, 37, 70, 16, false, false},
                                                               {1, 20, 20, 3, false, false},
                                                               {3, 1, 1, 2, false, false},
                                                               {11, 9, 40, 5, true, false},
                                                               {5, 17, 18, 11, false, false},
                                                               {7, 20, 24, 5, false, true},
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
        EmulatedBackend device;
        creffOnDevice(device, w, s, lr.data(), key.data(), motion.data(), WarpSampling::Exact, mode, emu.data());
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
      pointwiseHeadPixels(fused.data(), s.plane(), C, s.plane(), hw.data(), hb.data(), classes, expected.data(),
                          s.plane());
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
    // Exactly the plain loop's bits, whatever the SIMD level (native-check.sh runs every level):
    // each product rounded, summed in channel order, then the bias; no fused multiply-add.
    bool exact = true;
    for (int k = 0; k < K; ++k)
      for (size_t p = 0; p < plane; ++p) {
        float sum = 0.f;
        for (int c = 0; c < C; ++c) sum += unfused(weight[k * C + c] * feature[c * plane + p]);
        exact = exact && sum + bias[k] == logits[k * plane + p];
      }
    expect(exact, "pointwise head " + std::to_string(C) + "->" + std::to_string(K) + " at " + std::to_string(H) + "x" +
                      std::to_string(W) + " = the plain loop, bit for bit");
    // The kernels' variant (fused multiply-adds where the CPU has them) on the whole plane,
    // within rounding of the exact one; then the same pixels as a span of strided planes (a
    // tile's rows would be), on one thread: the same values, and nothing else written.
    std::vector<float> tiled(K * plane);
    pointwiseHeadPixels(feature.data(), plane, C, plane, weight.data(), bias.data(), K, tiled.data(), plane);
    double worst = 0;
    for (size_t i = 0; i < tiled.size(); ++i) worst = std::max(worst, double(std::abs(tiled[i] - logits[i])));
    expect(worst < 1e-5 * C, "pointwise head for kernels' tiles ~ the exact one: " + std::to_string(worst));
    const size_t count = std::min<size_t>(plane, 21);
    std::vector<float> strided(K * (count + 3), -1.f);
    pointwiseHeadPixels(feature.data(), plane, C, count, weight.data(), bias.data(), K, strided.data(), count + 3);
    bool same = true;
    for (int k = 0; k < K; ++k)
      for (size_t p = 0; p < count + 3; ++p)
        same = same && strided[k * (count + 3) + p] == (p < count ? tiled[k * plane + p] : -1.f);
    expect(same, "pointwise head on strided planes writes the same values and nothing else");
  }

  // Labels from logits already at the frame size (the plain arg-max path) against a scalar
  // arg-max, with many ties (values on a coarse grid): the first maximum wins.
  for (const auto& [K, H, W] :
       std::vector<std::tuple<int, int, int>>{{12, 7, 5}, {1, 3, 3}, {255, 4, 37}, {5, 90, 101}}) {
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
    expect(same, "same-size labels are the first arg-max, " + std::to_string(K) + " classes at " + std::to_string(H) +
                     "x" + std::to_string(W));
  }

  // The official pipeline's kernels on shapes that reach their edges: the LR tensor resized from
  // the HR one, the per-pixel motion field at the feature size, labels through two resizes.
  for (const auto& [h, w, outH, outW] : std::vector<std::tuple<int, int, int, int>>{
           {240, 360, 120, 180}, {5, 7, 5, 7}, {1, 9, 1, 3}, {9, 1, 4, 1}, {3, 3, 7, 8}}) {
    std::vector<float> src(3 * static_cast<size_t>(h) * w);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i % 17) - 8.f;
    std::vector<float> out(3 * static_cast<size_t>(outH) * outW, NAN);
    resizeAlignCorners(src.data(), 3, h, w, outH, outW, out.data());
    bool finite = std::all_of(out.begin(), out.end(), [](float v) { return std::isfinite(v); });
    if (h == outH && w == outW) finite = finite && out == src;
    expect(finite, "align-corners tensor resize " + std::to_string(h) + "x" + std::to_string(w) + " -> " +
                       std::to_string(outH) + "x" + std::to_string(outW));
  }
  for (const MotionResize mode : {MotionResize::AlignCorners, MotionResize::Nearest, MotionResize::CellCentres}) {
    for (const auto& [frameW, frameH, stride, outW, outH] : std::vector<std::tuple<int, int, int, int, int>>{
             {192, 128, 4, 24, 16}, {190, 125, 8, 25, 17}, {5, 3, 1, 5, 3}, {7, 5, 4, 1, 1}, {7, 5, 4, 20, 11}}) {
      const int gw = (frameW + stride - 1) / stride, gh = (frameH + stride - 1) / stride;
      std::vector<float> field(2 * static_cast<size_t>(gw) * gh);
      for (size_t i = 0; i < field.size(); ++i) field[i] = i < field.size() / 2 ? 3.f : -2.f;
      std::vector<float> out(2 * static_cast<size_t>(outW) * outH, NAN);
      resizeMotionField(field.data(), gw, gh, stride, frameW, frameH, outW, outH, out.data(), mode);
      // a uniform field stays uniform, scaled: by the height ratio (official) or per axis
      const double sy = static_cast<double>(outH) / frameH;
      const double sx = mode == MotionResize::CellCentres ? static_cast<double>(outW) / frameW : sy;
      bool ok = true;
      for (size_t i = 0; i < out.size(); ++i)
        ok = ok && std::fabs(out[i] - (i < out.size() / 2 ? 3.0 * sx : -2.0 * sy)) < 1e-5;
      expect(ok, "motion resize of a uniform field, mode " + std::to_string(static_cast<int>(mode)) + ", " +
                     std::to_string(frameW) + "x" + std::to_string(frameH) + " -> " + std::to_string(outW) + "x" +
                     std::to_string(outH));
    }
  }
  for (const auto& [K, h, w, midH, midW, outH, outW] :
       std::vector<std::tuple<int, int, int, int, int, int, int>>{{5, 15, 23, 120, 184, 240, 360},
                                                                  {3, 10, 12, 10, 12, 10, 12},
                                                                  {2, 1, 1, 8, 8, 3, 5},
                                                                  {4, 6, 9, 2, 3, 6, 9}}) {
    std::vector<float> logits(static_cast<size_t>(K) * h * w);
    uint32_t x = 7u + K;
    for (float& f : logits) {
      x = x * 1664525u + 1013904223u;
      f = static_cast<float>((x >> 8) % 1000) / 250.f - 2.f;
    }
    std::vector<uint8_t> labels(static_cast<size_t>(outH) * outW, 254);
    LogitsResize via;
    via.height = midH;
    via.width = midW;
    via.upsampling = LogitsUpsampling::HalfPixel;
    logitsToLabelsVia(logits.data(), K, h, w, via, outH, outW, LogitsUpsampling::AlignCorners, labels.data(), 2);
    bool ok = std::all_of(labels.begin(), labels.end(), [K = K](uint8_t v) { return v < K; });
    if (h == midH && w == midW) {  // the first resize the identity: the one-resize labels
      std::vector<uint8_t> one(labels.size(), 253);
      logitsToLabels(logits.data(), K, h, w, outH, outW, LogitsUpsampling::AlignCorners, one.data(), 2);
      ok = ok && one == labels;
    }
    expect(ok, "labels through two resizes, " + std::to_string(h) + "x" + std::to_string(w) + " -> " +
                   std::to_string(midH) + "x" + std::to_string(midW) + " -> " + std::to_string(outH) + "x" +
                   std::to_string(outW));
  }

  // The device path on the emulated device: head + labels of a feature, a kept keyframe and
  // fused frames, against the CPU kernels (head and labels bit for bit; CReFF within rounding),
  // with the bytes across the "bus" counted exactly; every resize the labels take (one, either
  // map; two in a row), the HR head and the LR network's own, sizes off the tiles.
  for (const auto& [C, K, H, W, outH, outW] : std::vector<std::tuple<int, int, int, int, int, int>>{
           {5, 3, 17, 23, 17, 23}, {6, 12, 9, 14, 37, 50}, {3, 1, 4, 4, 9, 7}, {16, 11, 20, 16, 80, 64}}) {
    auto rnd = [](size_t n, float scale, uint32_t seed) {
      std::vector<float> v(n);
      for (float& f : v) {
        seed = seed * 1664525u + 1013904223u;
        f = scale * (static_cast<float>(seed >> 8) / 16777216.f - 0.5f);
      }
      return v;
    };
    auto w = std::make_shared<CreffWeights>();
    w->channels = C, w->window = 5;
    w->qWeight = rnd(C * 9, 0.6f, 1), w->kWeight = rnd(C * 9, 0.6f, 2), w->vWeight = rnd(C * 9, 0.6f, 3);
    w->qBias = rnd(C, 0.6f, 4), w->kBias = rnd(C, 0.6f, 5), w->vBias = rnd(C, 0.6f, 6);
    const PointwiseHeadWeights hrHead{C, K, rnd(K * C, 1.f, 7), rnd(K, 1.f, 8)};
    const PointwiseHeadWeights lrHead{C, K, rnd(K * C, 1.f, 17), rnd(K, 1.f, 18)};
    const size_t plane = static_cast<size_t>(H) * W, outPlane = static_cast<size_t>(outH) * outW;
    const std::vector<float> feature = rnd(C * plane, 3.f, 9), lr = rnd(C * plane / 4 + C, 3.f, 10),
                             motion = rnd(2 * plane, 6.f, 11), other = rnd(C * plane, 3.f, 12);
    const int h = std::max(1, H / 2), lw = std::max(1, W / 2);
    // [upsampling, twoStep, via]: one resize either way; BiSeNet18's x8 half-pixel then
    // align-corners; a PSPNet's align-corners to an input of another size, then align-corners.
    const std::vector<std::tuple<LogitsUpsampling, bool, LogitsResize>> resizes{
        {LogitsUpsampling::AlignCorners, false, {}},
        {LogitsUpsampling::HalfPixel, false, {}},
        {LogitsUpsampling::AlignCorners, true, {8 * H, 8 * W, LogitsUpsampling::HalfPixel}},
        {LogitsUpsampling::AlignCorners, true, {2 * H + 1, W + 3, LogitsUpsampling::AlignCorners}}};
    for (size_t ri = 0; ri < resizes.size(); ++ri) {
      const auto& [map, twoStep, via] = resizes[ri];
      const bool ownLr = ri % 2 == 1;  // every other path with the LR network's own head
      DevicePath path(openEmulatedBackend(), w, hrHead, ownLr ? lrHead : PointwiseHeadWeights{});
      DeviceLabelsRequest request;
      request.outHeight = outH, request.outWidth = outW, request.upsampling = map, request.twoStep = twoStep;
      request.via = via;
      request.logits = true;
      LabelsResize resize;
      resize.height = H, resize.width = W, resize.outHeight = outH, resize.outWidth = outW, resize.upsampling = map;
      resize.twoStep = twoStep, resize.via = via;
      const std::shared_ptr<const LabelsTaps> taps = labelsTaps(resize);
      auto cpuLabels = [&](const float* f, const PointwiseHeadWeights& head) {
        std::vector<float> logits(K * plane);
        pointwiseHead(f, C, H, W, head.weight.data(), head.bias.data(), K, logits.data(), 1);
        std::vector<uint8_t> labels(outPlane);
        logitsToLabels(logits.data(), K, *taps, labels.data(), 1);
        return std::make_pair(logits, labels);
      };
      const std::string at = std::to_string(C) + "ch " + std::to_string(K) + " classes " + std::to_string(H) + "x" +
                             std::to_string(W) + " -> " + std::to_string(outH) + "x" + std::to_string(outW) +
                             ", resize " + std::to_string(ri);
      // The HR head on a kept keyframe, the LR head (or the HR one standing in) on another feature.
      const CreffMode keep = CreffMode::Exact;
      const DeviceLabels key = path.labels(feature.data(), H, W, request, &keep);
      const auto [keyLogits, keyLabels] = cpuLabels(feature.data(), hrHead);
      expect(key.logits == keyLogits && key.labels == keyLabels, "device head and labels = CPU's, bit for bit, " + at);
      const size_t tapsBytes = taps->identity ? 0 : (outH + outW) * sizeof(AxisTaps);
      expect(key.bytesToDevice == C * plane * 4 + tapsBytes && key.bytesToHost == outPlane + K * plane * 4,
             "the keyframe's bus bytes: feature (and the resize's tables, once) up, labels and logits down, " + at);
      DeviceLabelsRequest lrRequest = request;
      lrRequest.head = DecoderHead::Lr;
      const DeviceLabels second = path.labels(other.data(), H, W, lrRequest, nullptr);
      const auto [lrLogits, lrLabels] = cpuLabels(other.data(), ownLr ? lrHead : hrHead);
      expect(second.logits == lrLogits && second.labels == lrLabels,
             std::string(ownLr ? "the LR network's own head" : "no LR head: the HR head") + " on the device = CPU's, " +
                 at);
      expect(second.bytesToDevice == C * plane * 4, "the tables cross the bus once per size, " + at);
      DeviceLabelsRequest fuseRequest = lrRequest;
      fuseRequest.logits = false;
      const DeviceLabels fused =
          path.fuse(lr.data(), h, lw, motion.data(), motion.size(), WarpSampling::Exact, fuseRequest);
      CreffShape s;
      s.channels = C, s.lrHeight = h, s.lrWidth = lw, s.height = H, s.width = W;
      std::vector<float> ref(C * plane);
      creffReference(*w, s, lr.data(), feature.data(), motion.data(), WarpSampling::Exact, CreffMode::Exact,
                     ref.data());
      const auto [fusedLogits, fusedLabels] = cpuLabels(ref.data(), ownLr ? lrHead : hrHead);
      size_t differ = 0;
      for (size_t i = 0; i < outPlane; ++i) differ += fused.labels[i] != fusedLabels[i];
      expect(differ * 200 <= outPlane,
             "fused labels on the device ~ CPU reference (" + std::to_string(differ) + " differ), " + at);
      expect(fused.logits.empty() && fused.bytesToDevice == (C * size_t(h) * lw + 2 * plane) * 4 &&
                 fused.bytesToHost == outPlane,
             "a fused frame's bus bytes: LR feature and motion up, labels down, " + at);
      bool threw = false;
      try {
        path.fuse(lr.data(), h, lw, motion.data(), motion.size() - 1, WarpSampling::Exact, request);
      } catch (const CodedError& e) {
        threw = std::string(e.code()) == "ERR_SHAPE";
      }
      expect(threw, "a motion field of the wrong size is refused");
      path.dropKeyframe();
      threw = false;
      try {
        path.fuse(lr.data(), h, lw, motion.data(), motion.size(), WarpSampling::Exact, request);
      } catch (const CodedError& e) {
        threw = std::string(e.code()) == "ERR_INVALID_ARG";
      }
      expect(threw, "fuse without a keyframe is refused");
    }
  }
  {
    bool threw = false;
    try {
      DevicePath mismatched(openEmulatedBackend(), nullptr,
                            PointwiseHeadWeights{2, 3, std::vector<float>(6), std::vector<float>(3)},
                            PointwiseHeadWeights{2, 4, std::vector<float>(8), std::vector<float>(4)});
    } catch (const CodedError& e) {
      threw = std::string(e.code()) == "ERR_SHAPE";
    }
    expect(threw, "an LR head of other classes than the HR head's is refused");
  }

  // The driver diagnosis on made-up facts: each reason in turn, in the order users fix them.
  {
    auto gpu = [](const char* name, int major, int minor) {
      CudaDeviceFacts d;
      d.name = name, d.major = major, d.minor = minor;
      return d;
    };
    CudaNeeds needs;
    needs.built = true, needs.runtimeVersion = 11080, needs.driverFloor = "450.80.02";
    parseCudaArchitectures("75-real;80-real;86-real;89-real;90", &needs);
    expect(needs.machineCode == std::vector<int>({75, 80, 86, 89, 90}) && needs.ptx == std::vector<int>({90}),
           "CUDA architectures parsed");
    CudaDriverFacts none;
    none.libraryError = "libcuda.so.1: cannot open shared object file";
    expect(diagnoseCuda(none, needs).reason.rfind("no NVIDIA driver found", 0) == 0, "no libcuda: no driver");
    CudaDriverFacts noModule;
    noModule.library = true, noModule.initResult = 100, noModule.cudaVersion = 12020;
    expect(diagnoseCuda(noModule, needs).reason.rfind("no NVIDIA driver found", 0) == 0, "no kernel module: no driver");
    CudaDriverFacts old = noModule;
    old.kernelModule = true, old.version = "418.226.00", old.cudaVersion = 10010, old.initResult = 0;
    old.devices.push_back(gpu("Tesla T4", 7, 5));
    const CudaDiagnosis tooOld = diagnoseCuda(old, needs);
    expect(tooOld.reason ==
               "driver 418.226.00 (CUDA 10.1) is older than 450.80.02, needed by the CUDA 11.8 runtime this build of "
               "ar-seg-native links",
           "old driver: " + tooOld.reason);
    CudaDriverFacts noGpu = noModule;
    noGpu.kernelModule = true, noGpu.version = "535.129.03";
    expect(diagnoseCuda(noGpu, needs).reason.rfind("no GPU", 0) == 0, "module but no device: no GPU");
    CudaDriverFacts pascal = old;
    pascal.version = "535.129.03", pascal.cudaVersion = 12020;
    pascal.devices[0] = gpu("Tesla P100", 6, 0);
    expect(diagnoseCuda(pascal, needs).reason.find("is older than what this build targets") != std::string::npos,
           "Pascal: not targeted");
    CudaDriverFacts ok = pascal;
    for (const auto& [major, minor] :
         std::vector<std::pair<int, int>>{{7, 5}, {8, 6}, {8, 7}, {9, 0}, {10, 0}, {12, 0}}) {
      ok.devices[0] = gpu("GPU", major, minor);
      expect(diagnoseCuda(ok, needs).ok,
             "compute capability " + std::to_string(major) + "." + std::to_string(minor) + " runs");
    }
    CudaNeeds stub;
    expect(diagnoseCuda(ok, stub).reason.rfind("this build of ar-seg-native has no CUDA kernels", 0) == 0,
           "stub build");
    CudaNeeds cuda13 = needs;
    cuda13.runtimeVersion = 13000, cuda13.driverFloor = "580.65.06";
    expect(diagnoseCuda(ok, cuda13).reason.rfind("driver 535.129.03 (CUDA 12.2) is older than 580.65.06", 0) == 0,
           "a CUDA 13 build on a 535 driver");
  }

  {  // recycled storage: given back by one thread (finalisers), taken by another (readers)
    using Pool = RecycledStorage<int32_t>;
    Pool::clear();
    std::vector<int32_t> big(1000, 7), small(100, 7);
    const int32_t* bigData = big.data();
    Pool::give(std::move(big));
    Pool::give(std::move(small));
    expect(Pool::spareBytes() == (1000 + 100) * sizeof(int32_t), "pool: two spares held");
    std::vector<int32_t> a = Pool::take(50);  // the smallest that fits: not the large one
    expect(a.empty() && a.capacity() >= 50 && a.capacity() < 1000, "pool: the smallest spare that fits");
    std::vector<int32_t> b = Pool::take(900);
    expect(b.empty() && b.data() == bigData && b.capacity() >= 900, "pool: the large spare, same storage");
    std::vector<int32_t> c = Pool::take(5000);  // none that large: fresh
    expect(c.empty() && c.capacity() >= 5000 && Pool::spareBytes() == 0, "pool: fresh storage when none fits");
    std::vector<int32_t> d(10, 1);
    emptyWithCapacity(d, 4000);  // too small: swapped for storage from the pool, old one given
    expect(d.empty() && d.capacity() >= 4000 && Pool::spareBytes() == 10 * sizeof(int32_t),
           "pool: emptyWithCapacity gives the old storage back");
    // Bounded: more than kMaxBytes given is freed, not held.
    const size_t chunk = Pool::kMaxBytes / sizeof(int32_t) / 4;
    for (int i = 0; i < 8; ++i) Pool::give(std::vector<int32_t>(chunk));
    expect(Pool::spareBytes() <= Pool::kMaxBytes, "pool: bounded");
    std::thread giver([] {
      for (int i = 0; i < 2000; ++i) Pool::give(std::vector<int32_t>(64 + i % 7));
    });
    size_t taken = 0;
    for (int i = 0; i < 2000; ++i) {
      std::vector<int32_t> t = Pool::take(64);
      t.assign(64, i);
      taken += t.size();
    }
    giver.join();
    expect(taken == 2000 * 64, "pool: taken while another thread gives");
    Pool::clear();
    expect(Pool::spareBytes() == 0, "pool: cleared");
  }

#ifdef __linux__
  {  // SCHED_IDLE on one thread: set there, inherited by the threads it starts, nowhere else
    const long self = currentThreadId();
    const std::string before = threadPolicy(self);
    std::string own, child, other, refused;
    std::thread t([&] {
      try {
        setThreadIdle(currentThreadId());
        own = threadPolicy(currentThreadId());
        std::thread c([&] { child = threadPolicy(currentThreadId()); });
        c.join();
      } catch (const CodedError& e) {
        own = e.code();
      }
    });
    t.join();
    other = threadPolicy(self);
    expect(own == "idle", "a thread switched to SCHED_IDLE reads 'idle' (" + own + ")");
    expect(child == "idle", "a thread started by it inherits SCHED_IDLE (" + child + ")");
    expect(other == before, "the other threads keep their policy (" + other + ")");
    auto code = [](auto fn) {
      try {
        fn();
        return std::string();
      } catch (const CodedError& e) {
        return e.code();
      }
    };
    expect(code([] { threadPolicy(0); }) == "ERR_INVALID_ARG", "thread id 0 refused");
    expect(code([] { setThreadIdle(-5); }) == "ERR_INVALID_ARG", "a negative thread id refused");
    if (getpid() != 1) expect(code([] { setThreadIdle(1); }) == "ERR_NOT_FOUND", "another process's thread refused");
    setenv("ARSEG_SCHED_IDLE", "0", 1);
    std::thread r([&] { refused = code([] { setThreadIdle(currentThreadId()); }); });
    r.join();
    unsetenv("ARSEG_SCHED_IDLE");
    expect(refused == "ERR_UNSUPPORTED", "ARSEG_SCHED_IDLE=0 refuses as a kernel would (" + refused + ")");
  }
#endif

  {
    // The motion vector conversion (AVX-512 VBMI groups of eight where the CPU and ARSEG_SIMD
    // allow, else the plain loop) against the plain reference, on random structs (padding
    // included) of every count around the group size, and by hand on the reference cases.
    uint64_t seed = 0x9E3779B97F4A7C15u;
    auto next = [&] {
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      return seed >> 16;
    };
    std::vector<AVMotionVector> mvs(1000);
    for (auto& mv : mvs) {
      auto* bytes = reinterpret_cast<unsigned char*>(&mv);
      for (size_t b = 0; b < sizeof mv; ++b) bytes[b] = static_cast<unsigned char>(next());
#ifdef AV_MOTION_VECTOR_EXACT_REFS
      switch (next() % 5) {  // the flags' cases: a picture, a placeholder, unknown, not exact
        case 0: mv.flags = AV_MOTION_VECTOR_MAKE_REF_FLAGS(static_cast<int32_t>(next() % 100000), next() % 32); break;
        case 1: mv.flags = AV_MOTION_VECTOR_MAKE_REF_FLAGS(static_cast<int32_t>(next() % 100), -1); break;
        case 2: mv.flags = AV_MOTION_VECTOR_MAKE_REF_FLAGS(-1, next() % 32); break;
        case 3: mv.flags = next() & 0x7FFFFFFFFFFFFFFFu; break;
        default: break;  // random bits
      }
#endif
    }
    bool same = true;
    for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{15}, size_t{16}, size_t{17},
                         size_t{41}, size_t{1000}}) {
      std::vector<int32_t> rows(count * kVectorColumns, 7), plainRows(count * kVectorColumns, 9);
      std::vector<int64_t> refs(count, 7), plainRefs(count, 9);
      convertMotionVectors(mvs.data(), count, rows.data(), refs.data());
      convertMotionVectorsPlain(mvs.data(), count, plainRows.data(), plainRefs.data());
      same = same && rows == plainRows && refs == plainRefs;
    }
    expect(same, std::string("motion vector conversion matches the plain reference (") +
                     (simdLevel() == SimdLevel::Avx512 ? "avx512"
                      : simdLevel() == SimdLevel::Avx2 ? "avx2"
                                                       : "baseline") +
                     ")");
    std::vector<AVMotionVector> hand(9);
    std::memset(hand.data(), 0xA5, hand.size() * sizeof(AVMotionVector));  // padding not zero
    for (size_t i = 0; i < hand.size(); ++i) {
      AVMotionVector& mv = hand[i];
      mv.source = i % 2 ? 1 : -1;
      mv.w = 16;
      mv.h = 8;
      mv.src_x = static_cast<int16_t>(-5 - static_cast<int>(i));
      mv.src_y = -32768;
      mv.dst_x = 1272;
      mv.dst_y = 32767;
      mv.motion_x = -70000;
      mv.motion_y = 3;
      mv.motion_scale = 65535;
      mv.flags = 0;
#ifdef AV_MOTION_VECTOR_EXACT_REFS
      mv.flags = i % 4 == 0   ? AV_MOTION_VECTOR_MAKE_REF_FLAGS(int32_t{123456}, 2)
                 : i % 4 == 1 ? AV_MOTION_VECTOR_MAKE_REF_FLAGS(int32_t{5}, -1)
                 : i % 4 == 2 ? AV_MOTION_VECTOR_MAKE_REF_FLAGS(int32_t{-1}, 0)
                              : uint64_t{77};
#endif
    }
    std::vector<int32_t> rows(hand.size() * kVectorColumns);
    std::vector<int64_t> refs(hand.size());
    convertMotionVectors(hand.data(), hand.size(), rows.data(), refs.data());
    bool fields = true, references = true;
    for (size_t i = 0; i < hand.size(); ++i) {
      const int32_t* r = rows.data() + i * kVectorColumns;
      const int32_t want[kVectorColumns] = {i % 2 ? 1 : -1, 16, 8,    -5 - static_cast<int32_t>(i), -32768, 1272, 32767,
                                            -70000,         3,  65535};
      fields = fields && std::equal(r, r + kVectorColumns, want);
#ifdef AV_MOTION_VECTOR_EXACT_REFS
      const int64_t wantRef = i % 4 == 0 ? 123456 : i % 4 == 1 ? kRefPictureNone : kRefPictureUnknown;
#else
      const int64_t wantRef = kRefPictureUnknown;
#endif
      references = references && refs[i] == wantRef;
    }
    expect(fields, "motion vector rows: signed positions and motions, unsigned sizes and scale");
    expect(references, "motion vector references: a picture, a placeholder, unknown, not exact");
  }

  std::printf("selftest: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
