'use strict';
// What info() says about unusual streams, and the end of a stream with no frames: a video track
// with no samples is an error (ERR_EMPTY_INPUT), not a success, and its frame rate is unknown
// (null), not the time base; the display matrix's rotation is reported (not applied).
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { ArSeg, openVideo } = require('../dist');
const { FIXTURES, fixture, tmpDir } = require('./helpers/fixtures');

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');

async function infoOf(file) {
  const reader = openVideo(file);
  try {
    return await reader.open();
  } finally {
    reader.close();
  }
}

test('a video track with no frames: fps null, and reading it ends in ERR_EMPTY_INPUT', async (t) => {
  const info = await infoOf(fixture('zero-frames.mp4'));
  t.is(info.codec, 'h264');
  t.is(info.fps, null, 'not the time base (12800) as a frame rate');
  const frames = [];
  const err = await t.throwsAsync(async () => {
    for await (const f of openVideo(fixture('zero-frames.mp4'))) frames.push(f);
  });
  t.is(err.code, 'ERR_EMPTY_INPUT');
  t.is(err.framesDecoded, 0);
  t.regex(err.message, /has a video stream with no frames/);
  t.is(frames.length, 0);
});

test('no frames in the CLI and the pipeline: exit 3 and ERR_EMPTY_INPUT, not success', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'mvs', fixture('zero-frames.mp4'), '--json'], { encoding: 'utf8' });
  t.is(r.status, 3, r.stdout + r.stderr);
  t.is(JSON.parse(r.stdout).error.code, 'ERR_EMPTY_INPUT');
  const out = path.join(tmpDir('arseg-meta-'), 'out');
  const s = spawnSync(
    process.execPath,
    [CLI, 'segment', fixture('zero-frames.mp4'), '--model', BUNDLE, '--out', out, '--json'],
    { encoding: 'utf8' },
  );
  t.is(s.status, 3, s.stdout + s.stderr);
  t.is(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).error.code, 'ERR_EMPTY_INPUT');
  const seg = await ArSeg.load(BUNDLE);
  const err = await t.throwsAsync(async () => {
    for await (const _ of seg.segment(fixture('zero-frames.mp4')));
  });
  t.is(err.code, 'ERR_EMPTY_INPUT');
  await seg.close();
});

test('ordinary streams keep their frame rate', async (t) => {
  t.is((await infoOf(fixture('translate-p.mp4'))).fps, 25);
  t.is((await infoOf(fixture('translate-p.ts'))).fps, 25);
  t.is((await infoOf(fixture('mpeg2.mpg'))).fps, 25);
});

/** rotated-90.mp4 with its track header's display matrix replaced by a rotation of `degrees`. */
function withMatrix(degrees) {
  const bytes = Buffer.from(fs.readFileSync(fixture('rotated-90.mp4')));
  const at = bytes.indexOf('tkhd');
  if (at < 0 || bytes[at + 4] !== 0) throw new Error('expected a version-0 tkhd');
  const matrix = 44; // from the type: version/flags, times, track id, duration, layer, volume (ISO 14496-12)
  const one = 0x10000;
  const [cos, sin] = [Math.round(Math.cos((degrees * Math.PI) / 180)), Math.round(Math.sin((degrees * Math.PI) / 180))];
  // counter-clockwise by `degrees`, as av_display_rotation_get reads it: [a b u; c d v; x y w]
  const values = [cos * one, -sin * one, 0, sin * one, cos * one, 0, 0, 0, 0x40000000];
  values.forEach((v, i) => bytes.writeInt32BE(v, at + matrix + 4 * i));
  const file = path.join(tmpDir('arseg-meta-'), `rotated-${degrees}.mp4`);
  fs.writeFileSync(file, bytes);
  return file;
}

test('rotation: the display matrix is reported in info(), the frames stay as decoded', async (t) => {
  const info = await infoOf(fixture('rotated-90.mp4'));
  t.is(info.rotation, 90); // ffprobe: rotation=90
  t.deepEqual([info.width, info.height], [64, 48]);
  const frames = [];
  for await (const f of openVideo(fixture('rotated-90.mp4'))) frames.push(f);
  t.deepEqual([frames[0].width, frames[0].height], [64, 48]);
  t.is((await infoOf(fixture('translate-p.mp4'))).rotation, 0);
  for (const degrees of [0, 90, 180, 270]) t.is((await infoOf(withMatrix(degrees))).rotation, degrees, `${degrees}`);
});
