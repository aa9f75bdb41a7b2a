#!/usr/bin/env node
'use strict';
/*
 * Bytes across the bus per frame with device 'cuda', before and after the device path (the
 * keyframe kept on the GPU, CReFF + head + labels there, only the labels back), computed from a
 * bundle's shapes at a frame size (lib/bus-bytes.ts; the device path's own share is what
 * SegmentResult.bus measures, and test/bus-bytes.test.js holds the two equal).
 *
 *   node bench/bus-bytes.js [--model models/default] [--size 960x720] [--scale S] [--interval L] [--logits] [--json]
 */
const fs = require('node:fs');
const path = require('node:path');
const { busBytes, busShapes } = require('../dist/bus-bytes');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const model = arg('--model', path.join(__dirname, '..', 'models', 'default'));
const size = /^(\d+)x(\d+)$/.exec(arg('--size', '960x720'));
if (!size) {
  console.error('--size must be WIDTHxHEIGHT');
  process.exit(2);
}
const manifest = JSON.parse(fs.readFileSync(path.join(model, 'arseg.json'), 'utf8'));
const scale = args.includes('--scale') ? Number(arg('--scale')) : undefined;
const interval = args.includes('--interval') ? Number(arg('--interval')) : undefined;
const report = busBytes(busShapes(manifest, Number(size[1]), Number(size[2]), { scale, interval }), {
  logits: args.includes('--logits'),
});

if (args.includes('--json')) {
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  process.exit(0);
}
const s = report.shapes;
const mib = (n) => (n / 2 ** 20).toFixed(2);
console.log(
  `${manifest.name ?? path.basename(model)} (${s.channels} channels, stride ${s.stride}, ${s.classes} classes) at ${s.frameWidth}x${s.frameHeight}: ` +
    `HR input ${s.hrWidth}x${s.hrHeight}, LR input ${s.lrWidth}x${s.lrHeight}, keyframe every ${s.interval}${args.includes('--logits') ? ', logits returned' : ''}`,
);
console.log(
  '| frame | before: ONNX Runtime | before: ar-seg | before total | after: ONNX Runtime | after: ar-seg | after total | after / before |',
);
console.log('|---|---|---|---|---|---|---|---|');
const both = (t) => `${mib(t.toDevice)} up, ${mib(t.toHost)} down`;
for (const [name, key] of [
  ['hr', 'hr'],
  ['lr', 'lr'],
  ['ar keyframe', 'arKeyframe'],
  ['ar fused', 'arFused'],
  [`ar (mean of ${s.interval})`, 'ar'],
]) {
  const b = report.before[key];
  const a = report.after[key];
  console.log(
    `| ${name} | ${both(b.onnxRuntime)} | ${both(b.arSeg)} | ${mib(b.total)} | ${both(a.onnxRuntime)} | ${both(a.arSeg)} | ${mib(a.total)} | ${(a.total / b.total).toFixed(2)} |`,
  );
}
console.log('(MiB per frame; "up" host to device, "down" device to host)');
