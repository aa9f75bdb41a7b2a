/**
 * Bytes across the PCIe bus per frame with `device: 'cuda'`, computed from the shapes: what
 * ONNX Runtime copies (onnxruntime-node hands every input and output over in host memory) and
 * what ar-seg-native copies, before the device path (CReFF given the raw keyframe each frame,
 * the fused feature brought back, the decoder run by ONNX Runtime, labels made on the CPU) and
 * with it (the keyframe kept on the device for its GOP, only the labels coming back). The
 * device path's own share is what SegmentResult.bus measures; the tests hold the two equal.
 * Per frame in steady state: once per labels size, not per frame, the device path also sends up
 * that resize's tap tables (36 bytes per output row and column, a few kB), left out here.
 */
import type { BundleManifest } from './bundle';

/** The shapes that decide the traffic: the frame, the networks' inputs, the feature, the GOP. */
export interface BusShapes {
  /** The frame's width (the labels' size). */
  frameWidth: number;
  /** The frame's height. */
  frameHeight: number;
  /** The HR network input's width (the frame resized to the bundle's size multiple). */
  hrWidth: number;
  /** The HR network input's height. */
  hrHeight: number;
  /** The LR network input's width. */
  lrWidth: number;
  /** The LR network input's height. */
  lrHeight: number;
  /** Feature channels. */
  channels: number;
  /** The feature's stride against the network input. */
  stride: number;
  /** Classes (logit planes). */
  classes: number;
  /** Keyframe interval (mode 'ar'). */
  interval: number;
}

/** Bytes one way and the other. */
export interface Traffic {
  /** Host to device. */
  toDevice: number;
  /** Device to host. */
  toHost: number;
}

/** One frame's traffic, by who copies. */
export interface FrameTraffic {
  /** ONNX Runtime's copies (the encoders; before the device path, the decoder too). */
  onnxRuntime: Traffic;
  /** ar-seg-native's copies (CReFF's inputs and output before; the device path's after). */
  arSeg: Traffic;
  /** The sum, both ways. */
  total: number;
}

/** Per frame, by kind of frame. */
export interface TrafficByFrame {
  /** A frame of mode 'hr'. */
  hr: FrameTraffic;
  /** A frame of mode 'lr'. */
  lr: FrameTraffic;
  /** A keyframe of mode 'ar'. */
  arKeyframe: FrameTraffic;
  /** A fused frame of mode 'ar'. */
  arFused: FrameTraffic;
  /** Mode 'ar', the mean over a GOP of `interval` frames. */
  ar: FrameTraffic;
}

/** The traffic per frame before and after the device path. */
export interface BusReport {
  /** What it was computed from. */
  shapes: BusShapes;
  /** Device 'cuda' before the device path. */
  before: TrafficByFrame;
  /** With the device path. */
  after: TrafficByFrame;
}

const F = 4; // bytes per float32

/** The network input size for a frame dimension (the video reader's rounding, frame_pipeline.cc). */
export function inputSize(size: number, scale: number, multiple: number): number {
  const n = Math.round((size * scale) / multiple) * multiple;
  return n < multiple ? multiple : n;
}

/** The shapes of a bundle at a frame size. */
export function busShapes(
  manifest: BundleManifest,
  width: number,
  height: number,
  options: { scale?: number; interval?: number } = {},
): BusShapes {
  const multiple = manifest.input.sizeMultiple ?? 8;
  const scale = options.scale ?? manifest.lrScale;
  return {
    frameWidth: width,
    frameHeight: height,
    hrWidth: inputSize(width, 1, multiple),
    hrHeight: inputSize(height, 1, multiple),
    lrWidth: inputSize(width, scale, multiple),
    lrHeight: inputSize(height, scale, multiple),
    channels: manifest.feature.channels,
    stride: manifest.feature.stride,
    classes: manifest.classes.length,
    interval: options.interval ?? manifest.keyframeInterval,
  };
}

function frame(onnxRuntime: Traffic, arSeg: Traffic): FrameTraffic {
  return { onnxRuntime, arSeg, total: onnxRuntime.toDevice + onnxRuntime.toHost + arSeg.toDevice + arSeg.toHost };
}

function add(a: Traffic, b: Traffic): Traffic {
  return { toDevice: a.toDevice + b.toDevice, toHost: a.toHost + b.toHost };
}

function gopMean(key: FrameTraffic, fused: FrameTraffic, interval: number): FrameTraffic {
  const mean = (k: Traffic, f: Traffic): Traffic => ({
    toDevice: (k.toDevice + (interval - 1) * f.toDevice) / interval,
    toHost: (k.toHost + (interval - 1) * f.toHost) / interval,
  });
  return frame(mean(key.onnxRuntime, fused.onnxRuntime), mean(key.arSeg, fused.arSeg));
}

/**
 * Bytes per frame, before and after the device path. logits: the logits are asked for (then
 * they come back too, at the feature's size).
 */
export function busBytes(s: BusShapes, options: { logits?: boolean } = {}): BusReport {
  const C = s.channels;
  const hrFeature = C * (s.hrHeight / s.stride) * (s.hrWidth / s.stride) * F;
  const lrFeature = C * (s.lrHeight / s.stride) * (s.lrWidth / s.stride) * F;
  const hrPlane = (s.hrHeight / s.stride) * (s.hrWidth / s.stride);
  const lrPlane = (s.lrHeight / s.stride) * (s.lrWidth / s.stride);
  const hrLogits = s.classes * hrPlane * F;
  const lrLogits = s.classes * lrPlane * F;
  const motion = 2 * hrPlane * F;
  const labels = s.frameWidth * s.frameHeight;
  const weights = 3 * 10 * C * F; // q, k, v: C x 9 weights and C biases each
  const hrEncoder: Traffic = { toDevice: 3 * s.hrWidth * s.hrHeight * F, toHost: hrFeature };
  const lrEncoder: Traffic = { toDevice: 3 * s.lrWidth * s.lrHeight * F, toHost: lrFeature };
  const none: Traffic = { toDevice: 0, toHost: 0 };

  // Before: ONNX Runtime's decoder (feature up, logits down); CReFF through CReFF.run (LR
  // feature, raw keyframe, motion and weights up, the fused feature down); labels on the CPU.
  const decoderHr: Traffic = { toDevice: hrFeature, toHost: hrLogits };
  const decoderLr: Traffic = { toDevice: lrFeature, toHost: lrLogits };
  const bHr = frame(add(hrEncoder, decoderHr), none);
  const bLr = frame(add(lrEncoder, decoderLr), none);
  const bFused = frame(add(lrEncoder, decoderHr), {
    toDevice: lrFeature + hrFeature + motion + weights,
    toHost: hrFeature,
  });

  // After: the device path (feature up, labels down; a fused frame sends the LR feature and the
  // motion, the keyframe being on the device since its own frame).
  const back = (logitBytes: number) => labels + (options.logits ? logitBytes : 0);
  const aHr = frame(hrEncoder, { toDevice: hrFeature, toHost: back(hrLogits) });
  const aLr = frame(lrEncoder, { toDevice: lrFeature, toHost: back(lrLogits) });
  const aFused = frame(lrEncoder, { toDevice: lrFeature + motion, toHost: back(hrLogits) });

  return {
    shapes: s,
    before: { hr: bHr, lr: bLr, arKeyframe: bHr, arFused: bFused, ar: gopMean(bHr, bFused, s.interval) },
    after: { hr: aHr, lr: aLr, arKeyframe: aHr, arFused: aFused, ar: gopMean(aHr, aFused, s.interval) },
  };
}
