/**
 * ar-seg-native: AR-Seg (CVPR 2023) for Node.js: compressed-video reading with motion vectors
 * straight from libavcodec, and the CReFF fusion kernels.
 */
export { openVideo, VideoReader } from './video';
export type { OpenOptions, VideoInfo, ReaderStats } from './video';
export { createPacketReader, PacketReader } from './packet-reader';
export type { PacketReaderOptions } from './packet-reader';
export { DEFAULT_PIXEL_LIMIT, VECTOR_COLUMNS, VECTOR_REF_NONE, VECTOR_REF_UNKNOWN } from './frame';
export type {
  AdaptiveKeyframes,
  Composition,
  KeyframePolicy,
  FrameOptions,
  MotionField,
  MotionMode,
  MotionSource,
  MotionFill,
  MotionSourceOption,
  PictType,
  Tensor,
  TensorSpec,
  VideoFrame,
} from './frame';
export { sampleMotion, resizeMotion, composeMotion, estimateMotion, MOTION_RESIZES } from './motion';
export type { EstimateMotionOptions, EstimatedMotion, MotionResize } from './motion';
export { releaseMotion } from './recycle';
export type { FrameMotion } from './recycle';
export { encodeNpy, writeNpy } from './npy';
export type { NpyArray } from './npy';
export { ArSeg } from './pipeline';
export type {
  ArSegOptions,
  Segmentation,
  SegmentationStats,
  SegmentMode,
  SegmentOptions,
  SegmentResult,
  StageTimings,
} from './pipeline';
export { PacketQueue } from './packet-source';
export type { Packet, PacketSource } from './packet-source';
export type { DropPolicy } from './frame-intake';
export type { AcrossKeyframes } from './keyframe-table';
export type { AppliedPriority, ThreadPriority } from './network-thread';
export { Bundle, PIPELINE_DEFAULTS, bundlePipeline } from './bundle';
export type {
  BundleManifest,
  BundleClass,
  BundleConvFiles,
  BundleOptions,
  BundlePipeline,
  DecoderChoice,
  ExecutionDevice,
  LabelsFirstResize,
  LabelsResize,
  LogitsUpsampling,
  LrInput,
  MotionComposition,
} from './bundle';
export { PointwiseHead, pointwiseHeadFromOnnx, readPointwiseHead } from './pointwise-head';
export type { HeadDetection, Logits, PointwiseWeights } from './pointwise-head';
export { CReFF, Keyframe, creffFlops } from './creff';
export type { CReFFWeights, CReFFRunOptions, CReFFResult, CReFFDevice, DepthwiseConv, FeatureTensor } from './creff';
export { ConfusionMatrix, DistanceMetrics, iouFromConfusion, meanOf, IGNORE_LABEL } from './metrics';
export type { DistanceReport, DistanceMetricsJson } from './metrics';
export { evaluate, evaluateClip, formatEvalMarkdown, EVAL_MODES } from './evaluate';
export type { EvalReport, EvaluateOptions, ClipModeResult, Protocol } from './evaluate';
export { resolveClips, listLabelFiles, readLabelFile, ClipLabels } from './dataset';
export type { LabelledClip, DatasetSplits } from './dataset';
export { doctor, formatDoctor, cudaVerdict, ONNX_RUNTIME_DRIVER_FLOOR } from './doctor';
export type {
  CudaFacts,
  DeviceVerdict,
  DoctorAddon,
  DoctorCheck,
  DoctorCpu,
  DoctorGpu,
  DoctorLibav,
  DoctorLibrary,
  DoctorOnnxRuntime,
  DoctorReport,
} from './doctor';
export type { NativeCudaBuild, NativeDriverFacts, NativeGpu } from './native';
export { busBytes, busShapes } from './bus-bytes';
export type { BusReport, BusShapes, FrameTraffic, Traffic, TrafficByFrame } from './bus-bytes';
export { ArSegError, ErrorCodes, toArSegError } from './errors';
export type { ArSegErrorOptions, ErrorCode } from './errors';
export { writeFileAtomic } from './atomic-write';
export { outputError, prepareOutputDir, writeOutput } from './output';
export { submit, Worker, status, waitForRun, results, DEFAULT_QUEUE_NAME } from './queue';
export type {
  SubmitOptions,
  SubmitResult,
  WorkerOptions,
  WorkerEvent,
  WorkerReadyEvent,
  JobEventBase,
  JobStartEvent,
  JobDoneEvent,
  JobFailedEvent,
  JobStoppedEvent,
  WorkerErrorEvent,
  WorkerClosingEvent,
  WorkerClosedEvent,
  JobReturn,
  RunStatus,
  JobStatus,
  JobStateName,
  JobProgress,
  JobFailure,
  ResultsOptions,
  RunResults,
  EvalRunResults,
  SegmentRunResults,
  SegmentClipResult,
  QueueTarget,
} from './queue';

import { addon } from './native';
/** Versions of the libav libraries the addon was built against. */
export function libavVersions(): Record<string, string | number | boolean> {
  return { ...addon().libav };
}
