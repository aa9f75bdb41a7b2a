#include "motion_vectors.h"

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
  out.clear();
  refPictures.clear();
  const AVFrameSideData* sd = av_frame_get_side_data(frame, AV_FRAME_DATA_MOTION_VECTORS);
  if (!sd) return;
  const auto* mvs = reinterpret_cast<const AVMotionVector*>(sd->data);
  const size_t count = sd->size / sizeof(AVMotionVector);
  // Appended row by row into reserved storage, not resized first: a resize would zero-fill
  // the rows (a few hundred KB a frame at 720p) only for this loop to overwrite them.
  out.reserve(count * kVectorColumns);
  refPictures.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const AVMotionVector& mv = mvs[i];
    const int32_t row[kVectorColumns] = {mv.source, mv.w,     mv.h,        mv.src_x,    mv.src_y,
                                         mv.dst_x,  mv.dst_y, mv.motion_x, mv.motion_y, mv.motion_scale};
    out.insert(out.end(), row, row + kVectorColumns);
    int64_t ref = kRefPictureUnknown;
#ifdef AV_MOTION_VECTOR_EXACT_REFS
    if (mv.flags & AV_MOTION_VECTOR_FLAG_EXACT_REF) {
      if (AV_MOTION_VECTOR_REF_INDEX(mv.flags) < 0)
        ref = kRefPictureNone;
      else if (AV_MOTION_VECTOR_REF_PICTURE(mv.flags) != AV_MOTION_VECTOR_REF_UNKNOWN)
        ref = AV_MOTION_VECTOR_REF_PICTURE(mv.flags);
    }
#endif
    refPictures.push_back(ref);
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
