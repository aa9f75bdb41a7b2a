// Turns the references the video decoder names into display-order distances, the form the
// composer and JS use (DecodedFrame::vectorRefs, compositionRefs).
//
// The patched libav (patches/ffmpeg/) names each vector's reference picture by its
// decode-order number, and gives every output frame its own. Frames come out of the decoder
// in display order, so the distance to a past reference is known at once, and the distance to
// a future one (a B-frame predicting from a picture shown later) as soon as that picture comes
// out: frames are held until then (a few frames, the decoder's reorder depth). Nothing here
// depends on POC values, so POC steps, POC resets (IDR, MMCO5), open GOPs and frame threading
// make no difference.
//
// Where the bitstream names no reference (a libav without the patch) composition falls back
// to the nearest-anchor assumption: a vector with source < 0 refers to the nearest I/P
// picture before the frame, one with source > 0 to the nearest after it. For MPEG-1/2/4 Part 2
// and H.263 that assumption is the codec's rule, hence exact (`nearestAnchorsAreExact`).
//
// Free of libav: the frames' vectors are rows of the stock 10-column layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "../video/frame_request.h"

namespace arseg {

class ReferenceResolver {
 public:
  // `fillsVectorRefs`: whether frames get vectorRefs (the reader hands the vectors out); without,
  // only compositionRefs, which motion composition reads, are filled.
  explicit ReferenceResolver(bool nearestAnchorsAreExact, bool fillsVectorRefs = true)
      : nearestAnchorsAreExact_(nearestAnchorsAreExact), fillsVectorRefs_(fillsVectorRefs) {}

  // Takes frames in display order: frame.vectors (N rows), `decodeNumber` (the frame's own
  // decode-order number, -1 when unknown) and `refPictures` (N entries: the reference's
  // decode-order number, or kRefPictureUnknown / kRefPictureNone of motion_vectors.h, here -1
  // and -2). Appends the frames whose references are resolved, in display order, with
  // compositionRefs filled, and vectorRefs when the resolver fills them (else left empty).
  void push(DecodedFrame frame, int64_t decodeNumber, std::vector<int64_t> refPictures,
            std::vector<DecodedFrame>& ready);
  // End of stream: every held frame comes out; references never seen become unknown.
  void flush(std::vector<DecodedFrame>& ready);
  size_t pending() const { return pending_.size(); }
  // Hands back a frame's compositionRefs once used: the next frame resolved fills them
  // instead of allocating its own.
  void recycle(std::vector<int32_t>&& compositionRefs) {
    if (compositionRefs.capacity() > spareRefs_.capacity()) spareRefs_.swap(compositionRefs);
  }

  // A frame waits at most this many later frames for a reference picture to come out (a
  // picture the decoder never outputs, e.g. one it made up for a missing reference).
  static constexpr int64_t kMaxWait = 32;

 private:
  struct Pending {
    DecodedFrame frame;
    std::vector<int64_t> refPictures;
    std::vector<int64_t> pictures;  // the distinct decode numbers among refPictures
    bool needsNextAnchor;           // a vector without a named reference points ahead
    int64_t previousAnchor;         // display index of the nearest I/P frame before it, -1 if none
    int64_t arrival;                // frames pushed before it
  };

  bool resolvable(const Pending& p, bool atEnd) const;
  void resolve(Pending& p, bool atEnd);
  void release(bool atEnd, std::vector<DecodedFrame>& ready);

  bool nearestAnchorsAreExact_;
  bool fillsVectorRefs_;
  std::deque<Pending> pending_;
  std::unordered_map<int64_t, int64_t> displayIndexOf_;  // decode number -> display index
  std::deque<int64_t> mapped_;                           // decode numbers, oldest first
  std::vector<int32_t> spareRefs_;                       // recycle()
  std::vector<int64_t> anchors_;                         // display indices of I/P frames
  int64_t lastAnchor_ = -1;
  int64_t arrivals_ = 0;
};

}  // namespace arseg
