#!/usr/bin/env node
'use strict';
/*
 * End to end over encoder configurations: the default model on the street test split, the same
 * rendered frames encoded in each configuration at the same bitrate and GOP 12
 * (python/arseg/street/variants.py), through the evaluation protocol (lib/evaluate.ts): HR, LR
 * and AR mIoU (mean over d = 0..11) and AR's share of the HR-LR gap, (AR - LR) / (HR - LR).
 *
 *   cd python && /usr/bin/python3 -m arseg.street.variants render     # once (~1.5 min)
 *   cd python && /usr/bin/python3 -m arseg.street.variants encode     # every configuration
 *   node bench/motion-configs.js [--variants .data/street-variants] [--model models/default]
 *        [--configs h264-1ref,...] [--threads N] [--json FILE]
 *   node bench/motion-configs.js --merge a.json,b.json     # one table from several runs
 *
 * A second table gives AR's mIoU per distance to the keyframe for every row.
 *
 * Rows: each configuration with the motion the reader picks for it ('auto': the bitstream's
 * vectors where the codec exports them, else estimated), then, for the configurations whose
 * codec has vectors, the same stream with the estimator forced (motionSource 'estimate').
 * --estimate-only h264-1ref,... limits the forced rows (default: every configuration);
 * --forced-only leaves out the 'auto' rows. --no-fill adds, for the configurations with vectors,
 * a row with motionFill 'none' (the bitstream's motion as it is: intra cells at zero motion to
 * the fallback frame, future-only cells through the later picture; FrameOptions.motionFill). --json writes the rows after each one, so that
 * configurations can run in separate processes (--threads 1 each) and --merge joins them.
 * --hr-lr-from a.json[,b.json] takes HR and LR from those files' rows and runs only AR: for a bundle that
 * differs from a.json's only in CReFF (python/arseg/creff_tune.py), with the same data (a
 * configuration a.json has no row for yet runs every mode).
 */
const fs = require('node:fs');
const path = require('node:path');
const { ArSeg, evaluate, openVideo } = require('../dist');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const root = path.resolve(arg('--variants', path.join(__dirname, '..', '.data', 'street-variants')));
const model = path.resolve(arg('--model', path.join(__dirname, '..', 'models', 'default')));
const jsonOut = arg('--json', null);
const CONFIGS = ['h264-1ref', 'h264-x264-defaults', 'h264-4ref', 'hevc-x265-defaults', 'vp9'];
const configs = arg('--configs', CONFIGS.join(',')).split(',');
const forced = arg('--estimate-only', configs.join(',')).split(',');
// --hr-lr-from FILE: HR and LR from the 'auto' rows of an earlier --json run (they do not depend on
// CReFF or on the motion), so that another model's CReFF (same encoders) costs only its AR pass.
// The file is read again before each configuration, so that it may be a run still in progress.
const hrLrFrom = arg('--hr-lr-from', null);
const hrLrRows = () =>
  (hrLrFrom ?? '')
    .split(',')
    .filter((file) => file && fs.existsSync(file))
    .flatMap((file) => JSON.parse(fs.readFileSync(file, 'utf8')));

/** Picture types and where the motion comes from, read from the first clip of a dataset. */
async function describe(dir, motionSource) {
  const splits = JSON.parse(fs.readFileSync(path.join(dir, 'splits.json'), 'utf8'));
  const clip = path.join(dir, 'test', splits.test[0], 'video.mp4');
  const reader = openVideo(clip, { motion: 'accumulated', motionSource });
  const info = await reader.open();
  let types = '';
  for await (const f of reader) types += f.pictType;
  return { codec: info.codec, motion: info.motionSource, gop: types.slice(0, 12) };
}

/** The table, with each row's share against h264-1ref's (bitstream motion). */
function printTable(rows) {
  const base = rows.find((r) => r.config === 'h264-1ref' && r.motionSource === 'auto');
  const pct = (v) => (100 * v).toFixed(1);
  console.log(`model ${path.basename(model)}, ${root}, test split, keyframe every 12 frames, LR scale 0.5`);
  console.log(
    '| configuration | codec, GOP (display order) | motion | kbit/s | HR | LR | AR | AR at d=11 | AR share of the HR-LR gap | vs h264-1ref |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.error) {
      console.log(`| ${r.config} | ${r.codec}, ${r.gop} | ${r.motion} | | ${r.error} | | | | | |`);
      continue;
    }
    const delta = base
      ? `${100 * (r.share - base.share) >= 0 ? '+' : ''}${(100 * (r.share - base.share)).toFixed(1)} pt`
      : '';
    console.log(
      `| ${r.config} | ${r.codec}, ${r.gop} | ${r.motion} | ${r.kbps.toFixed(0)} | ${pct(r.hr)} | ${pct(r.lr)} | ${pct(r.ar)} | ${pct(r.ard11)} | ${pct(r.share)}% | ${delta} |`,
    );
  }
  // AR per distance: where along the GOP a configuration loses against another.
  const perD = rows.filter((r) => r.arPerDistance);
  if (perD.length === 0) return;
  console.log('\nAR mIoU per distance to the keyframe:\n');
  console.log(`| configuration | motion | ${perD[0].arPerDistance.map((_, d) => `d=${d}`).join(' | ')} |`);
  console.log(`|---|---|${perD[0].arPerDistance.map(() => '---:').join('|')}|`);
  for (const r of perD) console.log(`| ${r.config} | ${r.motion} | ${r.arPerDistance.map(pct).join(' | ')} |`);
}

(async () => {
  if (args.includes('--merge')) {
    const rows = arg('--merge', '')
      .split(',')
      .flatMap((file) => JSON.parse(fs.readFileSync(file, 'utf8')));
    const kind = (r) => (r.motionSource !== 'auto' ? 2 : r.motionFill === 'none' ? 1 : 0);
    const order = (r) => [...CONFIGS, 'x'].indexOf(r.config) + kind(r) * (CONFIGS.length + 1);
    printTable(rows.sort((a, b) => order(a) - order(b)));
    return;
  }
  const runs = [];
  if (!args.includes('--forced-only')) for (const config of configs) runs.push({ config, motionSource: 'auto' });
  if (args.includes('--no-fill'))
    for (const config of configs) if (config !== 'vp9') runs.push({ config, motionSource: 'auto', motionFill: 'none' });
  for (const config of configs)
    if (forced.includes(config) && config !== 'vp9') runs.push({ config, motionSource: 'estimate' });
  const threads = arg('--threads', null);
  const seg = await ArSeg.load(model, threads ? { threads: Number(threads) } : {});
  const rows = [];
  for (const { config, motionSource, motionFill } of runs) {
    const dir = path.join(root, config);
    if (!fs.existsSync(path.join(dir, 'splits.json'))) {
      console.error(`${config}: no dataset at ${dir} (python3 -m arseg.street.variants encode)`);
      continue;
    }
    const started = Date.now();
    const d = await describe(dir, motionSource);
    let report;
    try {
      // HR and LR do not use motion: a forced-estimator row takes them from the 'auto' row.
      const isAuto = (r) => r.config === config && r.motionSource === 'auto' && !r.motionFill && !r.error;
      const auto = rows.find(isAuto) ?? hrLrRows().find(isAuto);
      const modes = (motionSource === 'estimate' || motionFill || hrLrFrom) && auto ? ['ar'] : ['hr', 'lr', 'ar'];
      report = await evaluate([dir], {
        model: seg,
        split: 'test',
        motionSource,
        modes,
        ...(motionFill ? { motionFill } : {}),
      });
      if (modes.length === 1) for (const m of ['hr', 'lr']) report.modes[m] = { mean: auto[m] };
    } catch (err) {
      console.error(`${config} (${motionSource}): ${err.code}: ${err.message}`);
      rows.push({ config, motionSource, motionFill, ...d, error: `${err.code}` });
      continue;
    }
    const [hr, lr, ar] = ['hr', 'lr', 'ar'].map((m) => report.modes[m].mean);
    const share = (ar - lr) / (hr - lr);
    const kbps = (() => {
      let bytes = 0;
      let frames = 0;
      for (const c of report.clips) {
        bytes += fs.statSync(c.video).size;
        frames += c.frames;
      }
      return (8 * bytes * 30) / frames / 1000;
    })();
    rows.push({
      config,
      motionSource,
      motionFill,
      ...d,
      ...(motionFill ? { motion: `${d.motion}, motionFill ${motionFill}` } : {}),
      ...(motionSource === 'estimate' ? { motion: `${d.motion} (forced)` } : {}),
      hr,
      lr,
      ar,
      share,
      kbps,
      ard11: report.modes.ar.perDistance[11],
      arPerDistance: report.modes.ar.perDistance,
      frames: report.modes.ar.framesTotal,
    });
    console.error(
      `${config} (${motionSource}${motionFill ? `, fill ${motionFill}` : ''}): ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
    if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
  }
  await seg.close();
  printTable(rows);
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
