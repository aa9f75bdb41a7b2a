#!/usr/bin/env node
// Prints the compiler or linker flags of the libav for binding.gyp (the fallback build), the
// same choice CMakeLists.txt makes: a static libav in ARSEG_LIBAV_PREFIX, else the patched one
// scripts/build-libav.sh left in .prebuild-cache/libav (exact motion-vector references, HEVC
// vectors: the same motion as the prebuild), else (or with ARSEG_LIBAV_PREFIX=system) the
// system's from pkg-config. Fails with a message that names the packages to install.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const MODULES = ['libavformat', 'libavcodec', 'libavutil', 'libswscale'];
const PACKAGES = 'libavformat-dev libavcodec-dev libavutil-dev libswscale-dev pkg-config';

const mode = process.argv[2];
if (mode !== '--cflags' && mode !== '--libs') {
  console.error('usage: libav-flags.js --cflags|--libs');
  process.exit(2);
}

function staticPrefix() {
  const env = process.env.ARSEG_LIBAV_PREFIX;
  if (env === 'system') return null;
  if (env) return env;
  const built = path.join(__dirname, '..', '.prebuild-cache', 'libav');
  return fs.existsSync(path.join(built, 'lib', 'pkgconfig', 'libavcodec.pc')) ? fs.realpathSync(built) : null;
}

function pkgConfig(args, env) {
  return execFileSync('pkg-config', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env })
    .trim()
    .split(/\s+/)
    .filter(Boolean);
}

const prefix = staticPrefix();
try {
  let flags;
  if (prefix) {
    const env = { ...process.env, PKG_CONFIG_LIBDIR: path.join(prefix, 'lib', 'pkgconfig'), PKG_CONFIG_PATH: '' };
    flags = pkgConfig(['--static', mode, ...MODULES], env);
    if (mode === '--libs') {
      // The archives by full path (a system libav can never be picked up instead), their
      // symbols kept local to the addon.
      flags = flags
        .filter((f) => !f.startsWith('-L'))
        .map((f) => {
          const archive = f.startsWith('-l') && path.join(prefix, 'lib', `lib${f.slice(2)}.a`);
          return archive && fs.existsSync(archive) ? archive : f;
        });
      flags.push('-Wl,--exclude-libs,ALL');
    }
  } else {
    flags = pkgConfig([mode, ...MODULES], process.env);
    if (mode === '--cflags')
      console.error(
        'ar-seg-native: building against the system libav, which lacks the patches of patches/ffmpeg/: ' +
          'motion vectors will not name their exact reference and HEVC has none (run scripts/build-libav.sh first for those).',
      );
  }
  process.stdout.write(flags.join('\n') + '\n');
} catch (err) {
  console.error(
    `ar-seg-native: libav (FFmpeg's libraries) was not found through pkg-config${prefix ? ` in ${prefix}` : ''}.\n` +
      `No prebuilt binary fits this platform, so the addon must be built from source.\n` +
      `On Debian/Ubuntu: sudo apt-get install ${PACKAGES}\n` +
      `(pkg-config said: ${String(err.stderr || err.message).trim()})`,
  );
  process.exit(1);
}
