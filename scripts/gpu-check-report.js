#!/usr/bin/env node
// The report of scripts/gpu-check.sh: reads what its steps left in a directory (doctor.json,
// tests.log with tests.status, creff.json, pipeline.json, steps.tsv) and writes gpu-check.md and
// gpu-check.json next to them. Each input may be missing (a step that failed or was cut short
// by its time limit): the report then says so instead of a figure.
//
//   node scripts/gpu-check-report.js RAW_DIR OUT_DIR
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/**
 * The tests' outcome from ava's default reporter output: each test line (✔ passed, ✘ failed,
 * - skipped) and the closing counts.
 */
function parseAva(log) {
  if (log === null) return null;
  // eslint-disable-next-line no-control-regex -- ESC starts the colour codes stripped here
  const clean = log.replace(/\u001b\[[0-9;]*m/g, '');
  const tests = [];
  for (const line of clean.split('\n')) {
    let m;
    if ((m = /^\s*✔ (.*?)(?: \(\d+(?:\.\d+)?m?s\))?$/.exec(line))) tests.push({ title: m[1], status: 'passed' });
    else if ((m = /^\s*✘ (?:\[fail\]: )?(.*)$/.exec(line))) tests.push({ title: m[1], status: 'failed' });
    else if ((m = /^\s*- \[skip\] (.*)$/.exec(line))) tests.push({ title: m[1], status: 'skipped' });
  }
  const count = (what) => {
    const m = new RegExp(`^\\s*(\\d+) tests? ${what}`, 'm').exec(clean);
    return m ? Number(m[1]) : 0;
  };
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), tests };
}

/** steps.tsv: "name<TAB>exit status<TAB>seconds" per step. */
function parseSteps(text) {
  if (!text) return [];
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name, status, seconds] = line.split('\t');
      return { name, status: Number(status), seconds: Number(seconds), timedOut: Number(status) === 124 };
    });
}

function buildReport(raw) {
  const doctor = readJson(path.join(raw, 'doctor.json'));
  const tests = parseAva(readText(path.join(raw, 'tests.log')));
  const creff = readJson(path.join(raw, 'creff.json'));
  const pipeline = readJson(path.join(raw, 'pipeline.json'));
  const steps = parseSteps(readText(path.join(raw, 'steps.tsv')));
  const gpu =
    doctor && doctor.gpu && doctor.gpu.driver && doctor.gpu.driver.devices[0] ? doctor.gpu.driver.devices[0] : null;
  const failedSteps = steps.filter((s) => s.status !== 0);
  return {
    date: new Date().toISOString(),
    machine: {
      gpu,
      driver: doctor && doctor.gpu && doctor.gpu.driver ? doctor.gpu.driver.version : null,
      cudaKernels: doctor ? doctor.cudaKernels : null,
      cpu: doctor ? doctor.cpu : null,
      addon: doctor ? { kind: doctor.addon.kind, file: doctor.addon.file } : null,
      onnxRuntime: doctor ? doctor.onnxRuntime : null,
    },
    devices: doctor ? doctor.devices : null,
    steps,
    tests,
    creff,
    pipeline,
    // ARSEG_GPU_CHECK_DRY_RUN: the steps ran on the emulated device
    dryRun: Boolean((creff && creff.backend === 'cuda-emulated') || (pipeline && pipeline.device === 'cuda-emulated')),
    ok: failedSteps.length === 0 && tests !== null && tests.failed === 0,
  };
}

const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : Number(x).toFixed(digits));
const pct = (x, peak) => (x && peak ? ` (${((100 * x) / peak).toFixed(1)}% of peak)` : '');

function formatMarkdown(r) {
  const out = [];
  const g = r.machine.gpu;
  out.push('# GPU check', '');
  out.push(`Date: ${r.date}. Result: **${r.ok ? 'all steps passed' : 'FAILED (see below)'}**.`, '');
  if (r.dryRun)
    out.push("**Dry run on the emulated device** (ARSEG_GPU_CHECK_DRY_RUN=1): no figure here is a GPU's.", '');
  out.push('## Machine', '');
  out.push(
    `- GPU: ${g ? `${g.name}, compute capability ${g.computeCapability}, ${fmt(g.memoryBytes / 2 ** 30)} GiB, ${g.multiprocessors} SMs` : 'none seen by the driver'}`,
  );
  out.push(`- Driver: ${r.machine.driver || 'unknown'}`);
  const k = r.machine.cudaKernels;
  out.push(
    `- CUDA kernels: ${k && k.built ? `CUDA ${k.runtime} runtime (toolkit ${k.toolkit}), ${[...k.machineCode, ...k.ptx].join(' ')}` : 'not in this build'}`,
  );
  if (r.machine.addon) out.push(`- Addon: ${r.machine.addon.kind} (${r.machine.addon.file})`);
  if (r.machine.cpu) out.push(`- CPU: ${r.machine.cpu.model}, ${r.machine.cpu.cores} threads, ${r.machine.cpu.simd}`);
  if (r.machine.onnxRuntime)
    out.push(
      `- ONNX Runtime ${r.machine.onnxRuntime.version}; CUDA provider ${r.machine.onnxRuntime.cudaProvider.installed ? 'installed' : 'not installed'}`,
    );
  if (r.devices) {
    for (const d of ['cpu', 'cuda'])
      out.push(
        `- device '${d}': ${r.devices[d].usable ? 'yes' : `no: ${r.devices[d].reason} (to fix: ${r.devices[d].fix})`}`,
      );
  }
  out.push('', '## Steps', '', '| step | exit | seconds |', '|---|---|---|');
  for (const s of r.steps)
    out.push(`| ${s.name} | ${s.status}${s.timedOut ? ' (time limit)' : ''} | ${fmt(s.seconds, 0)} |`);
  out.push('', '## Tests that skip without a GPU', '');
  if (!r.tests) out.push('No test output (the step did not run).');
  else {
    out.push(`${r.tests.passed} passed, ${r.tests.failed} failed, ${r.tests.skipped} skipped.`, '');
    const notPassed = r.tests.tests.filter((t) => t.status !== 'passed');
    for (const t of notPassed) out.push(`- ${t.status}: ${t.title}`);
  }
  out.push('', '## CReFF kernel (bench/creff.js --device cuda)', '');
  if (!r.creff) out.push('Not measured (the step failed or did not run).');
  else {
    const p = r.creff.peak || {};
    out.push(
      `Peaks from the driver: ${p.fp32Flops ? `${fmt(p.fp32Flops / 1e12)} TFLOP/s FP32` : 'FP32 unknown'}, ${p.bandwidth ? `${fmt(p.bandwidth / 1e9, 0)} GB/s` : 'bandwidth unknown'} (${p.how || ''}); median of ${r.creff.rounds} rounds.`,
      '',
    );
    out.push(
      '| size | C | K | kernel ms | achieved bandwidth | FP32 rate | device path fused frame ms | max abs diff from CPU |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const row of r.creff.rows)
      out.push(
        `| ${row.height}x${row.width} | ${row.channels} | ${row.window} | ${fmt(row.kernelMs, 3)} | ${fmt(row.bandwidth / 1e9)} GB/s${pct(row.bandwidth, row.peakBandwidth)} | ` +
          `${fmt(row.flopRate / 1e9, 0)} GFLOP/s${pct(row.flopRate, row.peakFlops)} | ${fmt(row.devicePathFuseMs, 3)} | ${Number(row.maxAbsDiff).toExponential(1)} |`,
      );
  }
  out.push('', '## Pipeline (bench/pipeline.js --device cuda)', '');
  if (!r.pipeline) out.push('Not measured (the step failed or did not run).');
  else {
    const pl = r.pipeline;
    out.push(
      `Clip ${pl.clip} (${pl.size ? `${pl.size.width}x${pl.size.height}` : '?'}), device ${pl.device}, scale 0.5, keyframe every 12.`,
      '',
    );
    out.push(
      '| mode | frames | fps | vs hr | ar-seg bytes per frame (measured, up / down) | ONNX Runtime bytes per frame (computed) | before the device path (computed) |',
      '|---|---|---|---|---|---|---|',
    );
    const hr = pl.rows.find((x) => x.mode === 'hr');
    for (const row of pl.rows) {
      const after = pl.bus ? pl.bus.after[row.mode] : null;
      const before = pl.bus ? pl.bus.before[row.mode] : null;
      const m = row.arSegBusPerFrame;
      out.push(
        `| ${row.mode} | ${row.frames} | ${fmt(row.fps, 2)} | ${hr ? fmt(row.fps / hr.fps, 2) + 'x' : 'n/a'} | ` +
          `${m ? `${fmt(m.toDevice / 2 ** 20, 2)} / ${fmt(m.toHost / 2 ** 20, 2)} MiB` : 'n/a'} | ` +
          `${after ? fmt((after.onnxRuntime.toDevice + after.onnxRuntime.toHost) / 2 ** 20, 2) + ' MiB' : 'n/a'} | ${before ? fmt(before.total / 2 ** 20, 2) + ' MiB' : 'n/a'} |`,
      );
    }
  }
  return out.join('\n') + '\n';
}

module.exports = { buildReport, formatMarkdown, parseAva, parseSteps };

if (require.main === module) {
  const [raw, outDir] = process.argv.slice(2);
  if (!raw || !outDir) {
    console.error('usage: node scripts/gpu-check-report.js RAW_DIR OUT_DIR');
    process.exit(2);
  }
  const report = buildReport(raw);
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'gpu-check.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'gpu-check.md'), formatMarkdown(report));
  console.error(
    `gpu-check: report in ${path.join(outDir, 'gpu-check.md')} and gpu-check.json (${report.ok ? 'all passed' : 'FAILED'})`,
  );
  process.exit(report.ok ? 0 : 1);
}
