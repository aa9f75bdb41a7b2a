#!/usr/bin/env node
'use strict';
/*
 * A hash of everything motion hands out (vectors, their references, the dense fields, the
 * keyframe indices), per clip and configuration: the check that a change made to the cost of
 * motion (BENCHMARKS.md, "Cost of exact motion") left its outputs unchanged bit for bit. Run it
 * on the build before and after (and under each ARSEG_SIMD level) and compare the lines.
 *
 *   node bench/motion-hash.js [--root DIR] [--out FILE] [clip ...]
 *
 * --root DIR: the checkout whose build (DIR/dist and its addon) to run, e.g. main's worktree,
 * for a before/after pair from one script.
 *
 * Clips: the test fixtures with motion (test/fixtures/*.mp4, .h264, .ts, .mpg, .m1v, .avi,
 * .webm) and the bench clips that exist in .bench-cache/, unless given. Configurations: the
 * accumulated field at stride 8 and 4 (motionFill 'none' and the default 'estimate'), and the
 * field relative to the references at stride 8, each with vectors; the vectors alone (which
 * interlaced streams give, without motion). One line per clip and
 * configuration: "clip config frames sha256".
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const args = process.argv.slice(2);
const take = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : null;
};
const outFile = take('--out');
const buildRoot = path.resolve(take('--root') || path.join(__dirname, '..'));
const { openVideo } = require(path.join(buildRoot, 'dist'));

const root = path.join(__dirname, '..');
let clips = args;
if (clips.length === 0) {
  const fixtures = path.join(root, 'test', 'fixtures');
  clips = fs
    .readdirSync(fixtures)
    .filter((f) => /\.(mp4|h264|ts|mpg|m1v|avi|webm)$/.test(f))
    .map((f) => path.join(fixtures, f));
  const cache = path.join(root, '.bench-cache');
  if (fs.existsSync(cache))
    clips.push(
      ...fs
        .readdirSync(cache)
        .filter((f) => /^bench-.*\.mp4$/.test(f))
        .map((f) => path.join(cache, f)),
    );
}

const configs = [
  { name: 'acc8-none', options: { vectors: true, motion: 'accumulated', stride: 8, motionFill: 'none' } },
  { name: 'acc4-none', options: { vectors: true, motion: 'accumulated', stride: 4, motionFill: 'none' } },
  { name: 'acc8-fill', options: { vectors: true, motion: 'accumulated', stride: 8 } },
  { name: 'ref8', options: { vectors: true, motion: 'reference', stride: 8 } },
  { name: 'vectors', options: { vectors: true } },
];

function update(hash, typed) {
  if (!typed) {
    hash.update('-');
    return;
  }
  hash.update(`${typed.length}:`);
  hash.update(Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength));
}

async function hashClip(file, options) {
  const hash = crypto.createHash('sha256');
  let frames = 0;
  for await (const frame of openVideo(file, options)) {
    frames++;
    hash.update(`${frame.index},${frame.keyframeIndex},${frame.isKeyframe},${frame.motionSource};`);
    update(hash, frame.vectors);
    update(hash, frame.vectorRefs);
    if (frame.motion) {
      hash.update(`${frame.motion.width}x${frame.motion.height}/${frame.motion.stride};`);
      update(hash, frame.motion.data);
    } else {
      hash.update('no motion;');
    }
  }
  return { frames, digest: hash.digest('hex').slice(0, 16) };
}

(async () => {
  const lines = [];
  for (const file of clips) {
    for (const c of configs) {
      let line;
      try {
        const { frames, digest } = await hashClip(file, c.options);
        line = `${path.basename(file)} ${c.name} ${frames} ${digest}`;
      } catch (err) {
        line = `${path.basename(file)} ${c.name} error ${err.code || err.message}`;
      }
      console.log(line);
      lines.push(line);
    }
  }
  if (outFile) fs.writeFileSync(outFile, lines.join('\n') + '\n');
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
