/**
 * BullMQ and ioredis load on first use: together they take about 0.4 s to load, which every
 * `require('ar-seg-native')` and every `ar-seg` command would pay otherwise.
 */
export type Bullmq = typeof import('bullmq');
export type IORedisModule = typeof import('ioredis');

let bullmq: Promise<Bullmq> | undefined;
let ioredis: Promise<IORedisModule> | undefined;

export function loadBullmq(): Promise<Bullmq> {
  bullmq ??= import('bullmq');
  return bullmq;
}

export function loadIORedis(): Promise<IORedisModule> {
  ioredis ??= import('ioredis');
  return ioredis;
}
