'use strict';
/*
 * Splits an Annex-B H.264 stream into access units (what a camera driver, ROS 2
 * ffmpeg_image_transport or Foxglove's CompressedVideo send as one message each): a new unit
 * starts at an access unit delimiter, or at parameter sets / SEI / a slice with
 * first_mb_in_slice = 0 that follow a picture's slices.
 */

/** Offsets of the NAL units (the byte after each start code) and their types. */
function nalUnits(buf) {
  const units = [];
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      const start = i > 0 && buf[i - 1] === 0 ? i - 1 : i; // include a 4-byte start code's zero
      units.push({ start, header: i + 3, type: buf[i + 3] & 0x1f });
      i += 2;
    }
  }
  return units;
}

/**
 * Groups NAL units into access units. `classify(u)` says whether unit u is a slice and, if it
 * is, whether it is a picture's first; `opensUnit(u)` whether a non-slice unit starts a new
 * access unit always (a delimiter: 'always'), or only after a picture's slices ('afterSlice').
 */
function groupAccessUnits(buf, units, classify, opensUnit) {
  const aus = [];
  let auStart = null;
  let sawSlice = false;
  for (const u of units) {
    const { isSlice, firstSlice } = classify(u);
    const opens = opensUnit(u);
    const startsUnit = opens === 'always' || (sawSlice && (opens === 'afterSlice' || firstSlice));
    if (auStart === null) auStart = u.start;
    else if (startsUnit) {
      aus.push(buf.subarray(auStart, u.start));
      auStart = u.start;
      sawSlice = false;
    }
    if (isSlice) sawSlice = true;
  }
  if (auStart !== null) aus.push(buf.subarray(auStart));
  return aus;
}

function splitAccessUnits(buf) {
  return groupAccessUnits(
    buf,
    nalUnits(buf),
    (u) => {
      const isSlice = u.type === 1 || u.type === 5;
      // first_mb_in_slice is ue(v): 0 codes as a single '1' bit, the top bit of the byte after the header
      return { isSlice, firstSlice: isSlice && (buf[u.header + 1] & 0x80) !== 0 };
    },
    (u) => (u.type === 9 ? 'always' : u.type === 6 || u.type === 7 || u.type === 8 ? 'afterSlice' : null),
  );
}

/**
 * Splits an Annex-B HEVC stream into access units: a new unit starts at an access unit
 * delimiter (35), at parameter sets or a prefix SEI (32-34, 39) that follow a picture's slices,
 * or at a slice (types 0-31) with first_slice_segment_in_pic_flag set (the top bit after the
 * two-byte NAL header) that follows one.
 */
function splitHevcAccessUnits(buf) {
  const type = (u) => (buf[u.header] >> 1) & 0x3f;
  return groupAccessUnits(
    buf,
    nalUnits(buf),
    (u) => {
      const isSlice = type(u) < 32;
      return { isSlice, firstSlice: isSlice && (buf[u.header + 2] & 0x80) !== 0 };
    },
    (u) => (type(u) === 35 ? 'always' : (type(u) >= 32 && type(u) <= 34) || type(u) === 39 ? 'afterSlice' : null),
  );
}

/** Writes the HEVC stream of an mp4 as raw Annex-B (ffmpeg, which scripts/setup.sh installs). */
function hevcAnnexB(mp4, out) {
  require('node:child_process').execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-i', mp4, '-c', 'copy', '-bsf:v', 'hevc_mp4toannexb', '-f', 'hevc', out],
  ]);
}

module.exports = { splitAccessUnits, splitHevcAccessUnits, hevcAnnexB, nalUnits };
