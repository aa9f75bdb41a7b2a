// Dense motion estimated from the decoded pictures themselves, for streams whose bitstream gives
// no motion vectors (VP9, AV1, MJPEG, raw video, image sequences, HEVC on a libav without the
// vector export) or when the caller asks for it. It gives what the vectors give: for each cell of
// the current picture, the displacement d such that the current picture at p matches the
// previous picture (in presentation order) at p + d, handed to the composer as block vectors
// whose reference is exactly the previous picture (estimatedVectors below).
//
// Method: coarse-to-fine inverse search on 8x8 patches, as in Dense Inverse Search (Kroeger,
// Timofte, Dai, Van Gool, ECCV 2016), on a luma pyramid that starts at half the
// frame's resolution by default (the frames the LR branch sees):
//  1. At each level, from the coarsest, patches of the current picture on a grid (origins every
//     `patchStride` pixels, the last row and column aligned with the image's edge) are moved
//     over the previous picture by Gauss-Newton steps on the mean-normalised squared difference
//     (inverse compositional: the patch's gradients and Hessian are computed once, each step
//     samples the previous picture bilinearly at the current offset). A patch whose final error
//     is larger than at its start goes back to its start.
//  2. Each patch starts from the field of the next coarser level at its centre (twice the
//     value); on the coarsest level from the best of zero, the previous picture's field (a
//     moving camera keeps moving) and every whole-pixel offset within coarseRadius (block
//     matching), so that the search reaches motion of coarseRadius x 2^level pixels and more.
//  3. The field at any point is the average of the patches covering it, each weighted by how
//     well it explains that point (1 / max(1, |previous(q + u) - current(q)|)): at a motion
//     boundary the patch on the right side wins. Output cells sample it at their centres.
// Why this method (bench/estimator.js, BENCHMARKS.md): block matching gives whole-pixel vectors
// (0.5 px of rounding error per step, accumulated over the GOP) unless followed by a sub-pixel
// refinement, which is what the inverse search is, at the price of a few bilinear passes per
// patch; the patch kernel's loads are contiguous 8-float rows (one translation per patch), so it
// vectorises without gathers, and the whole estimate costs a few percent of the LR encoder.
//
// Intensities are the luma's 0..255 values as floats. The patch kernel is vectorised
// (common/simd.h, AVX-512 / AVX2 + FMA / baseline); estimator_reference.cc is the plain
// implementation of the same definition that tests compare it with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "motion_grid.h"

namespace arseg {

struct EstimatorOptions {
  // Finest pyramid level searched: 0 = the frame's resolution, 1 = half (default), 2 = quarter.
  int finestLevel = 1;
  // Coarsest level: the highest (at most maxLevel) whose smaller side is >= minCoarseSide pixels.
  int maxLevel = 6;
  int minCoarseSide = 16;
  // Pixels between patch origins at each level (patches are 8x8): 6 = a quarter overlap (4,
  // half-overlapping, costs 1.8x for the same AR mIoU on the street clips; 8 loses 0.15).
  int patchStride = 6;
  // Gauss-Newton steps per patch and level (4: the fixtures and the street clips converge in
  // two; bench/estimator.js compares 8).
  int iterations = 4;
  // Whole-pixel offsets tried around the start on the coarsest level (block matching), +-.
  int coarseRadius = 4;
  // The same on every finer level (0: none). With iterations = 0 this is plain hierarchical
  // block matching, whole pixels of the finest level (bench/estimator.js compares it).
  int fineRadius = 0;
};

constexpr int kPatch = 8;  // patch side: one patch row is one 8-float vector row
constexpr int kPad = 10;   // replicated border around every pyramid level, in that level's pixels

// One pyramid level: float luma, height rows of `stride` floats, framed by kPad replicated
// pixels on each side (and slack after the last row so that full-vector loads stay inside).
struct PyramidLevel {
  int width = 0;
  int height = 0;
  int stride = 0;  // floats per row, padding included
  std::vector<float> storage;
  const float* origin() const { return storage.data() + static_cast<size_t>(kPad) * stride + kPad; }
  float* origin() { return storage.data() + static_cast<size_t>(kPad) * stride + kPad; }
  // Allocates width x height (+ border); contents undefined.
  void resize(int w, int h);
  // Replicates the edge pixels into the border.
  void padBorder();
};

// Pyramid levels finest..coarsest of one picture (levels[0] is level `finest`).
struct LumaPyramid {
  int frameWidth = 0;
  int frameHeight = 0;
  int finest = 0;
  std::vector<PyramidLevel> levels;
};

// The estimate for one picture: the field on cells of `stride` frame pixels (motion_grid.h) and,
// per cell, whether a patch matched there (0 where no patch explains the cell: occluded or new
// content, a scene cut; the adaptive keyframe policy counts such cells as intra-coded).
struct FieldEstimate {
  MotionGrid field;
  std::vector<uint8_t> matched;
};

// --- Geometry shared by the vectorised and the reference implementation ---------------------

// Number of levels below `finest` that the frame allows, and whether it is large enough at all
// (the finest level must hold one patch).
int coarsestLevel(int frameWidth, int frameHeight, const EstimatorOptions& o);
bool frameLargeEnough(int frameWidth, int frameHeight, const EstimatorOptions& o);
// Patch origins along one axis of a level `size` pixels long: 0, s, 2s, ... and size - kPatch.
std::vector<int> patchOrigins(int size, int patchStride);
// The offsets a patch at origin x0 may take along an axis of a `size`-pixel level, so that the
// bilinear samples (and the +1 neighbour) stay inside the replicated border.
inline float minOffset(int x0) { return static_cast<float>(-(kPad - 1) - x0); }
inline float maxOffset(int x0, int size) { return static_cast<float>(size + kPad - kPatch - 2 - x0); }
// Regularisation added to the patch Hessian's diagonal (squared intensity gradient units): a
// flat patch moves little instead of far.
constexpr float kHessianRidge = 16.f;
// A patch is unmatched when its mean-normalised residual variance exceeds both this (coding
// noise on flat content stays below) and kUnmatchedShare of its own variance (an unrelated
// picture leaves about twice it; a true match a few percent). A cell is matched when the
// patches that match carry at least half of its weight.
constexpr float kUnmatchedVariance = 36.f;
constexpr float kUnmatchedShare = 0.25f;
// Cost per squared pixel of a whole-pixel offset tried on the coarsest level, added to its
// squared difference (0.1 per patch pixel): where nothing tells offsets apart, none is taken.
constexpr float kOffsetPenalty = 0.1f * kPatch * kPatch;

// --- The vectorised estimator ---------------------------------------------------------------

// Builds the pyramid of an 8-bit luma plane (levels o.finestLevel .. coarsestLevel).
void buildPyramid(const uint8_t* luma, ptrdiff_t linesize, int width, int height, const EstimatorOptions& o,
                  LumaPyramid& out);

// The field from `cur` to `prev` (same geometry), on cells of `stride` frame pixels. `prior`, if
// not null, is a field of the same frame size (any stride) tried as the coarsest level's start.
// `wanted`, if not null, flags the cells needed (one per cell of the output grid, row-major):
// only the patches those cells depend on are searched, and they get exactly the values of a
// full estimate; the other cells are left zero and unmatched (a wrong-sized `wanted` leaves
// `out` empty). The motion fill (frame_pipeline.cc) needs a few cells of most pictures.
void estimateField(const LumaPyramid& prev, const LumaPyramid& cur, const MotionGrid* prior, int stride,
                   const EstimatorOptions& o, FieldEstimate& out, const std::vector<uint8_t>* wanted = nullptr);

// Streams pictures in presentation order and estimates each one's field to the one before.
class MotionEstimator {
 public:
  explicit MotionEstimator(EstimatorOptions options = {}) : options_(options) {}

  // Takes the next picture's 8-bit luma. When `want` is true and there is a previous picture of
  // the same size, fills `out` and returns true; otherwise returns false (first picture, a size
  // change, a frame too small to search). `want` false skips the search but keeps the picture as
  // the next one's reference (a keyframe whose own field nobody reads).
  bool push(const uint8_t* luma, ptrdiff_t linesize, int width, int height, int stride, bool want, FieldEstimate& out);
  void reset();

 private:
  EstimatorOptions options_;
  LumaPyramid prev_, cur_;
  bool havePrev_ = false;
  MotionGrid prior_;  // the last field, the next search's guess for a steady motion
};

// The estimate as block vectors in the 10-column layout (frame_request.h's kVectorColumns): one
// block per cell, w = h = stride, dst its centre, source -1 (the previous picture), motion in
// 1/kEstimatedMotionScale pixels. Unmatched cells keep their block: the field there (the
// neighbouring patches' motion) composes better than the zero motion of an intra cell
// (bench/motion-configs.js: AR lost 0.4 mIoU when they were left out); `matched` goes to the
// adaptive keyframe policy instead (BlockField::unexplained).
constexpr int kEstimatedMotionScale = 64;
void estimatedVectors(const FieldEstimate& estimate, std::vector<int32_t>& out);

}  // namespace arseg
