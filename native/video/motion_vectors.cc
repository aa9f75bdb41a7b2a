#include "motion_vectors.h"

#include <cstddef>
#include <cstring>

#include "../common/recycled_storage.h"
#include "frame_request.h"

extern "C" {
#include <libavutil/motion_vector.h>
}

namespace arseg {

bool libavExportsExactRefs() {
#ifdef AV_MOTION_VECTOR_EXACT_REFS
  return true;
#else
  return false;
#endif
}

bool codecExportsMotionVectors(AVCodecID id) {
  switch (id) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_MPEG4:
    case AV_CODEC_ID_MPEG1VIDEO:
    case AV_CODEC_ID_MPEG2VIDEO:
    case AV_CODEC_ID_H263:
    case AV_CODEC_ID_H263P: return true;
    case AV_CODEC_ID_HEVC: return libavExportsExactRefs();
    default: return false;
  }
}

bool codecRefsAreNearestAnchors(AVCodecID id) {
  switch (id) {
    case AV_CODEC_ID_MPEG4:
    case AV_CODEC_ID_MPEG1VIDEO:
    case AV_CODEC_ID_MPEG2VIDEO:
    case AV_CODEC_ID_H263:
    case AV_CODEC_ID_H263P: return true;
    default: return false;
  }
}

bool codecMotionIsExact(AVCodecID id) {
  if (codecRefsAreNearestAnchors(id)) return true;
  return (id == AV_CODEC_ID_H264 || id == AV_CODEC_ID_HEVC) && libavExportsExactRefs();
}

void exportMotionVectors(const AVFrame* frame, std::vector<int32_t>& out, std::vector<int64_t>& refPictures) {
  const AVFrameSideData* sd = av_frame_get_side_data(frame, AV_FRAME_DATA_MOTION_VECTORS);
  if (!sd) {
    out.clear();
    refPictures.clear();
    return;
  }
  const auto* mvs = reinterpret_cast<const AVMotionVector*>(sd->data);
  const size_t count = sd->size / sizeof(AVMotionVector);
  // Sized first and written through a pointer (appending row by row costs a capacity check and
  // a small copy call per row), without zero-filling what the loop overwrites.
  sizeForOverwrite(out, count * kVectorColumns);
  sizeForOverwrite(refPictures, count);
  int32_t* row = out.data();
  int64_t* refs = refPictures.data();
  // The four int16 positions widened together, the two int32 motions copied together: the
  // copy is once per vector (a few thousand a frame), field by field it cost 40 instructions.
  typedef int16_t Short4 __attribute__((vector_size(8)));
  typedef int32_t Int4 __attribute__((vector_size(16)));
  static_assert(offsetof(AVMotionVector, src_y) == offsetof(AVMotionVector, src_x) + 2 &&
                    offsetof(AVMotionVector, dst_x) == offsetof(AVMotionVector, src_x) + 4 &&
                    offsetof(AVMotionVector, dst_y) == offsetof(AVMotionVector, src_x) + 6 &&
                    offsetof(AVMotionVector, motion_y) == offsetof(AVMotionVector, motion_x) + 4,
                "AVMotionVector's layout (libavutil/motion_vector.h)");
  for (size_t i = 0; i < count; ++i, row += kVectorColumns) {
    const AVMotionVector& mv = mvs[i];
    const auto* bytes = reinterpret_cast<const unsigned char*>(&mv);
    Short4 positions;
    std::memcpy(&positions, bytes + offsetof(AVMotionVector, src_x), sizeof positions);
    const Int4 wide = __builtin_convertvector(positions, Int4);
    row[0] = mv.source;
    row[1] = mv.w;
    row[2] = mv.h;
    std::memcpy(row + 3, &wide, sizeof wide);  // src_x, src_y, dst_x, dst_y
    std::memcpy(row + 7, bytes + offsetof(AVMotionVector, motion_x), 2 * sizeof(int32_t));  // motion_x, motion_y
    row[9] = static_cast<int32_t>(mv.motion_scale);
    int64_t ref = kRefPictureUnknown;
#ifdef AV_MOTION_VECTOR_EXACT_REFS
    if (mv.flags & AV_MOTION_VECTOR_FLAG_EXACT_REF) {
      if (AV_MOTION_VECTOR_REF_INDEX(mv.flags) < 0)
        ref = kRefPictureNone;
      else if (AV_MOTION_VECTOR_REF_PICTURE(mv.flags) != AV_MOTION_VECTOR_REF_UNKNOWN)
        ref = AV_MOTION_VECTOR_REF_PICTURE(mv.flags);
    }
#endif
    refs[i] = ref;
  }
}

int64_t frameDecodeNumber(const AVFrame* frame) {
#ifdef AV_MOTION_VECTOR_EXACT_REFS
  return frame->coded_picture_number & 0x7FFFFFFF;
#else
  (void)frame;
  return -1;
#endif
}

}  // namespace arseg
