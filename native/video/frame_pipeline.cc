#include "frame_pipeline.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../common/coded_error.h"
#include "../common/recycled_storage.h"
#include "../motion/block_field.h"
#include "../motion/compose_step.h"
#include "motion_vectors.h"
#include "tensor_resize.h"

namespace arseg {

namespace {

char pictTypeLetter(AVPictureType type) {
  switch (type) {
    case AV_PICTURE_TYPE_I: return 'I';
    case AV_PICTURE_TYPE_P: return 'P';
    case AV_PICTURE_TYPE_B: return 'B';
    case AV_PICTURE_TYPE_S: return 'S';
    case AV_PICTURE_TYPE_SI: return 'I';
    case AV_PICTURE_TYPE_SP: return 'P';
    case AV_PICTURE_TYPE_BI: return 'B';
    default: return '?';
  }
}

// Interlaced pictures (H.264 field pictures or MBAFF, MPEG-2 field coding): libavcodec exports
// field macroblocks' vectors in field lines, and a field may predict from the opposite parity
// (half a frame away), which the frame-based composition cannot represent
// (test/interlaced.test.js: 0.4 px error per frame on an MBAFF clip).
bool isInterlaced(const AVFrame* frame) {
#ifdef AV_FRAME_FLAG_INTERLACED
  return (frame->flags & AV_FRAME_FLAG_INTERLACED) != 0;
#else
  return frame->interlaced_frame != 0;
#endif
}

}  // namespace

void checkPictureSize(int width, int height, int64_t limit, int64_t framesDecoded) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0)
    throw CodedError("ERR_INVALID_DATA", "the picture has an invalid size " + size, framesDecoded);
  const int64_t pixels = int64_t(width) * height;
  if (limit > 0 && pixels > limit)
    throw CodedError("ERR_INPUT_TOO_LARGE",
                     "the video's pictures are " + size + " (" + std::to_string(pixels) +
                         " pixels), more than the limit of " + std::to_string(limit) + " (option limitInputPixels)",
                     framesDecoded);
  if (width > kMaxDimension || height > kMaxDimension || pixels > kMaxPixels)
    throw CodedError("ERR_INPUT_TOO_LARGE",
                     "the video's pictures are " + size + ", larger than the largest supported (" +
                         std::to_string(kMaxDimension) + " per side, " + std::to_string(kMaxPixels) + " pixels)",
                     framesDecoded);
}

void FramePipeline::push(const AVFrame* frame, AVRational timeBase, int64_t position) {
  checkPictureSize(frame->width, frame->height, request_.maxPixels, framesSeen_);
  if (request_.motion != MotionMode::None && isInterlaced(frame))
    throw CodedError("ERR_NO_MOTION_VECTORS",
                     "frame " + std::to_string(framesSeen_) +
                         " is interlaced (field pictures or field macroblocks): its motion "
                         "vectors are per field, between fields half a frame apart, and would "
                         "compose into wrong frame motion; decode it without motion (raw "
                         "vectors are still exported), or deinterlace and re-encode it",
                     framesSeen_);
  if (framesSeen_ == 0) {
    firstWidth_ = frame->width;
    firstHeight_ = frame->height;
  }
  DecodedFrame out;
  // A frame the decoder dropped leaves its index unused, so that the indices (and the files
  // named after them) stay the stream's frame numbers.
  if (position > nextIndex_) {
    skipped_ += position - nextIndex_;
    nextIndex_ = position;
  }
  out.index = nextIndex_++;
  ++framesSeen_;
  out.width = frame->width;
  out.height = frame->height;
  out.pictType = pictTypeLetter(frame->pict_type);
  const int64_t ts = frame->best_effort_timestamp;
  out.pts =
      (ts == AV_NOPTS_VALUE || timeBase.den == 0) ? std::numeric_limits<double>::quiet_NaN() : ts * av_q2d(timeBase);
  out.corrupt = (frame->flags & AV_FRAME_FLAG_CORRUPT) != 0 || frame->decode_error_flags != 0;
  // Adaptive keyframes start as the GOP's; the composer promotes anchors whose motion asks for it.
  if (request_.keyframes.mode == KeyframePolicy::Mode::Interval)
    out.isKeyframe = out.index % request_.keyframes.interval == 0;
  else
    out.isKeyframe = out.pictType == 'I' || out.index == 0;

  if (request_.rgb) converter_.toRgb(frame, out.rgb);
  out.tensors.resize(request_.tensors.size());
  out.tensorSizes.resize(request_.tensors.size());
  for (size_t t = 0; t < request_.tensors.size(); ++t) {
    TensorSpec spec = request_.tensors[t];
    if (spec.from >= 0) {
      const auto [srcW, srcH] = out.tensorSizes[static_cast<size_t>(spec.from)];
      const int w = std::max(1, static_cast<int>(std::floor(srcW * spec.scale)));
      const int h = std::max(1, static_cast<int>(std::floor(srcH * spec.scale)));
      out.tensorSizes[t] = {w, h};
      out.tensors[t].resize(static_cast<size_t>(3) * w * h);
      resizeAlignCorners(out.tensors[static_cast<size_t>(spec.from)].data(), 3, srcH, srcW, h, w,
                         out.tensors[t].data());
      continue;
    }
    if (spec.scale > 0) {
      auto fit = [&](int size) {
        const int m = spec.multiple;
        const int n = static_cast<int>(std::lround(size * spec.scale / m)) * m;
        return n < m ? m : n;
      };
      spec.width = fit(frame->width);
      spec.height = fit(frame->height);
    }
    out.tensorSizes[t] = {spec.width, spec.height};
    converter_.toTensor(frame, spec, out.tensors[t]);
  }

  if (!request_.needsMotionSideData()) {
    composer_.push(std::move(out), BlockField(), composed_);
  } else if (request_.motionSource == MotionSource::Estimate) {
    // Every vector refers to the previous picture: nothing to resolve, nothing to wait for.
    estimate(frame, out);
    out.hasVectors = request_.vectors;
    out.motionSource = DecodedFrame::Source::Estimated;
    resolved_.push_back(std::move(out));
    compose(resolved_, haveEstimate_ ? &estimate_ : nullptr);
  } else {
    if (fillsMotion()) {
      // Kept until no frame can still be composed against it (see kRecentPictures).
      FramePtr kept(av_frame_clone(frame));
      if (kept) {
        recentPictures_[out.index] = std::move(kept);
        fillPyramids_.erase(out.index);  // a pyramid of an earlier picture at this index is stale
      }
      while (!recentPictures_.empty() && recentPictures_.begin()->first < out.index - kRecentPictures)
        recentPictures_.erase(recentPictures_.begin());
      fillPyramids_.eraseBefore(out.index - kRecentPictures);
    }
    out.vectors = std::move(spareVectors_);
    spareVectors_.clear();
    exportMotionVectors(frame, out.vectors, refPictures_);
    out.motionSource = DecodedFrame::Source::Bitstream;
    out.hasVectors = request_.vectors;
    resolver_.push(std::move(out), frameDecodeNumber(frame), std::move(refPictures_), resolved_);
    refPictures_.clear();
    compose(resolved_);
  }
  for (DecodedFrame& f : composed_) ready_.push_back(std::move(f));
  composed_.clear();
}

void FramePipeline::estimate(const AVFrame* frame, DecodedFrame& out) {
  // A keyframe's own field is not read when motion is accumulated under a fixed policy (its
  // chain restarts there): the picture is only kept as the next one's reference.
  const bool want = request_.vectors || request_.motion != MotionMode::Accumulated || !out.isKeyframe ||
                    request_.keyframes.mode == KeyframePolicy::Mode::Adaptive;
  ptrdiff_t linesize = 0;
  const uint8_t* luma = converter_.luma(frame, linesize);
  haveEstimate_ = estimator_.push(luma, linesize, frame->width, frame->height, request_.stride, want, estimate_);
  out.vectors.clear();
  if (haveEstimate_) estimatedVectors(estimate_, out.vectors);
  const size_t rows = out.vectors.size() / kVectorColumns;
  emptyWithCapacity(out.vectorRefs, rows);
  out.vectorRefs.assign(rows, 1);  // exactly one picture back in display order
  out.compositionRefs.assign(rows, 1);
}

void FramePipeline::compose(std::vector<DecodedFrame>& resolved, const FieldEstimate* estimate) {
  for (DecodedFrame& f : resolved) {
    BlockField blocks;
    if (request_.motion != MotionMode::None) {
      // The official composition works per pixel, whatever the stride handed out.
      const int stride = request_.motion == MotionMode::Accumulated && request_.composition == Composition::Official
                             ? 1
                             : request_.stride;
      blocks = composer_.spareBlocks();
      rasteriseBlocks(f.vectors.data(), f.compositionRefs.data(), f.vectors.size() / kVectorColumns, f.width, f.height,
                      stride, blocks);
      if (fillsMotion()) fillMotion(f, blocks);
      if (request_.motionSource == MotionSource::Estimate) {
        blocks.sequential = true;
        // Cells no patch matched, on the blocks' grid (the estimate's cells when the strides
        // agree, else the estimate cell holding each cell's centre).
        if (estimate) {
          const MotionGrid& e = estimate->field;
          blocks.unexplained.assign(blocks.size(), 0);
          for (int i = 0; i < blocks.height(); ++i) {
            const int ei = std::min(e.height - 1, (i * stride + (stride - 1) / 2) / e.stride);
            for (int j = 0; j < blocks.width(); ++j) {
              const int ej = std::min(e.width - 1, (j * stride + (stride - 1) / 2) / e.stride);
              blocks.unexplained[static_cast<size_t>(i) * blocks.width() + j] =
                  !estimate->matched[static_cast<size_t>(ei) * e.width + ej];
            }
          }
        }
      }
    }
    resolver_.recycle(std::move(f.compositionRefs));
    f.compositionRefs.clear();
    f.compositionRefs.shrink_to_fit();
    if (!request_.vectors) {
      // Kept with its rows: the next frame's export overwrites them all (sizeForOverwrite),
      // where an emptied spare was zero-filled first (a 130 kB fill per 720p frame).
      if (spareVectors_.capacity() < f.vectors.capacity()) spareVectors_.swap(f.vectors);
      f.vectors.clear();
      f.vectors.shrink_to_fit();
      f.vectorRefs.clear();
    }
    composer_.push(std::move(f), std::move(blocks), composed_);
  }
  resolved.clear();
}

bool FramePipeline::fillsMotion() const {
  return request_.motionFill == MotionFill::Estimate && request_.motion == MotionMode::Accumulated &&
         request_.composition == Composition::Bilinear && request_.motionSource != MotionSource::Estimate;
}

// Cells of an inter picture that the bitstream does not link to a past picture take the motion
// the estimator finds against the nearest past picture the frame predicts from.
// - Intra cells. Left to the fallback (zero motion relative to that picture), an intra cell of a
//   P-frame four or five pictures from its reference (B-pyramids: x264's and x265's defaults)
//   says that a car or a pole stood still for those pictures, and every B-frame predicting from
//   it inherits that. On the street test split a fifth of the car pixels of such P-frames are
//   intra.
// - Cells predicted only from later pictures. Their field runs through the later picture's, one
//   step more to the keyframe and across its block edges; the estimate to the nearest past
//   picture is one step. (Bi-predicted cells keep the mean of both: measured no better when
//   they drop the later one.)
// bench/motion-configs.js measures both (BENCHMARKS.md, encoder configurations). The reference
// is one the frame already predicts from, so composition waits for nothing new (it precedes the
// frame in decode order: no cycle). Filled intra cells are flagged `unexplained`: the adaptive
// keyframe policy still counts them as intra-coded.
void FramePipeline::fillMotion(const DecodedFrame& f, BlockField& blocks) {
  if (f.pictType == 'I' || blocks.size() == 0) return;
  auto linkedToPast = [&](size_t k) { return blocks.ref[0][k] > 0 || (blocks.hasSlot(1) && blocks.ref[1][k] > 0); };
  // Only pictures with enough such cells away from the edge pay for an estimate (the
  // composition reads the field kEdgeInsetPixels inside the frame anyway); most pictures of a
  // P-only stream stop after this one pass.
  const int stride = blocks.stride();
  const int inset = (kEdgeInsetPixels + stride - 1) / stride;
  const int rows = blocks.height() - 2 * inset, cols = blocks.width() - 2 * inset;
  if (rows <= 0 || cols <= 0) return;
  size_t unlinked = 0;
  for (int i = inset; i < blocks.height() - inset; ++i) {
    const size_t row = static_cast<size_t>(i) * blocks.width();
    for (int j = inset; j < blocks.width() - inset; ++j) unlinked += !linkedToPast(row + j);
  }
  if (unlinked < kMinFillShare * static_cast<float>(rows) * static_cast<float>(cols)) return;
  // The nearest past picture the frame predicts from: the smallest positive distance.
  distinctDistances(blocks, fillDistances_);
  const auto past = std::upper_bound(fillDistances_.begin(), fillDistances_.end(), 0);
  if (past == fillDistances_.end()) return;  // nothing in the past to match against
  const int32_t nearest = *past;
  auto cur = recentPictures_.find(f.index);
  auto ref = recentPictures_.find(f.index - nearest);
  if (cur == recentPictures_.end() || ref == recentPictures_.end()) return;
  const AVFrame* a = ref->second.get();
  const AVFrame* b = cur->second.get();
  if (a->width != b->width || a->height != b->height || b->width != f.width || b->height != f.height) return;
  const EstimatorOptions options;
  if (!frameLargeEnough(f.width, f.height, options)) return;
  fillWanted_.resize(blocks.size());
  for (size_t k = 0; k < blocks.size(); ++k) fillWanted_[k] = !linkedToPast(k);
  // Both pyramids stay valid together: the cache evicts the least recently used (capacity >= 2).
  const LumaPyramid& reference = fillPyramid(ref->first, a, options);
  const LumaPyramid& current = fillPyramid(cur->first, b, options);
  estimateField(reference, current, nullptr, stride, options, fillEstimate_, &fillWanted_);
  const MotionGrid& e = fillEstimate_.field;
  if (e.width != blocks.width() || e.height != blocks.height()) return;
  if (FillCheck* check = request_.fillCheck) {
    LumaPyramid freshReference, freshCurrent;
    ptrdiff_t linesize = 0;
    const uint8_t* luma = converter_.luma(a, linesize);
    buildPyramid(luma, linesize, a->width, a->height, options, freshReference);
    luma = converter_.luma(b, linesize);
    buildPyramid(luma, linesize, b->width, b->height, options, freshCurrent);
    FieldEstimate whole;
    estimateField(freshReference, freshCurrent, nullptr, stride, options, whole);
    int64_t cells = 0, mismatches = 0;
    for (size_t k = 0; k < blocks.size(); ++k) {
      if (!fillWanted_[k]) continue;
      ++cells;
      mismatches += whole.field.dx[k] != e.dx[k] || whole.field.dy[k] != e.dy[k];
    }
    check->fills += 1;
    check->cells += cells;
    check->mismatches += mismatches;
  }
  blocks.unexplained.assign(blocks.size(), 0);
  for (size_t k = 0; k < blocks.size(); ++k) {
    if (!fillWanted_[k]) continue;
    blocks.unexplained[k] = blocks.intra(k);
    if (blocks.hasSlot(1)) blocks.ref[1][k] = 0;
    blocks.ref[0][k] = nearest;
    blocks.vec[0].dx[k] = e.dx[k];
    blocks.vec[0].dy[k] = e.dy[k];
  }
}

const LumaPyramid& FramePipeline::fillPyramid(int64_t index, const AVFrame* picture, const EstimatorOptions& options) {
  if (const LumaPyramid* p = fillPyramids_.find(index);
      p && p->frameWidth == picture->width && p->frameHeight == picture->height) {
    if (request_.fillCheck) request_.fillCheck->reused += 1;
    return *p;
  }
  LumaPyramid& p = fillPyramids_.insert(index);
  ptrdiff_t linesize = 0;
  const uint8_t* luma = converter_.luma(picture, linesize);
  buildPyramid(luma, linesize, picture->width, picture->height, options, p);
  return p;
}

void FramePipeline::flush() {
  resolver_.flush(resolved_);
  compose(resolved_);
  composer_.flush(composed_);
  for (DecodedFrame& f : composed_) ready_.push_back(std::move(f));
  composed_.clear();
}

DecodedFrame FramePipeline::popReady() {
  DecodedFrame f = std::move(ready_.front());
  ready_.pop_front();
  return f;
}

}  // namespace arseg
