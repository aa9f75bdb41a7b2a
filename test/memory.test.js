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
    tensors: [
      { width: 64, height: 48 },
      { width: 32, height: 24 },
    ],
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

test.serial('live runs closed part-way, and ArSegs closed during them, free everything', async (t) => {
  const { ArSeg, PacketQueue } = require('../dist');
  const { splitAccessUnits } = require('./helpers/annexb');
  const bundle = path.join(__dirname, 'fixtures', 'bundles', 'tiny-psp18');
  const aus = splitAccessUnits(fs.readFileSync(fixture('translate-p.h264')));
  const once = async () => {
    const seg = await ArSeg.load(bundle);
    // a run broken out of, with a keyframe encoding on its thread
    const q1 = new PacketQueue();
    for (const data of aus.slice(0, 14)) q1.push({ data });
    for await (const r of seg.segment(q1, { keyframeLatency: 'async', drop: 'latest' })) if (r.index >= 1) break;
    // a run waiting for packets when the ArSeg closes
    const q2 = new PacketQueue();
    for (const data of aus.slice(0, 3)) q2.push({ data });
    const it = seg.segment(q2, { keyframeLatency: 'async' })[Symbol.asyncIterator]();
    await it.next();
    const pending = it.next();
    await seg.close();
    await pending.catch(() => undefined);
  };
  // What a leak would leave is counted exactly: a worker thread not ended stays in
  // /proc/self/task. RSS only backs that up, with a wide bound: the allocator settles over the
  // first cycles (about 30 MiB) and then wanders by 10-20 MiB from cycle to cycle (its arenas,
  // ONNX Runtime's pools), while a leaked worker, with its V8 heap and sessions, would add more
  // than 10 MiB a cycle, 160 MiB over the 16 measured.
  const threads = () => fs.readdirSync('/proc/self/task').length;
  const settledThreads = async (want) => {
    // a closed worker's OS thread ends a moment after close() resolves
    for (let i = 0; i < 50 && threads() !== want; i++) await new Promise((r) => setTimeout(r, 20));
    return threads();
  };
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  for (let i = 0; i < 6; i++) await once();
  await new Promise((r) => setTimeout(r, 500));
  const baseThreads = threads();
  const samples = [];
  for (let i = 0; i < 16; i++) {
    await once();
    t.is(await settledThreads(baseThreads), baseThreads, `threads after cycle ${i + 7}`);
    samples.push(rss());
  }
  const growth = (median(samples.slice(-5)) - median(samples.slice(0, 5))) / MiB;
  t.log(`threads: ${baseThreads}; rss growth over 16 load / live run / close cycles: ${growth.toFixed(1)} MiB`);
  t.true(growth < 64, `memory grew by ${growth.toFixed(1)} MiB`);
});
