'use strict';
/*
 * Benchmark input: a 1280x720, 25 fps, 240-frame H.264 clip of the fixture
 * texture translating by d = (3, 1) px/frame (current frame at p matches the
 * previous frame at p + d; see test/fixtures/README.md), x264 gop 12, no
 * B-frames, 1 reference, crf 23, preset veryfast.
 *
 *   const { ensureBenchClip } = require('./clip');
 *   const file = ensureBenchClip(dir); // synchronous; renders only if missing
 *
 * Rendering uses render.js's precomputed path: the texture is evaluated once
 * on the integer lattice covering all frames (~2000x960 samples) and each
 * frame is a crop (offsets are integer here, so frames are exact).
 * Takes a few seconds (mostly x264). Also runnable: `node bench/clip.js [dir]`.
 */

const fs = require('fs');
const os = require('os');
const path = require('path');
const { renderClipSync, x264Args } = require('../test/fixtures/render');

const BENCH_CLIP = Object.freeze({
  name: 'bench-1280x720-240f-tx3-ty1.mp4',
  width: 1280,
  height: 720,
  fps: 25,
  frames: 240,
  gop: 12,
  bframes: 0,
  refs: 1,
  crf: 23,
  motion: Object.freeze({ type: 'translate', dx: 3, dy: 1 }),
});

function benchClipOptions(out, c = BENCH_CLIP) {
  const threads = Math.max(1, Math.min(os.cpus().length, 8));
  if (c.codec === 'hevc') {
    // x265's defaults (B-pyramid, open GOP, 3 references, wavefronts) at a fixed GOP
    return {
      width: c.width,
      height: c.height,
      frames: c.frames,
      fps: c.fps,
      motion: { ...c.motion },
      out,
      precompute: true,
      encoder: [
        '-c:v',
        'libx265',
        '-preset',
        'veryfast',
        '-crf',
        String(c.crf),
        '-pix_fmt',
        'yuv420p',
        '-tag:v',
        'hvc1',
        '-x265-params',
        `log-level=error:keyint=${c.gop}:min-keyint=${c.gop}:scenecut=0:pools=${threads}`,
      ],
    };
  }
  return {
    width: c.width,
    height: c.height,
    frames: c.frames,
    fps: c.fps,
    motion: { ...c.motion },
    out,
    precompute: true,
    encoder: x264Args({
      gop: c.gop,
      bframes: c.bframes,
      refs: c.refs,
      crf: c.crf,
      preset: 'veryfast',
      threads: Math.max(1, Math.min(os.cpus().length, 8)),
    }),
  };
}

/**
 * Returns the path of the bench clip inside `dir` (default:
 * $TMPDIR/ar-seg-native-bench, so nothing untracked lands in the repo),
 * rendering it first if it does not exist. Synchronous.
 */
function ensureBenchClip(dir = path.join(os.tmpdir(), 'ar-seg-native-bench'), clip = BENCH_CLIP) {
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, clip.name);
  if (fs.existsSync(out) && fs.statSync(out).size > 0) return out;
  renderClipSync(benchClipOptions(out, clip));
  return out;
}

/** The same content in HEVC, x265 veryfast with its defaults (B-frames, open GOP), crf 26. */
const BENCH_CLIP_HEVC = Object.freeze({
  ...BENCH_CLIP,
  name: 'bench-1280x720-240f-tx3-ty1-x265.mp4',
  codec: 'hevc',
  bframes: 'default',
  refs: 3,
  crf: 26,
});

/** The CamVid-size clip of the pipeline benchmarks: 960x720, 24 frames (two GOPs of 12). */
const CAMVID_CLIP = Object.freeze({
  ...BENCH_CLIP,
  name: 'bench-960x720-24f-tx3-ty1.mp4',
  width: 960,
  height: 720,
  frames: 24,
});

module.exports = { ensureBenchClip, BENCH_CLIP, BENCH_CLIP_HEVC, CAMVID_CLIP };

if (require.main === module) {
  const t0 = Date.now();
  const file = ensureBenchClip(process.argv[2]);
  console.log(`${file} (${fs.statSync(file).size} bytes, ${Date.now() - t0} ms)`);
}
