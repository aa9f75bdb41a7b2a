'use strict';
// Long streams keep memory flat; closing early frees everything.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { openVideo } = require('../dist');
const { fixture, tmpDir } = require('./helpers/fixtures');

const MiB = 1024 * 1024;

function rss() {
  if (global.gc) global.gc();
  return process.memoryUsage().rss;
}

test.serial('3000 frames with pixels, tensors, vectors and motion: memory stays flat', async (t) => {
  // tiny.h264 starts with SPS/PPS + IDR, so copies of it concatenate into one long valid stream.
  const tiny = fs.readFileSync(fixture('tiny.h264'));
  const file = path.join(tmpDir('arseg-long-'), 'long.h264');
  fs.writeFileSync(file, Buffer.concat(Array(125).fill(tiny)));
  const reader = openVideo(file, {
    rgb: true,
    tensors: [{ width: 64, height: 48 }, { width: 32, height: 24 }],
    vectors: true,
    motion: 'accumulated',
    stride: 4,
  });
  let frames = 0;
  let base = 0;
  let peak = 0;
  for await (const f of reader) {
    frames++;
    if (frames === 500) base = rss();
    if (frames > 500 && frames % 250 === 0) peak = Math.max(peak, rss());
    t.is(f.index, frames - 1);
  }
  t.is(frames, 3000);
  const growth = (peak - base) / MiB;
  t.log(`rss at frame 500: ${(base / MiB).toFixed(1)} MiB, growth to the end: ${growth.toFixed(1)} MiB`);
  t.true(growth < 24, `memory grew by ${growth.toFixed(1)} MiB over 2500 frames`);
});

test.serial('opening, reading a little and closing 300 times frees everything', async (t) => {
  const once = async () => {
    const reader = openVideo(fixture('translate-b.mp4'), { rgb: true, motion: 'accumulated', ahead: 4 });
    await reader.read();
    await reader.read();
    reader.close();
  };
  for (let i = 0; i < 30; i++) await once();
  const base = rss();
  for (let i = 0; i < 300; i++) await once();
  await new Promise((r) => setTimeout(r, 100));
  const growth = (rss() - base) / MiB;
  t.log(`growth over 300 open/close cycles: ${growth.toFixed(1)} MiB`);
  t.true(growth < 24, `memory grew by ${growth.toFixed(1)} MiB`);
});
