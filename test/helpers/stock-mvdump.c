/*
 * Dumps the motion vectors that a stock libav (the system's: Debian's libavcodec, without
 * ar-seg-native's patches) exports for a file, for test/vectors-stock.test.js: per frame in
 * output order, an int32 count N, then N rows of 10 int32 in the mv-extractor layout (source,
 * w, h, src_x, src_y, dst_x, dst_y, motion_x, motion_y, motion_scale), on stdout.
 *
 *   cc stock-mvdump.c $(pkg-config --cflags --libs libavformat libavcodec libavutil)
 */
#include <stdint.h>
#include <stdio.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/motion_vector.h>

static void emit(const AVFrame *frame) {
  const AVFrameSideData *sd = av_frame_get_side_data(frame, AV_FRAME_DATA_MOTION_VECTORS);
  const int32_t n = sd ? (int32_t)(sd->size / sizeof(AVMotionVector)) : 0;
  fwrite(&n, sizeof(n), 1, stdout);
  for (int32_t i = 0; i < n; i++) {
    const AVMotionVector *mv = (const AVMotionVector *)sd->data + i;
    const int32_t row[10] = {mv->source, mv->w, mv->h, mv->src_x, mv->src_y,
                             mv->dst_x, mv->dst_y, mv->motion_x, mv->motion_y, mv->motion_scale};
    fwrite(row, sizeof(row), 1, stdout);
  }
}

int main(int argc, char **argv) {
  AVFormatContext *fmt = NULL;
  if (argc != 2 || avformat_open_input(&fmt, argv[1], NULL, NULL) < 0) return 2;
  if (avformat_find_stream_info(fmt, NULL) < 0) return 2;
  const int stream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
  if (stream < 0) return 2;
  const AVCodec *codec = avcodec_find_decoder(fmt->streams[stream]->codecpar->codec_id);
  AVCodecContext *ctx = avcodec_alloc_context3(codec);
  avcodec_parameters_to_context(ctx, fmt->streams[stream]->codecpar);
  ctx->export_side_data |= AV_CODEC_EXPORT_DATA_MVS;
  ctx->thread_count = 1;
  if (avcodec_open2(ctx, codec, NULL) < 0) return 2;
  AVPacket *pkt = av_packet_alloc();
  AVFrame *frame = av_frame_alloc();
  for (;;) {
    const int got = av_read_frame(fmt, pkt);
    if (got >= 0 && pkt->stream_index != stream) {
      av_packet_unref(pkt);
      continue;
    }
    avcodec_send_packet(ctx, got >= 0 ? pkt : NULL);
    av_packet_unref(pkt);
    while (avcodec_receive_frame(ctx, frame) == 0) {
      emit(frame);
      av_frame_unref(frame);
    }
    if (got < 0) break;
  }
  av_frame_free(&frame);
  av_packet_free(&pkt);
  avcodec_free_context(&ctx);
  avformat_close_input(&fmt);
  return 0;
}
