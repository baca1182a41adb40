import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { LoginFailedError, type ChannelAdapter } from '../channels/adapter.js';
import { clearChannelPaused, markChannelPaused, pausedChannels } from '../src/domain/channel-pause.js';
import type { Logger } from '../src/log.js';

/** How often a paused channel's login is tried again. */
const RECHECK_MS = 60_000;

export interface ChannelGuard {
  /** Pauses the channel's queue (every worker, every process) and records why. */
  pause(reason: string): Promise<void>;
  /** Verifies the transport: a refused login pauses the channel, a working one resumes it. */
  check(): Promise<void>;
  stop(): void;
}

/**
 * Keeps a channel whose login can be refused (SMTP) from failing its list:
 * verified when the worker starts, paused on a refused login, verified again
 * every minute while paused, resumed as soon as a login works (the same
 * deliveries then go out).
 */
export function guardChannel(opts: { channel: string; adapter: ChannelAdapter; queue: Queue; redis: Redis; prefix: string; log: Logger }): ChannelGuard {
  const { channel, adapter, queue, redis, prefix, log } = opts;
  const pause = async (reason: string) => {
    await markChannelPaused(redis, prefix, channel, reason);
    await queue.pause();
  };
  const check = async () => {
    if (!adapter.pausesOnLoginFailure) return;
    try {
      await adapter.verify();
    } catch (err) {
      if (err instanceof LoginFailedError) {
        log.error({ channel, reason: err.message }, 'login refused: channel paused until it works');
        await pause(err.message);
      } else {
        log.warn({ channel, err: err instanceof Error ? err.message : String(err) }, 'transport check failed');
      }
      return;
    }
    if (await clearChannelPaused(redis, prefix, channel)) {
      await queue.resume();
      log.info({ channel }, 'login works again: channel resumed');
    }
  };
  const run = () => check().catch((err: unknown) => log.warn({ channel, err: err instanceof Error ? err.message : String(err) }, 'transport check failed'));
  void run();
  const timer = setInterval(() => {
    void pausedChannels(redis, prefix)
      .then((paused) => (paused[channel] ? run() : undefined))
      .catch(() => undefined);
  }, RECHECK_MS);
  timer.unref();
  return { pause, check, stop: () => clearInterval(timer) };
}
