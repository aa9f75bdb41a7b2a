'use strict';
// `ar-seg doctor`: its report on this machine (the addon, the CPU, libav, the driver, ONNX
// Runtime, the CUDA libraries), its exit codes, and the reasons device 'cuda' is refused, each
// made to happen with made-up facts (cudaVerdict) since one machine shows only one of them.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { CReFF } = require('../dist');
const { cudaVerdict, ONNX_RUNTIME_DRIVER_FLOOR } = require('../dist/doctor');

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
// No NVIDIA kernel module loaded: a machine without an NVIDIA driver (this one, CI's).
const NO_DRIVER = !fs.existsSync('/proc/driver/nvidia/version');

function doctor(args, env = {}) {
  const r = spawnSync(process.execPath, [CLI, 'doctor', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('doctor --json on this machine: the facts, and cuda refused with the first reason and its fix', (t) => {
  const r = doctor(['--json']);
  t.is(r.status, 0, `device 'cpu' must be usable here:\n${r.stdout}\n${r.stderr}`);
  const report = JSON.parse(r.stdout);
  t.true(report.ok);
  t.is(report.device, 'cpu');
  t.is(report.package.name, 'ar-seg-native');
  t.true(report.addon.loaded);
  t.is(report.addon.kind, 'source build');
  t.is(report.addon.file, fs.realpathSync(path.join(__dirname, '..', 'build', 'Release', 'ar_seg_native.node')));
  t.regex(report.cpu.simd, /^(avx512|avx2|baseline)$/);
  t.regex(report.libav.avcodec, /^\d+\.\d+\.\d+$/);
  // A source build links the patched static libav of scripts/build-libav.sh when it is there
  // (CMakeLists.txt), else the system's shared one: ldd says which, independently of doctor.
  const ldd = spawnSync('ldd', [report.addon.file], { encoding: 'utf8' });
  t.is(ldd.status, 0, ldd.stderr);
  const shared = /libavcodec\.so/.test(ldd.stdout);
  t.is(
    report.libav.bundled,
    !shared,
    shared ? "a source build on the system's libav" : 'a source build on the static libav',
  );
  t.regex(report.onnxRuntime.version, /^\d+\.\d+\.\d+$/);
  t.true(report.onnxRuntime.backends.includes('cpu'));
  t.deepEqual(
    report.onnxRuntime.libraries.map((l) => l.name),
    ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcudnn.so.9'],
  );
  for (const l of report.onnxRuntime.libraries) t.true(l.loaded || l.error.length > 0, l.name);
  t.true(report.devices.cpu.usable);
  const cuda = report.devices.cuda;
  t.true(Array.isArray(cuda.checks) && cuda.checks.every((c) => typeof c.ok === 'boolean' && c.name && c.detail));
  if (report.cudaKernels.built) {
    t.regex(report.cudaKernels.runtime, /^\d+\.\d+$/);
    t.regex(report.cudaKernels.driverFloor, /^\d+\.\d+\.\d+$/);
  }
  const status = CReFF.cudaStatus();
  if (NO_DRIVER) {
    t.false(cuda.usable);
    t.regex(cuda.reason, /^no NVIDIA driver found/);
    t.regex(cuda.fix, /install the NVIDIA driver, 525\.60\.13 or newer/);
    // cudaStatus gives the same reason, in the same words
    t.false(status.available);
    t.is(status.reason, cuda.reason);
    t.is(status.fix, cuda.fix);
    t.false(report.gpu.driver.devices.length > 0);
  } else {
    t.log(`a driver is here: cuda ${cuda.usable ? 'usable' : `refused: ${cuda.reason}`}`);
    t.notRegex(cuda.reason, /^no NVIDIA driver found/);
  }
});

test('doctor --device cuda exits 5 when cuda cannot run, and the text report names the reason and the fix', (t) => {
  const json = doctor(['--device', 'cuda', '--json']);
  const report = JSON.parse(json.stdout);
  t.is(report.device, 'cuda');
  t.is(json.status, report.devices.cuda.usable ? 0 : 5);
  t.is(report.ok, report.devices.cuda.usable);
  const text = doctor([]);
  t.is(text.status, 0);
  t.regex(text.stdout, /^addon: +source build, /m);
  t.regex(text.stdout, /^device 'cpu': yes$/m);
  if (!report.devices.cuda.usable) {
    t.regex(text.stdout, /^device 'cuda': NO$/m);
    t.true(text.stdout.includes(`first reason: ${report.devices.cuda.reason}`));
    t.true(text.stdout.includes(`to fix: ${report.devices.cuda.fix}`));
  }
  if (NO_DRIVER) t.regex(text.stdout, /first reason: no NVIDIA driver found/);
  const bad = doctor(['--device', 'gpu']);
  t.is(bad.status, 2, 'a bad --device is a usage error');
});

test('doctor with the prebuild loaded: its kind, its BUILD.json and the bundled libav', (t) => {
  const r = doctor(['--json'], { PREBUILDS_ONLY: '1' });
  const report = JSON.parse(r.stdout);
  t.is(report.addon.kind, 'prebuild');
  t.regex(report.addon.file, /prebuilds\/linux-x64\/node\.napi\.glibc\.node$/);
  t.regex(report.addon.buildRecord.ffmpeg.version, /^\d+:\d/);
  t.is(report.addon.buildRecord.files, undefined);
  t.is(report.libav.bundled, true);
  t.is(report.libav.licence, 'LGPL');
});

const GOOD = {
  addonLoaded: true,
  addonError: null,
  kernels: { ok: true, reason: '', fix: '' },
  driver: { version: '550.54.15', cudaVersion: 12040 },
  providerInstalled: true,
  providerFile: '/x/libonnxruntime_providers_cuda.so',
  libraries: ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcudnn.so.9'].map(
    (name) => ({ name, loaded: true, error: '' }),
  ),
};

test('cudaVerdict: usable when every check passes, else the first reason in the order a user fixes them', (t) => {
  const ok = cudaVerdict(GOOD);
  t.true(ok.usable);
  t.is(ok.reason, '');
  t.true(ok.checks.every((c) => c.ok && c.fix === ''));

  const noAddon = cudaVerdict({ ...GOOD, addonLoaded: false, addonError: 'no prebuild fits', kernels: null });
  t.false(noAddon.usable);
  t.is(noAddon.reason, 'not loaded: no prebuild fits');

  const noDriver = cudaVerdict({
    ...GOOD,
    kernels: {
      ok: false,
      reason: 'no NVIDIA driver found (libcuda.so.1 cannot be loaded)',
      fix: 'install the NVIDIA driver',
    },
    driver: null,
    providerInstalled: false,
  });
  t.is(noDriver.reason, 'no NVIDIA driver found (libcuda.so.1 cannot be loaded)');
  t.is(noDriver.fix, 'install the NVIDIA driver');

  const oldDriver = cudaVerdict({ ...GOOD, driver: { version: '470.82.01', cudaVersion: 11040 } });
  t.is(
    oldDriver.reason,
    `driver 470.82.01 (CUDA 11.4) is older than ${ONNX_RUNTIME_DRIVER_FLOOR}, needed by ONNX Runtime's CUDA 12 provider`,
  );
  t.regex(oldDriver.fix, /upgrade the NVIDIA driver to 525\.60\.13/);

  const noProvider = cudaVerdict({ ...GOOD, providerInstalled: false });
  t.regex(
    noProvider.reason,
    /^ONNX Runtime's CUDA provider is not installed \(no \/x\/libonnxruntime_providers_cuda\.so\)$/,
  );
  t.regex(noProvider.fix, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);

  const missing = (name) =>
    GOOD.libraries.map((l) =>
      l.name === name ? { name, loaded: false, error: `${name}: cannot open shared object file` } : l,
    );
  const noCudart = cudaVerdict({ ...GOOD, libraries: missing('libcudart.so.12') });
  t.is(noCudart.reason, 'libcudart.so.12 cannot be loaded (libcudart.so.12: cannot open shared object file)');
  t.regex(noCudart.fix, /CUDA 12 runtime/);
  const noCudnn = cudaVerdict({ ...GOOD, libraries: missing('libcudnn.so.9') });
  t.regex(noCudnn.reason, /^libcudnn\.so\.9 cannot be loaded/);
  t.regex(noCudnn.fix, /cuDNN 9 for CUDA 12/);

  // two problems: the earlier one is the reason, both are listed
  const both = cudaVerdict({
    ...GOOD,
    driver: { version: '470.82.01', cudaVersion: 11040 },
    libraries: missing('libcudnn.so.9'),
  });
  t.regex(both.reason, /^driver 470\.82\.01/);
  t.is(both.checks.filter((c) => !c.ok).length, 2);
});
