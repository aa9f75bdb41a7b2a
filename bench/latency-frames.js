#!/usr/bin/env node
'use strict';
/*
 * Where the slow frames of a bench/latency.js run come from (issue 14): reads its --json output
 * and prints, per configuration, the frames that ran while a keyframe was being encoded (the
 * asynchronous schedule) against the others, each keyframe's encoding window (from its arrival
 * to the start of the first frame that used it), and the five slowest frames with their GOP
 * position, the keyframe they used, their wait and their stage times.
 *
 *   node bench/latency-frames.js RUN.json
 */
const d = require(require('node:path').resolve(process.argv[2]));
const GOP = 12;
for (const run of d.perFrame) {
  const fr = run.frames.filter((f) => f.index >= GOP);
  const all = run.frames;
  const med = [...fr].map((f) => f.latency).sort((a, b) => a - b)[Math.ceil(fr.length / 2) - 1];
  // keyframe encoding windows (async): from keyframe K's arrival to the start of the first frame using K
  const arrival = new Map(all.map((f) => [f.index, f.at - f.latency]));
  const windows = [];
  if (run.schedule.startsWith('async'))
    for (let k = 0; k < 1000; k += GOP) {
      if (!arrival.has(k)) break;
      const first = all.find((f) => f.usedKeyframe === k);
      windows.push([k, arrival.get(k), first ? first.at - first.total : Infinity]);
    }
  const busy = (f) => windows.filter(([, a, b]) => f.at - f.total < b && f.at > a).map(([k]) => k);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const inK = fr.filter((f) => busy(f).length),
    outK = fr.filter((f) => !busy(f).length);
  console.log(
    `\n${run.source} ${run.schedule} drop ${run.drop} @ ${run.rate.toFixed(3)} fps: median ${med.toFixed(0)} ms; frames beside a keyframe encoding ${inK.length}: mean total ${mean(inK.map((f) => f.total)).toFixed(0)} ms (lr ${mean(inK.map((f) => f.lrEncoder)).toFixed(0)}), others ${outK.length}: ${mean(outK.map((f) => f.total)).toFixed(0)} ms (lr ${mean(outK.map((f) => f.lrEncoder)).toFixed(0)})`,
  );
  console.log('  windows', windows.map(([k, a, b]) => `K${k}: ${((b - a) / 1000).toFixed(1)} s`).join(', '));
  const top = [...fr].sort((a, b) => b.latency - a.latency).slice(0, 5);
  for (const f of top)
    console.log(
      `  #${f.index} (gop pos ${f.index % GOP}) ${f.branch} kf ${f.keyframe} used ${f.usedKeyframe} d ${f.distance}: latency ${f.latency.toFixed(0)} = queued ${f.queued.toFixed(0)} + own ${f.total.toFixed(0)} (hr ${f.hrEncoder.toFixed(0)} lr ${f.lrEncoder.toFixed(0)} creff ${f.creff.toFixed(0)} kfwait ${f.keyframeWait.toFixed(0)}) decodeLag ${f.decodeLag.toFixed(0)} beside K ${busy(f)}`,
    );
}
