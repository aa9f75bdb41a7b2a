#!/usr/bin/env node
// Prints the compiler or linker flags of the system libav for binding.gyp (the fallback
// build), or fails with a message that names the packages to install.
'use strict';
const { execFileSync } = require('node:child_process');

const MODULES = ['libavformat', 'libavcodec', 'libavutil', 'libswscale'];
const PACKAGES = 'libavformat-dev libavcodec-dev libavutil-dev libswscale-dev pkg-config';

const mode = process.argv[2];
if (mode !== '--cflags' && mode !== '--libs') {
  console.error('usage: libav-flags.js --cflags|--libs');
  process.exit(2);
}
try {
  const out = execFileSync('pkg-config', [mode, ...MODULES], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  process.stdout.write(out.trim().split(/\s+/).filter(Boolean).join('\n') + '\n');
} catch (err) {
  console.error(
    `ar-seg-native: libav (FFmpeg's libraries) was not found through pkg-config.\n` +
      `No prebuilt binary fits this platform, so the addon must be built from source.\n` +
      `On Debian/Ubuntu: sudo apt-get install ${PACKAGES}\n` +
      `(pkg-config said: ${String(err.stderr || err.message).trim()})`,
  );
  process.exit(1);
}
