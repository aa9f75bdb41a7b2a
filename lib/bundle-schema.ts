/**
 * JSON Schema of a bundle manifest (arseg.json), format version 1. Checked with ajv. The fields
 * that describe the pipeline (input.lrInput, networks.lrDecoder, motion, creff.sampling,
 * logitsUpsampling) are optional; their defaults are this project's own choices (bundle.ts,
 * PIPELINE_DEFAULTS), so manifests written before they existed load unchanged.
 */
const conv = {
  type: 'object',
  required: ['weight', 'bias'],
  additionalProperties: false,
  properties: { weight: { type: 'string', minLength: 1 }, bias: { type: 'string', minLength: 1 } },
} as const;

const triple = { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 } as const;

export const bundleSchema = {
  $id: 'https://ar-seg-native/bundle.schema.json',
  type: 'object',
  required: [
    'format',
    'formatVersion',
    'name',
    'classes',
    'input',
    'networks',
    'feature',
    'creff',
    'lrScale',
    'keyframeInterval',
  ],
  additionalProperties: false,
  properties: {
    format: { const: 'ar-seg-bundle' },
    formatVersion: { const: 1 },
    name: { type: 'string', minLength: 1 },
    description: { type: 'string' },
    classes: {
      type: 'array',
      minItems: 1,
      maxItems: 255,
      items: {
        type: 'object',
        required: ['name', 'color'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1 },
          color: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 255 }, minItems: 3, maxItems: 3 },
        },
      },
    },
    ignoreIndex: { type: ['integer', 'null'], minimum: 0, maximum: 255 },
    input: {
      type: 'object',
      required: ['mean', 'std', 'channelOrder'],
      additionalProperties: false,
      properties: {
        mean: triple,
        std: { ...triple, items: { type: 'number', exclusiveMinimum: 0 } },
        channelOrder: { enum: ['rgb', 'bgr'] },
        sizeMultiple: { type: 'integer', minimum: 1, maximum: 256 },
        lrInput: { enum: ['frame-swscale', 'hr-tensor-align-corners'] },
      },
    },
    networks: {
      type: 'object',
      required: ['hrEncoder', 'lrEncoder', 'decoder'],
      additionalProperties: false,
      properties: {
        hrEncoder: { type: 'string', minLength: 1 },
        lrEncoder: { type: 'string', minLength: 1 },
        decoder: { type: 'string', minLength: 1 },
        lrDecoder: { type: 'string', minLength: 1 },
      },
    },
    motion: {
      type: 'object',
      additionalProperties: false,
      properties: {
        composition: { enum: ['bilinear', 'official'] },
        resize: { enum: ['cell-centres', 'align-corners', 'nearest'] },
      },
    },
    feature: {
      type: 'object',
      required: ['channels', 'stride'],
      additionalProperties: false,
      properties: { channels: { type: 'integer', minimum: 1 }, stride: { type: 'integer', minimum: 1, maximum: 64 } },
    },
    creff: {
      type: 'object',
      required: ['window', 'q', 'k', 'v'],
      additionalProperties: false,
      properties: {
        window: { type: 'integer', minimum: 1, maximum: 31 },
        sampling: { enum: ['exact', 'official'] },
        q: conv,
        k: conv,
        v: conv,
      },
    },
    logitsUpsampling: { enum: ['align-corners', 'half-pixel', 'align-corners-via-input', 'half-pixel-via-stride'] },
    lrScale: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    keyframeInterval: { type: 'integer', minimum: 1 },
  },
} as const;
