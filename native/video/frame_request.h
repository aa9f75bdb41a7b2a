// What the caller wants produced for every decoded frame, and what comes back. Kept free of
// libav and N-API types so the motion and conversion code can be tested on their own.
#pragma once

#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

namespace arseg {

// The largest picture this code handles at all (sizes computed in int stay far from overflow).
constexpr int kMaxDimension = 16384;
constexpr int64_t kMaxPixels = int64_t(1) << 27;
// The default of FrameRequest::maxPixels (the option limitInputPixels): 8192 x 8192. A corrupt or
// hostile header must not make us allocate gigabytes before the first frame.
constexpr int64_t kDefaultPixelLimit = int64_t(8192) * 8192;

// Throws ERR_INPUT_TOO_LARGE when a width x height picture exceeds `limit` pixels (0: only the
// hard limits above) or the hard limits; `framesDecoded` >= 0 for a size met part-way.
void checkPictureSize(int width, int height, int64_t limit, int64_t framesDecoded = -1);

// One float32 NCHW (1 x 3 x height x width) tensor, resized from the frame and normalised
// as (value / 255 - mean[c]) / std[c]. The size is fixed (width, height), or relative to each
// frame (scale > 0): round(frame size * scale) to the nearest multiple of `multiple`, at least
// `multiple` (networks with an output stride need sizes that divide).
// Or (from >= 0) the official AR-Seg's LR input: the earlier tensor `from` (already normalised)
// resized bilinearly with align_corners=True to floor(its size * scale), at least 1 (Python's
// int(H * s)); mean, std, channel order and multiple are then those of that tensor.
struct TensorSpec {
  int width = 0;
  int height = 0;
  double scale = 0;
  int multiple = 1;
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};
  bool bgr = false;  // channel order of the tensor planes
  int from = -1;     // index of the earlier tensor this one is resized from, or -1: the frame
};

enum class MotionMode {
  None,         // no dense field
  Reference,    // displacement to the frame each block was predicted from
  Accumulated,  // displacement composed back to the frame's keyframe
};

// How an accumulated field is composed along the reference chain (keyframe_composer.h).
enum class Composition {
  Bilinear,  // fractional vectors, each step samples its reference's field bilinearly
  Official,  // the official AR-Seg pre-processing (mergeMotion): per pixel, every step rounded
             // to whole pixels, positions clipped to the frame, integer fields
};

// Which frames are keyframes (the frames motion is accumulated to, and that AR-Seg runs at HR).
struct KeyframePolicy {
  enum class Mode {
    Gop,       // every I-frame (and the first frame)
    Interval,  // every `interval`-th frame
    Adaptive,  // every I-frame, and an I- or P-frame whose motion says the keyframe no longer
               // explains it: a share of intra-coded cells of at least `intraShare` (a scene
               // cut), a median accumulated displacement of at least `maxMotion` pixels, or
               // `maxInterval` frames since the keyframe
  };
  Mode mode = Mode::Gop;
  int interval = 0;
  int maxInterval = 12;
  float intraShare = 0.5f;
  float maxMotion = 0;  // pixels; 0 means 8% of the frame's larger side
};

// Where block motion comes from (estimator.h for the estimate).
enum class MotionSource {
  Auto,       // the bitstream's vectors when the codec's decoder exports them, else estimated
  Bitstream,  // the bitstream's vectors only (ERR_NO_MOTION_VECTORS for a codec without them)
  Estimate,   // estimated from the decoded pictures, whatever the codec
};

// What the accumulated field does at the cells of an inter picture that the bitstream does not
// link to a past picture: intra cells (the encoder found no good prediction: new content, motion
// beyond its search range, a fast object against a reference several pictures back) and cells
// predicted only from later pictures (B-frames), whose field would run through the later
// picture's, a longer chain to the keyframe.
enum class MotionFill {
  // Estimated (estimator.h) against the nearest past picture the frame predicts from, and
  // composed like a vector to it. The bilinear composition of the bitstream's vectors only.
  Estimate,
  // As the bitstream says: intra cells keep the fallback frame's field (zero motion relative
  // to it, the official pre-processing's rule), future-only cells follow the later picture.
  None,
};

// Self-check of MotionFill::Estimate, for native/tests/selftest.cc (a FrameRequest points at one;
// off otherwise, as it doubles the fill's cost): every fill also estimates the whole picture from
// pyramids built afresh and counts the filled cells whose motion differs by a bit from it. The
// counters are atomic so that several pipelines on different threads may share one.
struct FillCheck {
  std::atomic<int64_t> fills{0};       // pictures filled
  std::atomic<int64_t> cells{0};       // cells filled
  std::atomic<int64_t> reused{0};      // pyramids taken from the cache
  std::atomic<int64_t> mismatches{0};  // filled cells that differ from the fresh full estimate
};

struct FrameRequest {
  bool rgb = false;
  std::vector<TensorSpec> tensors;
  bool vectors = false;
  MotionMode motion = MotionMode::None;
  MotionSource motionSource = MotionSource::Auto;  // resolved to Bitstream or Estimate by the
                                                   // video decoder when it opens
  Composition composition = Composition::Bilinear;
  MotionFill motionFill = MotionFill::Estimate;
  int stride = 8;  // dense field cell size in pixels
  KeyframePolicy keyframes;
  int threads = 0;                         // decoder threads, 0 = libavcodec's choice
  bool strict = false;                     // a packet the decoder rejects ends the stream with ERR_DECODE
  bool lowDelay = false;                   // each frame out as soon as it is decoded (live packet sources)
  int64_t maxPixels = kDefaultPixelLimit;  // largest width x height accepted; 0 = no limit but the hard ones
  FillCheck* fillCheck = nullptr;          // tests only: not settable from JS; must outlive the reader

  bool needsMotionSideData() const { return vectors || motion != MotionMode::None; }
};

// Raw motion vector columns, in the order mv-extractor users know.
constexpr int kVectorColumns = 10;

// DecodedFrame::vectorRefs entries besides a display-order distance (+ past, - future).
constexpr int32_t kVectorRefUnknown = 0;       // the bitstream names none (stock libav)
constexpr int32_t kVectorRefNone = INT32_MIN;  // a placeholder row, not a prediction

struct DecodedFrame {
  int64_t index = 0;          // presentation order, from 0
  double pts = 0;             // seconds; NaN when the stream carries no timestamp
  char pictType = '?';        // 'I', 'P', 'B' or '?'
  bool isKeyframe = false;    // keyframe of the chosen keyframe policy
  int64_t keyframeIndex = 0;  // index of the keyframe this frame's motion refers to
  bool corrupt = false;       // the decoder flagged the frame as damaged (concealed)
  int width = 0;
  int height = 0;

  std::vector<uint8_t> rgb;                     // height x width x 3, when requested
  std::vector<std::vector<float>> tensors;      // one per TensorSpec
  std::vector<std::array<int, 2>> tensorSizes;  // width, height of each tensor
  bool hasVectors = false;
  std::vector<int32_t> vectors;  // N x kVectorColumns
  // Where the vectors and motion of this frame came from (vectors or motion requested only).
  enum class Source { None, Bitstream, Estimated } motionSource = Source::None;
  // Per vector: the exact reference as a signed display-order distance (+ = that many frames
  // back), kVectorRefUnknown or kVectorRefNone (reference_resolver.h).
  std::vector<int32_t> vectorRefs;
  // Per vector: the reference composition follows: the exact one, else the nearest-anchor
  // assumption; 0 = no prediction. Internal: not handed to JS.
  std::vector<int32_t> compositionRefs;
  bool hasMotion = false;
  int motionWidth = 0;  // grid cells per row
  int motionHeight = 0;
  std::vector<float> motion;  // 2 x motionHeight x motionWidth (dx plane, dy plane)
};

}  // namespace arseg
