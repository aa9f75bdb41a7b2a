#include "motion_vectors.h"

#include <cstddef>
#include <cstring>

#include "../common/recycled_storage.h"
#include "../common/simd.h"
#include "frame_request.h"

extern "C" {
#include <libavutil/motion_vector.h>
}

#if ARSEG_X86_TARGETS
#include <immintrin.h>
#endif

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

void convertMotionVectorsPlain(const AVMotionVector* mvs, size_t count, int32_t* rows, int64_t* refs) {
  int32_t* row = rows;
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

#if ARSEG_X86_TARGETS && defined(AV_MOTION_VECTOR_EXACT_REFS)
#define ARSEG_VECTORS_VBMI 1
namespace {

// Eight vectors (320 bytes) convert to eight rows (320 bytes: a row of 10 int32 is as long as
// the 40-byte struct, and each field lies at or before its column), so each 64-byte block of
// rows is one two-register byte permutation of the matching and the previous 64 input bytes:
// the permutation puts each int16 position in the high half of its column and the arithmetic
// shift below sign-extends it; the unsigned fields are zero-extended by the zeroing mask.
constexpr int kGroupVectors = 8;
constexpr int kGroupBytes = kGroupVectors * 40;
static_assert(sizeof(AVMotionVector) == 40 && kVectorColumns * sizeof(int32_t) == 40 &&
                  offsetof(AVMotionVector, w) == 4 && offsetof(AVMotionVector, h) == 5 &&
                  offsetof(AVMotionVector, src_x) == 6 && offsetof(AVMotionVector, flags) == 16 &&
                  offsetof(AVMotionVector, motion_x) == 24 && offsetof(AVMotionVector, motion_scale) == 32,
              "AVMotionVector's layout (libavutil/motion_vector.h)");

struct GroupTables {
  uint8_t index[5][64];   // byte of the 128-byte pair (previous block, this block); 0 where zeroed
  uint64_t keep[5];       // bit b: output byte b comes from the input (else 0)
  uint32_t shift[5][16];  // right shift of each int32 column (16: an int16 position)
};

constexpr GroupTables makeGroupTables() {
  GroupTables t{};
  for (int o = 0; o < kGroupBytes; ++o) {
    const int block = o / 64, vector = o / 40, column = (o % 40) / 4, b = o % 4, base = vector * 40;
    int source = -1;  // input byte within the group, -1: a zero byte
    int shift = 0;
    if (column == 0) {  // source
      source = base + b;
    } else if (column <= 2) {  // w, h
      source = b == 0 ? base + 3 + column : -1;
    } else if (column <= 6) {  // src_x, src_y, dst_x, dst_y: in the high half, shifted down
      source = b >= 2 ? base + 6 + 2 * (column - 3) + b - 2 : -1;
      shift = 16;
    } else if (column <= 8) {  // motion_x, motion_y
      source = base + 24 + 4 * (column - 7) + b;
    } else {  // motion_scale
      source = b < 2 ? base + 32 + b : -1;
    }
    const int pairBase = block == 0 ? 0 : 64 * (block - 1);
    if (source >= 0) {
      t.index[block][o % 64] = static_cast<uint8_t>(source - pairBase);
      t.keep[block] |= uint64_t{1} << (o % 64);
    }
    t.shift[block][(o % 64) / 4] = static_cast<uint32_t>(shift);
  }
  return t;
}
constexpr GroupTables kGroupTables = makeGroupTables();

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) size_t convertGroupsVbmi(const AVMotionVector* mvs, size_t count,
                                                                                int32_t* rows, int64_t* refs) {
  const size_t groups = count / kGroupVectors;
  const __m512i flagIndex = _mm512_setr_epi64(2, 7, 12, 17, 22, 27, 32, 37);  // qword of each flags
  const __m512i pictureMask = _mm512_set1_epi64(0xFFFFFFFF);
  const __m512i negativeIndex = _mm512_set1_epi64(int64_t{1} << 39);  // the index byte's sign
  const __m512i unknown = _mm512_set1_epi64(kRefPictureUnknown);
  const __m512i none = _mm512_set1_epi64(kRefPictureNone);
  for (size_t g = 0; g < groups; ++g) {
    const auto* in = reinterpret_cast<const char*>(mvs) + g * kGroupBytes;
    char* out = reinterpret_cast<char*>(rows) + g * kGroupBytes;
    __m512i previous = _mm512_loadu_si512(in);
    for (int block = 0; block < 5; ++block) {
      const __m512i current = block == 0 ? previous : _mm512_loadu_si512(in + 64 * block);
      const __m512i index = _mm512_loadu_si512(kGroupTables.index[block]);
      const __m512i shift = _mm512_loadu_si512(kGroupTables.shift[block]);
      const __m512i bytes = block == 0
                                ? _mm512_maskz_permutex2var_epi8(kGroupTables.keep[0], current, index, current)
                                : _mm512_maskz_permutex2var_epi8(kGroupTables.keep[block], previous, index, current);
      // (The masked forms here and below: the plain ones start from an undefined register that
      // GCC 12 warns about as maybe uninitialized.)
      _mm512_storeu_si512(out + 64 * block, _mm512_maskz_srav_epi32(0xFFFF, bytes, shift));
      previous = current;
    }
    // The reference of each vector, as convertMotionVectorsPlain decides it.
    const __m512i flags = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), 0xFF, flagIndex, in, 8);
    __m512i ref = _mm512_and_si512(flags, pictureMask);
    ref = _mm512_mask_mov_epi64(ref, _mm512_cmpeq_epi64_mask(ref, pictureMask), unknown);
    ref = _mm512_mask_mov_epi64(ref, _mm512_test_epi64_mask(flags, negativeIndex), none);
    ref = _mm512_mask_mov_epi64(ref, _mm512_cmpge_epi64_mask(flags, _mm512_setzero_si512()), unknown);
    _mm512_storeu_si512(refs + g * kGroupVectors, ref);
  }
  return groups * kGroupVectors;
}

bool vbmiAvailable() {
  static const bool available =
      simdLevel() == SimdLevel::Avx512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
  return available;
}

}  // namespace
#endif

void convertMotionVectors(const AVMotionVector* mvs, size_t count, int32_t* rows, int64_t* refs) {
  size_t done = 0;
#ifdef ARSEG_VECTORS_VBMI
  if (vbmiAvailable()) done = convertGroupsVbmi(mvs, count, rows, refs);
#endif
  convertMotionVectorsPlain(mvs + done, count - done, rows + done * kVectorColumns, refs + done);
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
  convertMotionVectors(mvs, count, out.data(), refPictures.data());
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
