'use strict';
// scripts/gpu-check.sh: without a GPU it stops at once, skipped, with the reason; its report
// (scripts/gpu-check-report.js) is checked on made-up step outputs, every part present or not.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { CReFF } = require('../dist');
const { tmpDir } = require('./helpers/fixtures');
const { buildReport, formatMarkdown, parseAva } = require('../scripts/gpu-check-report');

const ROOT = path.join(__dirname, '..');
const cuda = CReFF.cudaStatus();

(cuda.available ? test.skip : test)(
  `without a usable GPU the check is skipped at once with the reason (exit 77)${cuda.available ? ' (skipped: a GPU is here; run scripts/gpu-check.sh itself)' : ''}`,
  (t) => {
    const out = tmpDir('arseg-gpucheck-');
    try {
      const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'gpu-check.sh'), '--out', out], {
        encoding: 'utf8',
        timeout: 60000,
      });
      t.is(r.status, 77, r.stderr);
      t.is(r.stdout.trim(), `gpu-check: skipped: ${cuda.reason}; to fix: ${cuda.fix}`);
      t.false(fs.existsSync(path.join(out, 'gpu-check.md')), 'no report for a check that did not run');
      const bad = spawnSync('bash', [path.join(ROOT, 'scripts', 'gpu-check.sh'), '--frobnicate'], { encoding: 'utf8' });
      t.is(bad.status, 2);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  },
);

test('a dry run on the emulated device goes through every step and writes the report (the plumbing, not a check)', (t) => {
  t.timeout(180_000);
  const out = tmpDir('arseg-gpucheck-dry-');
  try {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'gpu-check.sh'), '--out', out], {
      encoding: 'utf8',
      env: { ...process.env, ARSEG_GPU_CHECK_DRY_RUN: '1' },
      timeout: 170_000,
    });
    t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const json = JSON.parse(fs.readFileSync(path.join(out, 'gpu-check.json'), 'utf8'));
    t.true(json.ok && json.dryRun);
    t.deepEqual(
      json.steps.map((s) => [s.name, s.status]),
      [
        ['tests', 0],
        ['bench-creff', 0],
        ['bench-pipeline', 0],
      ],
    );
    t.true(json.tests.passed > 0 && json.tests.failed === 0);
    t.is(json.creff.rows.length, 1);
    t.deepEqual(
      json.pipeline.rows.map((x) => x.mode),
      ['hr', 'lr', 'ar'],
    );
    t.true(
      json.pipeline.rows.every((x) => x.arSegBusPerFrame.toHost >= 320 * 240),
      'the labels come back for every frame',
    );
    const md = fs.readFileSync(path.join(out, 'gpu-check.md'), 'utf8');
    t.regex(md, /\*\*Dry run on the emulated device\*\*/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

const AVA_LOG = [
  '  ✔ creff › small: the CUDA kernel matches PyTorch within 0.0001 (1.2s)',
  "  ✔ device-path › GPU: the device path on the GPU gives the emulated device's labels",
  "  ✘ [fail]: device-path › GPU: pipeline on device 'cuda' equals the CPU path",
  '  - [skip] creff › window1: the CUDA kernel matches PyTorch within 0.0001',
  '  ─',
  '',
  '  1 test failed',
  '  2 tests passed',
  '  1 test skipped',
].join('\n');

function fakeRaw(dir, { failTest = false, withBenches = true } = {}) {
  const gpu = {
    index: 0,
    name: 'NVIDIA H200',
    computeCapability: '9.0',
    memoryBytes: 150 * 2 ** 30,
    multiprocessors: 132,
    clockKHz: 1980000,
    memoryClockKHz: 2619000,
    memoryBusBits: 6144,
    pciBusId: '0000:00:05.0',
  };
  const doctor = {
    cpu: { model: 'AMD EPYC', cores: 16, simd: 'avx2' },
    addon: { kind: 'prebuild', file: '/x/node.napi.glibc.node' },
    gpu: { driver: { version: '550.54.15', devices: [gpu] } },
    cudaKernels: {
      built: true,
      runtime: '11.8',
      toolkit: '11.8.89',
      machineCode: ['sm_75', 'sm_90'],
      ptx: ['compute_90'],
    },
    onnxRuntime: { version: '1.30.0', cudaProvider: { installed: true } },
    devices: {
      cpu: { usable: true, reason: '', fix: '' },
      cuda: { usable: false, reason: 'libcudnn.so.9 cannot be loaded (x)', fix: 'install cuDNN 9' },
    },
  };
  fs.writeFileSync(path.join(dir, 'doctor.json'), JSON.stringify(doctor));
  fs.writeFileSync(
    path.join(dir, 'tests.log'),
    failTest ? AVA_LOG : AVA_LOG.replace(/.*✘.*\n/, '').replace('1 test failed', '0 tests failed'),
  );
  fs.writeFileSync(
    path.join(dir, 'steps.tsv'),
    `tests\t${failTest ? 1 : 0}\t95\nbench-creff\t0\t20\nbench-pipeline\t${withBenches ? 0 : 124}\t120\n`,
  );
  if (withBenches) {
    fs.writeFileSync(
      path.join(dir, 'creff.json'),
      JSON.stringify({
        backend: 'cuda',
        gpu,
        rounds: 10,
        peak: { fp32Flops: 66.9e12, bandwidth: 4.8e12, how: '132 SMs x 128 ...' },
        rows: [
          {
            height: 720,
            width: 960,
            channels: 64,
            window: 7,
            kernelMs: 2.5,
            bytes: 6e9,
            flops: 16.725e12 * 0.0025,
            bandwidth: 2.4e12,
            flopRate: 16.725e12,
            peakBandwidth: 4.8e12,
            peakFlops: 66.9e12,
            devicePathFuseMs: 3.1,
            maxAbsDiff: 2.4e-6,
          },
        ],
      }),
    );
    const traffic = (total) => ({
      onnxRuntime: { toDevice: 2 ** 20, toHost: 2 ** 20 },
      arSeg: { toDevice: 0, toHost: 0 },
      total,
    });
    fs.writeFileSync(
      path.join(dir, 'pipeline.json'),
      JSON.stringify({
        device: 'cuda',
        clip: 'video.mp4',
        size: { width: 320, height: 240 },
        rows: [
          { mode: 'hr', frames: 48, fps: 100, arSegBusPerFrame: { toDevice: 4 * 2 ** 20, toHost: 76800 } },
          { mode: 'lr', frames: 48, fps: 300, arSegBusPerFrame: { toDevice: 2 ** 20, toHost: 76800 } },
          { mode: 'ar', frames: 48, fps: 250, arSegBusPerFrame: { toDevice: 1.5 * 2 ** 20, toHost: 76800 } },
        ],
        bus: {
          before: { hr: traffic(10 * 2 ** 20), lr: traffic(3 * 2 ** 20), ar: traffic(12 * 2 ** 20) },
          after: { hr: traffic(7 * 2 ** 20), lr: traffic(2 * 2 ** 20), ar: traffic(3 * 2 ** 20) },
        },
      }),
    );
  }
}

test("the report: machine, steps, tests, the kernel against the driver's peaks, fps and bytes per frame", (t) => {
  const dir = tmpDir('arseg-gpureport-');
  try {
    fakeRaw(dir, { failTest: true });
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, 'scripts', 'gpu-check-report.js'), dir, path.join(dir, 'out')],
      { encoding: 'utf8' },
    );
    t.is(r.status, 1, 'a failed test fails the check');
    const md = fs.readFileSync(path.join(dir, 'out', 'gpu-check.md'), 'utf8');
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'gpu-check.json'), 'utf8'));
    t.false(json.ok);
    t.regex(md, /Result: \*\*FAILED/);
    t.regex(md, /- GPU: NVIDIA H200, compute capability 9\.0, 150\.0 GiB, 132 SMs/);
    t.regex(md, /- CUDA kernels: CUDA 11\.8 runtime \(toolkit 11\.8\.89\), sm_75 sm_90 compute_90/);
    t.regex(md, /- device 'cuda': no: libcudnn\.so\.9 cannot be loaded \(x\) \(to fix: install cuDNN 9\)/);
    t.regex(md, /\| tests \| 1 \| 95 \|/);
    t.regex(md, /2 passed, 1 failed, 1 skipped\./);
    t.regex(md, /- failed: device-path › GPU: pipeline on device 'cuda' equals the CPU path/);
    t.regex(
      md,
      /\| 720x960 \| 64 \| 7 \| 2\.500 \| 2400\.0 GB\/s \(50\.0% of peak\) \| 16725 GFLOP\/s \(25\.0% of peak\) \| 3\.100 \| 2\.4e-6 \|/,
    );
    t.regex(md, /\| ar \| 48 \| 250\.00 \| 2\.50x \| 1\.50 \/ 0\.07 MiB \| 2\.00 MiB \| 12\.00 MiB \|/);
    t.is(json.tests.failed, 1);
    t.is(json.creff.rows[0].kernelMs, 2.5);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the report says what did not run, and passes when every step did', (t) => {
  const dir = tmpDir('arseg-gpureport-');
  try {
    fakeRaw(dir, { withBenches: false });
    const report = buildReport(dir);
    t.false(report.ok, 'a step cut by its time limit fails the check');
    const md = formatMarkdown(report);
    t.regex(md, /\| bench-pipeline \| 124 \(time limit\) \| 120 \|/);
    t.regex(md, /## CReFF kernel[^#]*Not measured/);
    t.regex(md, /## Pipeline[^#]*Not measured/);
    fakeRaw(dir, {});
    const ok = buildReport(dir);
    t.true(ok.ok, JSON.stringify(ok.steps));
    t.regex(formatMarkdown(ok), /Result: \*\*all steps passed\*\*/);
    // nothing at all: no tests ran, so not ok
    const empty = tmpDir('arseg-gpureport-');
    t.false(buildReport(empty).ok);
    t.regex(formatMarkdown(buildReport(empty)), /No test output/);
    fs.rmSync(empty, { recursive: true, force: true });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("ava's output is read test by test, colours and all", (t) => {
  const r = parseAva(
    `\u001b[32m  ✔\u001b[39m a (5ms)\n  ✘ [fail]: b\n  - [skip] c\n\n  1 test passed\n  1 test failed\n  1 test skipped\n`,
  );
  t.deepEqual(r, {
    passed: 1,
    failed: 1,
    skipped: 1,
    tests: [
      { title: 'a', status: 'passed' },
      { title: 'b', status: 'failed' },
      { title: 'c', status: 'skipped' },
    ],
  });
  t.is(parseAva(null), null);
});
