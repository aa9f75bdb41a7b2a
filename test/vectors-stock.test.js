'use strict';
// The patched libav (patches/ffmpeg/) changes no stock field: its vectors equal, row for row,
// what the system's stock libavcodec exports for the same file (test/helpers/stock-mvdump.c,
// compiled here against the system libav that source builds fall back to). The exact reference
// goes only where stock writes nothing (AVMotionVector.flags -> VideoFrame.vectorRefs).
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const test = require('ava');
const { openVideo, libavVersions } = require('../dist');
const { fixture, collect, tmpDir, meta } = require('./helpers/fixtures');

function buildDumper() {
  try {
    const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libavformat', 'libavcodec', 'libavutil'], {
      encoding: 'utf8',
    });
    const exe = path.join(tmpDir('arseg-stock-'), 'stock-mvdump');
    execFileSync(
      'cc',
      ['-O1', '-o', exe, path.join(__dirname, 'helpers', 'stock-mvdump.c'), ...flags.trim().split(/\s+/)],
      { stdio: 'pipe' },
    );
    return exe;
  } catch (err) {
    return {
      reason: String(err.stderr || err.message)
        .trim()
        .split('\n')[0],
    };
  }
}

function stockVectors(exe, file) {
  const out = execFileSync(exe, [file], { maxBuffer: 1 << 28 });
  const frames = [];
  for (let o = 0; o < out.length;) {
    const n = out.readInt32LE(o);
    o += 4;
    frames.push(new Int32Array(new Uint8Array(out.subarray(o, o + n * 40)).buffer));
    o += n * 40;
  }
  return frames;
}

const H264 = Object.keys(meta).filter((name) => meta[name].codec === 'h264');

test('patched and stock libav export the same vectors, row for row', async (t) => {
  const exe = buildDumper();
  if (typeof exe !== 'string') {
    // Setup (scripts/setup.sh) installs cc, pkg-config and the system libav's -dev packages.
    t.log(`skipped: cannot build the stock dumper against the system libav (${exe.reason})`);
    t.pass();
    return;
  }
  t.true(H264.length >= 6);
  for (const name of [...H264, 'mpeg4.mp4', 'mpeg2.mpg']) {
    const stock = stockVectors(exe, fixture(name));
    const ours = await collect(openVideo(fixture(name), { vectors: true }));
    t.is(ours.length, stock.length, name);
    ours.forEach((f, i) => t.deepEqual(Array.from(f.vectors), Array.from(stock[i]), `${name} frame ${i}`));
    if (
      libavVersions().exactReferences &&
      meta[name].refs === 1 &&
      meta[name].bframes === 0 &&
      meta[name].codec === 'h264'
    ) {
      // one reference, no B-frames: every vector predicts from the previous frame
      for (const f of ours)
        t.true(
          Array.from(f.vectorRefs).every((d) => d === 1),
          `${name} frame ${f.index}`,
        );
    }
  }
  t.truthy(fs.statSync(exe));
});
