'use strict';
// A GPU's peak FP32 rate and memory bandwidth from what the driver reports (cudaDriver().driver
// .devices: SM count, SM clock, memory clock, bus width), for the "achieved / peak" columns of
// bench/creff.js --device cuda and scripts/gpu-check.sh. FP32 lanes per SM by architecture
// (CUDA C Programming Guide, "Arithmetic Instructions"): 64 on Turing (7.5) and A100 (8.0), 128
// from Ampere consumer parts (8.6) through Hopper, Ada and Blackwell.

function fp32LanesPerSm(computeCapability) {
  const [major, minor] = String(computeCapability).split('.').map(Number);
  if (major < 7 || (major === 7 && minor < 5)) return 64;
  if (major === 7) return 64;
  if (major === 8 && minor === 0) return 64;
  return 128;
}

/**
 * { fp32Flops, bandwidth } in FLOP/s and bytes/s (null where the driver did not say), with how
 * each was computed.
 */
function gpuPeak(device) {
  const lanes = fp32LanesPerSm(device.computeCapability);
  const fp32Flops =
    device.clockKHz > 0 && device.multiprocessors > 0
      ? device.multiprocessors * lanes * 2 * device.clockKHz * 1e3
      : null;
  // double data rate: two transfers per memory clock on each of the bus's bits
  const bandwidth =
    device.memoryClockKHz > 0 && device.memoryBusBits > 0
      ? 2 * device.memoryClockKHz * 1e3 * (device.memoryBusBits / 8)
      : null;
  return {
    fp32Flops,
    bandwidth,
    how:
      `${device.multiprocessors} SMs x ${lanes} FP32 lanes x 2 (FMA) x ${(device.clockKHz / 1e6).toFixed(2)} GHz; ` +
      `2 x ${(device.memoryClockKHz / 1e6).toFixed(2)} GHz x ${device.memoryBusBits} bits`,
  };
}

module.exports = { gpuPeak, fp32LanesPerSm };
