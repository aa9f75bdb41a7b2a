/**
 * Where the queue lives: a Redis URL and a queue name, and the connection settings of each kind
 * of user. Submitters and readers (submit, status, results) fail fast with ERR_QUEUE when Redis
 * cannot be reached; workers are long-running services and reconnect for as long as it takes
 * (a Redis restart must not end them).
 *
 * URLs: redis://[[user]:password@]host[:port][/db] or rediss://... (TLS, checked against the
 * system's CAs and NODE_EXTRA_CA_CERTS). ioredis parses them.
 */
import type { Queue } from 'bullmq';
import type IORedis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { loadIORedis } from './bullmq';
import { ArSegError, ErrorCodes, invalidArg } from '../errors';

/** The queue's name when none is given. */
export const DEFAULT_QUEUE_NAME = 'ar-seg';

/** A queue: its Redis and its name. Workers and submitters of one queue must agree on both. */
export interface QueueTarget {
  /** redis://[[user]:password@]host[:port][/db], or rediss:// for TLS. */
  redis: string;
  /** The queue's name (BullMQ's): several independent queues may share one Redis. Default 'ar-seg'. */
  queue?: string;
}

/** Checks a Redis URL and a queue name; ERR_INVALID_ARG when either is malformed. */
export function checkTarget(t: QueueTarget): { url: URL; queue: string } {
  if (typeof t?.redis !== 'string' || t.redis === '')
    throw invalidArg("give the queue's Redis as a URL: redis://host:6379 or rediss://host:6380 (TLS)");
  let url: URL;
  try {
    url = new URL(t.redis);
  } catch {
    throw invalidArg(`${redactRedisUrl(t.redis)}: not a URL (redis://host:6379 or rediss://host:6380)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw invalidArg(`${redactRedisUrl(t.redis)}: the scheme must be redis:// or rediss:// (TLS)`);
  if (!url.hostname) throw invalidArg(`${redactRedisUrl(t.redis)}: no host`);
  const queue = t.queue ?? DEFAULT_QUEUE_NAME;
  if (typeof queue !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(queue))
    throw invalidArg(`queue name ${JSON.stringify(queue)}: letters, digits, '_', '.', '-' (1 to 100)`);
  return { url, queue };
}

/** The URL with its password replaced by '***', for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // Not a URL: everything between the scheme's '//' and the last '@' may be a secret.
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1***@');
  }
}

/** Connection options for submitters and readers: a few quick retries, then ERR_QUEUE. */
export function clientRedisOptions(): RedisOptions {
  return {
    connectTimeout: 5000,
    maxRetriesPerRequest: 2,
    // Up to three reconnection attempts 0.2, 0.4, 0.6 s apart, then give up.
    retryStrategy: (times: number) => (times > 3 ? null : 200 * times),
  };
}

/**
 * Connection options for workers: reconnect (backing off to 5 s) until `giveUp()` says otherwise
 * (a closing worker that waited long enough), and never fail a command for want of a connection
 * (BullMQ's blocking connections require it).
 */
export function workerRedisOptions(giveUp: () => boolean = () => false): RedisOptions {
  return {
    connectTimeout: 10000,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => (giveUp() ? null : Math.min(250 * 2 ** Math.min(times, 5), 5000)),
  };
}

/** ERR_QUEUE for a failed Redis operation, naming the server (without its password). */
export function queueError(err: unknown, target: QueueTarget, doing: string): ArSegError {
  if (err instanceof ArSegError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ArSegError(ErrorCodes.QUEUE, `${doing} on ${redactRedisUrl(target.redis)}: ${message}`, { cause: err });
}

/**
 * A connected client for submit, status and results. Resolves once Redis answers; ERR_QUEUE
 * when it cannot be reached.
 */
export async function connectClient(t: QueueTarget): Promise<IORedis> {
  checkTarget(t);
  const { default: Redis } = await loadIORedis();
  const redis = new Redis(t.redis, { ...clientRedisOptions(), lazyConnect: true });
  let lastError: unknown;
  redis.on('error', (err) => {
    lastError = err;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw queueError(lastError ?? err, t, 'connecting to Redis');
  }
  return redis;
}

/** Closes a queue and its client connection, whatever state they are in. */
export async function closeQuietly(queue: Queue, redis: IORedis): Promise<void> {
  await queue.close().catch(() => undefined);
  redis.disconnect();
}
