'use strict';
// Outputs of the CLI: every file is written atomically (no 0-byte or partial file after a full
// disk; summary.json valid or absent), and file-system failures on the output are ERR_OUTPUT
// (exit 8) naming the path and the reason, found before the model loads.
//
// A full disk is simulated with ARSEG_TEST_DISK_BYTES (lib/atomic-write.ts: the process's writes
// behave as on a disk with that many bytes free; the write that does not fit leaves part of its
// temporary file and fails with ENOSPC). The tests run as root, where permissions do not stop
// writes: the failures here are ones root cannot bypass (ENOTDIR, EEXIST, EISDIR); the others
// are checked through their mapping.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { outputError, prepareOutputDir, writeOutput } = require('../dist');
const { FIXTURES, fixture, tmpDir, readNpy } = require('./helpers/fixtures');

const CLI = path.join(__dirname, '..', 'dist', 'cli', 'index.js');
const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const CLIP = fixture('tiny.h264'); // 24 frames, 64x48

function run(args, env = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  const json = args.includes('--json') && r.stdout.trim() ? JSON.parse(r.stdout.trim().split('\n').pop()) : null;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

/** Every file under `dir`, relative, sorted. */
function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

const complete = (() => {
  let cached = null;
  return () => {
    if (cached) return cached;
    const out = path.join(tmpDir('arseg-out-'), 'full');
    const r = run(['segment', CLIP, '--model', BUNDLE, '--out', out, '--json', '--no-flops', '--keyframes', '6']);
    if (r.code !== 0) throw new Error(r.stderr);
    cached = out;
    return out;
  };
})();

test('segment on a disk that fills part-way: whole PNGs or none, no temporary files, no summary, exit 8', (t) => {
  const full = complete();
  const labels = fs.readdirSync(path.join(full, 'labels')).sort();
  t.is(labels.length, 24);
  const size = (name) => fs.statSync(path.join(full, 'labels', name)).size;
  // room for five PNGs and half of the sixth
  const budget = labels.slice(0, 5).reduce((s, n) => s + size(n), 0) + Math.floor(size(labels[5]) / 2);
  const out = path.join(tmpDir('arseg-out-'), 'out');
  const r = run(['segment', CLIP, '--model', BUNDLE, '--out', out, '--json', '--no-flops', '--keyframes', '6'], {
    ARSEG_TEST_DISK_BYTES: String(budget),
  });
  t.is(r.code, 8, r.stderr);
  t.false(r.json.ok);
  t.is(r.json.error.code, 'ERR_OUTPUT');
  t.regex(r.json.error.message, /000005\.png.*no space left on the device \(ENOSPC\)/);
  t.deepEqual(
    files(out),
    labels.slice(0, 5).map((n) => path.join('labels', n)),
    'five whole PNGs, no partial, no temporary file, no summary',
  );
  for (const n of labels.slice(0, 5))
    t.true(fs.readFileSync(path.join(out, 'labels', n)).equals(fs.readFileSync(path.join(full, 'labels', n))), n);
});

test('segment with room for every PNG but not the summary: summary.json is absent, never partial', (t) => {
  const full = complete();
  const labels = fs.readdirSync(path.join(full, 'labels')).sort();
  const budget = labels.reduce((s, n) => s + fs.statSync(path.join(full, 'labels', n)).size, 0) + 20;
  const out = path.join(tmpDir('arseg-out-'), 'out');
  const r = run(['segment', CLIP, '--model', BUNDLE, '--out', out, '--json', '--no-flops', '--keyframes', '6'], {
    ARSEG_TEST_DISK_BYTES: String(budget),
  });
  t.is(r.code, 8, r.stderr);
  t.regex(r.json.error.message, /summary\.json/);
  t.deepEqual(
    files(out),
    labels.map((n) => path.join('labels', n)),
  );
});

test('mvs --dump on a disk that fills part-way: whole .npy files only, no frame_types.txt, exit 8', (t) => {
  const dump = path.join(tmpDir('arseg-out-'), 'dump');
  const r = run(['mvs', CLIP, '--dump', dump, '--dense', '8', '--json'], { ARSEG_TEST_DISK_BYTES: '6000' });
  t.is(r.code, 8, r.stderr);
  t.is(r.json.error.code, 'ERR_OUTPUT');
  const written = files(dump);
  t.true(written.length > 0 && written.length < 48, `${written.length} files`);
  t.false(written.includes('frame_types.txt'));
  for (const f of written) {
    t.regex(f, /^motion_(vectors|fields)\/(mvs|refs|field)-\d+\.npy$/);
    const a = readNpy(path.join(dump, f)); // throws on a partial file
    t.is(
      a.data.length,
      a.shape.reduce((x, y) => x * y, 1),
      f,
    );
  }
});

test('eval --out on a full disk: the table is absent, exit 8', (t) => {
  const clip = tmpDir('arseg-out-');
  fs.copyFileSync(fixture('translate-p.mp4'), path.join(clip, 'video.mp4'));
  fs.mkdirSync(path.join(clip, 'labels'));
  const { encodeLabelPng } = require('../dist/png');
  const colors = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'arseg.json'), 'utf8')).classes.map((c) => c.color);
  for (let i = 0; i < 36; i++)
    fs.writeFileSync(
      path.join(clip, 'labels', `${String(i).padStart(6, '0')}.png`),
      encodeLabelPng(new Uint8Array(192 * 128), 192, 128, colors),
    );
  const table = path.join(clip, 'table.md');
  const r = run(['eval', path.join(clip, 'video.mp4'), '--model', BUNDLE, '--modes', 'lr', '--out', table, '--json'], {
    ARSEG_TEST_DISK_BYTES: '10',
  });
  t.is(r.code, 8, r.stderr);
  t.is(r.json.error.code, 'ERR_OUTPUT');
  t.false(fs.existsSync(table));
  t.deepEqual(
    fs.readdirSync(clip).filter((f) => f.endsWith('.tmp')),
    [],
  );
  // with room, the table is written whole
  const ok = run(['eval', path.join(clip, 'video.mp4'), '--model', BUNDLE, '--modes', 'lr', '--out', table]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(fs.readFileSync(table, 'utf8'), /\| lr \|/);
});

test('--out that is a file, under a file, or whose labels/ is taken: ERR_OUTPUT (exit 8) before the model loads', (t) => {
  const dir = tmpDir('arseg-out-');
  const file = path.join(dir, 'a-file');
  fs.writeFileSync(file, 'x');
  const missingModel = path.join(dir, 'no-such-model'); // the output is checked first: not ERR_BUNDLE
  for (const [out, code, reason] of [
    [file, 'EEXIST', /a file is in the way/],
    [path.join(file, 'out'), 'ENOTDIR', /is a file, not a directory/],
  ]) {
    const r = run(['segment', CLIP, '--model', missingModel, '--out', out, '--json']);
    t.is(r.code, 8, `${out}: ${r.stderr}`);
    t.is(r.json.error.code, 'ERR_OUTPUT');
    t.true(r.json.error.message.includes(out), r.json.error.message);
    t.regex(r.json.error.message, reason);
    t.regex(r.json.error.message, new RegExp(`\\(${code}\\)`));
    const plain = run(['segment', CLIP, '--model', missingModel, '--out', out]);
    t.is(plain.code, 8);
    t.regex(plain.stderr, /^ar-seg: ERR_OUTPUT: cannot write /);
    t.notRegex(plain.stderr, /report/);
  }
  // labels/ is a file
  const taken = path.join(dir, 'taken');
  fs.mkdirSync(taken);
  fs.writeFileSync(path.join(taken, 'labels'), 'x');
  const r = run(['segment', CLIP, '--model', missingModel, '--out', taken, '--json']);
  t.is(r.code, 8);
  t.true(r.json.error.message.includes(path.join(taken, 'labels')));
  // a frame's PNG name is taken by a directory: EISDIR when it is renamed into place
  const busy = path.join(dir, 'busy');
  fs.mkdirSync(path.join(busy, 'labels', '000003.png'), { recursive: true });
  fs.writeFileSync(path.join(busy, 'labels', '000003.png', 'keep'), 'x');
  const r2 = run(['segment', CLIP, '--model', BUNDLE, '--out', busy, '--json', '--no-flops']);
  t.is(r2.code, 8, r2.stderr);
  t.regex(
    r2.json.error.message,
    /000003\.png: it is a directory \(EISDIR\)|000003\.png: .*\((EISDIR|ENOTEMPTY|EEXIST)\)/,
  );
  // mvs --dump and eval --out are checked before anything is read
  t.is(run(['mvs', CLIP, '--dump', path.join(file, 'd'), '--json']).json.error.code, 'ERR_OUTPUT');
  const e = run(['eval', CLIP, '--model', missingModel, '--out', path.join(file, 'table.md'), '--json']);
  t.is(e.code, 8);
  t.is(e.json.error.code, 'ERR_OUTPUT');
});

test('outputError maps every file-system failure on an output to ERR_OUTPUT with the path and the reason', (t) => {
  const cases = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOTDIR: 'a component of the path is a file, not a directory',
    EEXIST: 'a file is in the way',
    EISDIR: 'it is a directory',
    ENOSPC: 'no space left on the device',
    EROFS: 'read-only file system',
    EDQUOT: 'disk quota exceeded',
  };
  for (const [code, reason] of Object.entries(cases)) {
    const e = outputError(
      Object.assign(new Error(`${code}: raw`), { code, syscall: 'open' }),
      '/out/labels/000001.png',
    );
    t.is(e.code, 'ERR_OUTPUT', code);
    t.is(e.path, '/out/labels/000001.png');
    t.is(e.systemCode, code);
    t.true(e.message.startsWith('cannot write /out/labels/000001.png: ' + reason), e.message);
    t.true(e.message.endsWith(`(${code})`));
  }
  t.is(outputError(Object.assign(new Error('x'), { code: 'ENOMEM' }), '/f').code, 'ERR_OUT_OF_MEMORY');
  t.is(outputError(new TypeError('not a system error'), '/f').code, 'ERR_NATIVE');
  const { exitCodeFor } = require('../dist/cli/exit-codes');
  t.is(exitCodeFor('ERR_OUTPUT'), 8);
  t.is(exitCodeFor('ERR_OUT_OF_MEMORY'), 9);
});

test('prepareOutputDir creates the directories and proves them writable; writeOutput is atomic', async (t) => {
  const dir = path.join(tmpDir('arseg-out-'), 'a', 'b');
  t.is(await prepareOutputDir(dir, ['labels', 'overlays']), dir);
  t.deepEqual(fs.readdirSync(dir).sort(), ['labels', 'overlays']);
  t.deepEqual(fs.readdirSync(path.join(dir, 'labels')), [], 'the probe file is removed');
  await writeOutput(path.join(dir, 'labels', 'x.txt'), 'whole');
  t.is(fs.readFileSync(path.join(dir, 'labels', 'x.txt'), 'utf8'), 'whole');
  const err = await t.throwsAsync(writeOutput(path.join(dir, 'labels', 'x.txt', 'y'), 'z'));
  t.is(err.code, 'ERR_OUTPUT');
  t.is(err.systemCode, 'ENOTDIR');
});
