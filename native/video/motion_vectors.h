// Reads libavcodec's AV_FRAME_DATA_MOTION_VECTORS side data into flat int32 rows, with the
// reference picture each vector names when the libav carries the ar-seg patch
// (patches/ffmpeg/, libavutil/motion_vector.h: AV_MOTION_VECTOR_EXACT_REFS).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/motion_vector.h>
}

namespace arseg {

// A vector's reference picture as exported (refPictures below): a decode-order number
// (>= 0, the AVFrame.coded_picture_number of that picture), or one of these.
constexpr int64_t kRefPictureUnknown = -1;  // libav without the patch, or a reference it lost
constexpr int64_t kRefPictureNone = -2;     // a placeholder row: the block does not predict
                                            // from this list (stock H.264 lists it anyway)

// Whether this build's libav exports exact references (compiled against the patched headers).
bool libavExportsExactRefs();

// Codecs whose decoder exports block motion vectors (export_mvs): H.264, MPEG-4 Part 2,
// MPEG-1/2, H.263, and HEVC when the libav carries the patch.
bool codecExportsMotionVectors(AVCodecID id);

// Codecs whose references are always the nearest anchor (I/P picture) before or after: their
// direction (source = -1/+1) names the reference exactly.
bool codecRefsAreNearestAnchors(AVCodecID id);

// Whether the motion of this codec follows exact references: nearest-anchor codecs, and H.264
// and HEVC with the patched libav. Otherwise composition assumes the nearest anchor.
bool codecMotionIsExact(AVCodecID id);

// Fills `out` (cleared first) with one row of 10 columns per AVMotionVector of `frame`:
// source, w, h, src_x, src_y, dst_x, dst_y, motion_x, motion_y, motion_scale (the stock fields,
// as libavcodec computes them), and `refPictures` with one entry per row (see above). A frame
// without side data (an I-frame, or a skipped frame) gives zero rows.
void exportMotionVectors(const AVFrame* frame, std::vector<int32_t>& out, std::vector<int64_t>& refPictures);

// The conversion exportMotionVectors makes of `count` vectors into `rows` (count x 10) and
// `refs` (count): on CPUs with AVX-512 VBMI (unless ARSEG_SIMD caps the level) eight vectors at
// a time with byte permutations, the rest (and other CPUs) through convertMotionVectorsPlain,
// the reference; both give the same values.
void convertMotionVectors(const AVMotionVector* mvs, size_t count, int32_t* rows, int64_t* refs);
void convertMotionVectorsPlain(const AVMotionVector* mvs, size_t count, int32_t* rows, int64_t* refs);

// The decode-order number of `frame` that the references of later frames name, or -1 when
// the libav exports no exact references.
int64_t frameDecodeNumber(const AVFrame* frame);

}  // namespace arseg
