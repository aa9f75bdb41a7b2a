'use strict';
// A few hundred damaged variants of the fixtures (byte flips, truncations, zeroed and repeated
// ranges): each must end in frames or a coded error, with no crash and no hang.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { openVideo, createPacketReader, ErrorCodes, libavVersions } = require('../dist');
const { fixture, tmpDir } = require('./helpers/fixtures');
const { hevcAnnexB } = require('./helpers/annexb');

const CODES = new Set(Object.values(ErrorCodes));
const CASE_TIMEOUT_MS = 10000;

function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

function mutate(bytes, seed) {
  const r = rng(seed);
  const out = Buffer.from(bytes);
  switch (seed % 4) {
    case 0: {
      // flip bytes
      const n = 1 + r(40);
      for (let i = 0; i < n; i++) out[r(out.length)] ^= 1 + r(255);
      return out;
    }
    case 1: // truncate
      return out.subarray(0, r(out.length));
    case 2: {
      // zero a range
      const at = r(out.length);
      out.fill(0, at, Math.min(out.length, at + 1 + r(2000)));
      return out;
    }
    default: {
      // repeat a range somewhere else
      const at = r(out.length);
      const len = 1 + r(1500);
      const to = r(out.length);
      out.copy(out, to, at, Math.min(out.length, at + len));
      return out;
    }
  }
}

async function withinTime(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${what} took over ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function readAll(file, options) {
  let frames = 0;
  try {
    for await (const f of openVideo(file, options)) {
      frames++;
      if (f.motion && f.motion.data.some((v) => !Number.isFinite(v))) throw new Error('non-finite motion');
    }
    return { frames, code: null };
  } catch (err) {
    if (!CODES.has(err.code)) throw err;
    return { frames, code: err.code };
  }
}

const dir = tmpDir('arseg-fuzz-');

// HEVC with the patched libav's vectors (B-pyramid, open GOP, wavefronts; Main10): its motion
// export and the composition that follows it.
const hevc = libavVersions().exactReferences
  ? [
      ['x265-default.mp4', 100],
      ['hevc-main10.mp4', 40],
      ['hevc-wpp.mp4', 40],
    ]
  : [];
for (const [name, count] of [
  ['translate-b.mp4', 120],
  ['translate-p.h264', 100],
  ['mpeg4.mp4', 40],
  ['x264-default.mp4', 60],
  ...hevc,
]) {
  test(`fuzz: ${count} damaged variants of ${name} end in frames or a coded error`, async (t) => {
    const original = fs.readFileSync(fixture(name));
    const outcomes = {};
    for (let seed = 1; seed <= count; seed++) {
      const file = path.join(dir, `${seed}-${name}`);
      fs.writeFileSync(file, mutate(original, seed * 7919));
      const options = {
        vectors: true,
        motion: 'accumulated',
        rgb: seed % 3 === 0,
        composition: seed % 4 === 1 ? 'official' : 'bilinear',
        threads: seed % 2 ? 1 : 3,
      };
      const result = await withinTime(readAll(file, options), `${name} seed ${seed}`);
      const key = result.code ?? 'frames';
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      fs.unlinkSync(file);
    }
    t.log(JSON.stringify(outcomes));
    t.true((outcomes.frames ?? 0) > 0, 'some variants still decode');
  });
}

test('fuzz: damaged HEVC bytes through the packet reader', async (t) => {
  if (!libavVersions().exactReferences) {
    t.log('skipped: HEVC vectors need the patched libav (scripts/build-libav.sh)');
    t.pass();
    return;
  }
  // The packet reader takes Annex-B: the fixture's stream rewritten by ffmpeg (setup.sh installs it).
  const raw = path.join(dir, 'x265.hevc');
  hevcAnnexB(fixture('x265-default.mp4'), raw);
  const original = fs.readFileSync(raw);
  let frames = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const bytes = seed === 1 ? original : mutate(original, seed * 15485863);
    const decoder = createPacketReader({
      codec: 'hevc',
      vectors: true,
      motion: 'accumulated',
      threads: seed % 2 ? 1 : 2,
    });
    try {
      await withinTime(
        (async () => {
          for (let at = 0; at < bytes.length; at += 2500)
            frames += (await decoder.decode(bytes.subarray(at, at + 2500))).length;
          frames += (await decoder.flush()).length;
        })(),
        `hevc packet seed ${seed}`,
      );
      if (seed === 1) t.is(frames, 36, 'the undamaged stream gives every frame');
    } catch (err) {
      t.true(CODES.has(err.code), String(err));
    } finally {
      decoder.close();
    }
  }
  t.true(frames > 36);
});

test('fuzz: damaged Annex-B bytes through the packet decoder', async (t) => {
  const original = fs.readFileSync(fixture('translate-p.h264'));
  let frames = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const bytes = mutate(original, seed * 104729);
    const decoder = createPacketReader({ codec: 'h264', vectors: true, motion: 'accumulated' });
    try {
      await withinTime(
        (async () => {
          for (let at = 0; at < bytes.length; at += 3000)
            frames += (await decoder.decode(bytes.subarray(at, at + 3000))).length;
          frames += (await decoder.flush()).length;
        })(),
        `packet seed ${seed}`,
      );
    } catch (err) {
      t.true(CODES.has(err.code), String(err));
    } finally {
      decoder.close();
    }
  }
  t.true(frames > 0);
});
