'use strict';
// A frame the decoder drops (damage it cannot conceal) must not shift the numbers of the frames
// after it: frame.index stays the frame's number in the stream, files are named by it, and the
// dropped numbers are reported (stats().framesDropped, summary.json's droppedFrames). The damaged
// clip is mpeg4.mp4 (MPEG-4 Part 2, 24 frames at 25 fps) with frame 5's picture header
// overwritten, so that the decoder finds no picture in that packet.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { openVideo } = require('../dist');
const { FIXTURES, fixture, tmpDir } = require('./helpers/fixtures');

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const dir = tmpDir('arseg-dropped-');
const DAMAGED = path.join(dir, 'mpeg4-frame5-damaged.mp4');
{
  const bytes = Buffer.from(fs.readFileSync(fixture('mpeg4.mp4')));
  const vop = Buffer.from([0, 0, 1, 0xb6]); // VOP start code: one per frame, in order
  let at = -1;
  for (let i = 0; i <= 5; i++) at = bytes.indexOf(vop, at + 1);
  bytes.fill(0xff, at, at + 8);
  fs.writeFileSync(DAMAGED, bytes);
}

async function read(file) {
  const reader = openVideo(file);
  const frames = [];
  for await (const f of reader) frames.push(f);
  return { frames, stats: reader.stats() };
}

test("the reader leaves the dropped frame's number unused and counts it; the stream ends normally", async (t) => {
  const { frames, stats } = await read(DAMAGED);
  const indices = frames.map((f) => f.index);
  t.deepEqual(indices, [0, 1, 2, 3, 4, ...Array.from({ length: 18 }, (_, i) => i + 6)]);
  for (const f of frames) t.true(Math.abs(f.pts - f.index * 0.04) < 1e-9, `frame ${f.index} at ${f.pts}`);
  t.is(stats.framesDropped, 1);
  t.is(stats.framesDelivered, 23);
  // the undamaged clip: nothing dropped
  const clean = await read(fixture('mpeg4.mp4'));
  t.deepEqual(
    clean.frames.map((f) => f.index),
    Array.from({ length: 24 }, (_, i) => i),
  );
  t.is(clean.stats.framesDropped, 0);
});

test('ar-seg segment names files by frame number and lists the dropped frame in summary.json', (t) => {
  const out = path.join(dir, 'seg');
  const r = spawnSync(
    process.execPath,
    [CLI, 'segment', DAMAGED, '--model', BUNDLE, '--out', out, '--json', '--no-flops'],
    { encoding: 'utf8' },
  );
  t.is(r.status, 0, r.stderr);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
  t.deepEqual(summary.droppedFrames, [5]);
  t.is(summary.frames, 23);
  t.deepEqual(JSON.parse(r.stdout).droppedFrames, [5]);
  const files = fs.readdirSync(path.join(out, 'labels')).sort();
  t.is(files.length, 23);
  t.false(files.includes('000005.png'));
  t.true(files.includes('000006.png') && files.includes('000023.png'));
});

test("ar-seg mvs keeps frame_types.txt aligned: '?' on the dropped frame's line", (t) => {
  const dump = path.join(dir, 'mvs');
  const r = spawnSync(process.execPath, [CLI, 'mvs', DAMAGED, '--dump', dump, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout).droppedFrames, [5]);
  const lines = fs.readFileSync(path.join(dump, 'frame_types.txt'), 'utf8').trim().split('\n');
  t.is(lines.length, 24);
  t.is(lines[5], '?');
  t.is(lines[0], 'I');
  t.false(fs.existsSync(path.join(dump, 'motion_vectors', 'mvs-5.npy')));
  t.true(fs.existsSync(path.join(dump, 'motion_vectors', 'mvs-6.npy')));
});
