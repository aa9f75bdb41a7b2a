#!/usr/bin/env node
'use strict';
/*
 * Cost of the motion fill (FrameOptions.motionFill, issue 13) on the street test split: every
 * test clip of each encoder configuration (python/arseg/street/variants.py) read through,
 * one decoder thread, `motion: 'accumulated'` at stride 4, the CPU time of each pass (user +
 * system, process.cpuUsage) against decoding alone:
 *
 *   node bench/motion-fill.js [--variants .data/street-variants] [--configs hevc-x265-defaults,...]
 *        [--rounds 3] [--dist dist,/other/checkout/dist] [--json]
 *
 * Rows: decoding alone; + the field with motionFill 'none'; + the field with the fill (the
 * default); + the field from the estimator forced (motionSource 'estimate'). The median of
 * `rounds` interleaved rounds is kept. Several --dist entries (a build of another checkout's
 * lib/, its addon beside it) are measured side by side: each round runs every build in turn,
 * each in a child process of its own, so that two versions of the fill compare on the same
 * machine load.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const root = path.resolve(arg('--variants', path.join(__dirname, '..', '.data', 'street-variants')));
const configs = arg('--configs', 'hevc-x265-defaults,h264-x264-defaults,h264-1ref').split(',');
const rounds = Number(arg('--rounds', '3'));
const dists = arg('--dist', path.join(__dirname, '..', 'dist'))
  .split(',')
  .map((d) => path.resolve(d));

const ROWS = [
  { name: 'decode alone', options: {} },
  { name: "+ field, motionFill 'none'", options: { motion: 'accumulated', stride: 4, motionFill: 'none' } },
  { name: '+ field with the fill (default)', options: { motion: 'accumulated', stride: 4 } },
  { name: '+ field, estimator forced', options: { motion: 'accumulated', stride: 4, motionSource: 'estimate' } },
];

function clipsOf(config) {
  const dir = path.join(root, config);
  const splitsFile = path.join(dir, 'splits.json');
  if (!fs.existsSync(splitsFile))
    throw new Error(`${splitsFile} missing: encode the variants first (python -m arseg.street.variants encode)`);
  const splits = JSON.parse(fs.readFileSync(splitsFile, 'utf8'));
  return splits.test.map((name) => path.join(dir, 'test', name, 'video.mp4'));
}

/** One pass of every row over every configuration's clips with the build at `dist`: ms of CPU. */
async function child(dist) {
  const { openVideo } = require(dist);
  const out = {};
  for (const config of configs) {
    const clips = clipsOf(config);
    out[config] = {};
    for (const row of ROWS) {
      let frames = 0;
      const before = process.cpuUsage();
      for (const clip of clips) {
        for await (const f of openVideo(clip, { threads: 1, ...row.options })) {
          void f;
          frames++;
        }
      }
      const used = process.cpuUsage(before);
      out[config][row.name] = { ms: (used.user + used.system) / 1000, frames };
    }
  }
  process.stdout.write(JSON.stringify(out));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function main() {
  const runs = dists.map(() => []);
  for (let r = 0; r < rounds; r++) {
    dists.forEach((dist, i) => {
      const text = execFileSync(process.execPath, [__filename, '--child', dist, ...args], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      runs[i].push(JSON.parse(text));
    });
  }
  const result = {};
  for (const config of configs) {
    result[config] = {};
    for (const row of ROWS) {
      result[config][row.name] = dists.map((_, i) => median(runs[i].map((run) => run[config][row.name].ms)));
    }
  }
  if (args.includes('--json')) {
    console.log(JSON.stringify({ dists, rounds, result }, null, 2));
    return;
  }
  const frames = (config) => runs[0][0][config]['decode alone'].frames;
  console.log(`${rounds} rounds, median CPU time; builds: ${dists.join(', ')}`);
  const header = ['configuration', 'row', ...dists.map((d, i) => `build ${i + 1}: ms, x decode alone`)];
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const config of configs) {
    for (const row of ROWS) {
      const cells = result[config][row.name].map((ms, i) => {
        const base = result[config]['decode alone'][i];
        return `${ms.toFixed(0)} ms, ${(ms / base).toFixed(2)}x`;
      });
      console.log(`| ${config} (${frames(config)} frames) | ${row.name} | ${cells.join(' | ')} |`);
    }
  }
}

if (args[0] === '--child') {
  child(args[1]).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main();
}
