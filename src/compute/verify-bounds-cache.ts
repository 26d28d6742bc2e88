import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import { DEFAULT_VERIFY_BOUNDS, type VerifyBounds } from './verification.js'

/** One reading of NetworkParams: the set in force and the chain's clock when it was read. */
export interface VerifyBoundsReading {
  /** The epoch the chain's clock was in (the set of an epoch is final once it has a block). */
  epoch: bigint
  version: number
  bounds: VerifyBounds
  /** The timestamp of the block read at, seconds. */
  chainTime: number
}

/** The bounds a client uses now, and where they come from. */
export interface CurrentVerifyBounds {
  bounds: VerifyBounds
  /**
   * `chain`: NetworkParams' set for `epoch`; `stale`: the last set read, the chain not answering
   * since; `initial`: {@link DEFAULT_VERIFY_BOUNDS} (no chain, or it never answered).
   */
  source: 'chain' | 'stale' | 'initial'
  epoch?: bigint
  version?: number
}

/** Options of {@link VerifyBoundsCache}. */
export interface VerifyBoundsCacheInit {
  /** The network's epoch clock (the network file's `parameters`), seconds. */
  genesisTime: number
  epochDuration: number
  /** After a failed read, how long to use the fallback before asking again (default 30 s). */
  retryMs?: number
  /** A read slower than this counts as failed (default 5 s), so a dead RPC does not hold jobs. */
  readTimeoutMs?: number
}

/** What {@link VerifyBoundsCache} uses; without `read` there is no chain and the initial set applies. */
export interface VerifyBoundsCacheComponents {
  read?: () => Promise<VerifyBoundsReading>
  clock: Pick<Clock, 'now' | 'setTimer'>
  logger?: Pick<Logger, 'warn' | 'debug'>
}

/**
 * The compute re-run rule's bounds (`computeVerifyMinPpm` / `computeVerifyMaxPpm`) as the chain's
 * NetworkParams holds them for the current epoch, read once per epoch: a reading is kept until the
 * epoch it was read in ends by the chain's clock (the local clock, corrected by the block timestamp
 * of the read), so a governance change applies from the epoch it is scheduled for, and no job waits
 * on the chain otherwise. Concurrent callers share one read.
 *
 * When there is no chain (no `read`, e.g. a purely local use) the bounds are those of
 * `INITIAL_NETWORK_PARAMS` ({@link DEFAULT_VERIFY_BOUNDS}). When a read fails or takes longer than
 * `readTimeoutMs`, the last set read is kept (or the initial one, before any answered), a warning is
 * logged, and the chain is asked again after `retryMs`.
 *
 * @example
 * const cache = new VerifyBoundsCache(network.parameters, { read: chainVerifyBounds(reader), clock: systemClock })
 * const { bounds } = await cache.current()
 */
export class VerifyBoundsCache {
  readonly #init: Required<VerifyBoundsCacheInit>
  readonly #components: VerifyBoundsCacheComponents
  #current: CurrentVerifyBounds = { bounds: DEFAULT_VERIFY_BOUNDS, source: 'initial' }
  /** Local time (ms) until which `#current` holds; -Infinity before the first read. */
  #validUntil = Number.NEGATIVE_INFINITY
  #inflight: Promise<CurrentVerifyBounds> | undefined
  #reads = 0

  constructor(init: VerifyBoundsCacheInit, components: VerifyBoundsCacheComponents) {
    this.#init = { retryMs: 30_000, readTimeoutMs: 5_000, ...init }
    this.#components = components
  }

  /** How many times the chain was asked (for tests and metrics). */
  get reads(): number {
    return this.#reads
  }

  /** The bounds in force now; reads the chain only when the cached epoch has ended. Never rejects. */
  current(): Promise<CurrentVerifyBounds> {
    const { read, clock } = this.#components
    if (read === undefined || clock.now() < this.#validUntil) return Promise.resolve(this.#current)
    this.#inflight ??= this.#refresh(read).finally(() => {
      this.#inflight = undefined
    })
    return this.#inflight
  }

  async #refresh(read: () => Promise<VerifyBoundsReading>): Promise<CurrentVerifyBounds> {
    const { clock, logger } = this.#components
    const asked = clock.now()
    this.#reads++
    let timer: { cancel(): void } | undefined
    try {
      const r = await Promise.race([
        read(),
        new Promise<never>((_, reject) => {
          timer = clock.setTimer(this.#init.readTimeoutMs, () =>
            reject(new Error(`no answer within ${this.#init.readTimeoutMs} ms`)),
          )
        }),
      ])
      const { genesisTime, epochDuration } = this.#init
      const endsIn = genesisTime + (Number(r.epoch) + 1) * epochDuration - r.chainTime
      this.#current = { bounds: r.bounds, source: 'chain', epoch: r.epoch, version: r.version }
      this.#validUntil = asked + Math.max(0, endsIn) * 1000
      logger?.debug(
        { epoch: r.epoch, version: r.version, ...r.bounds },
        'read the compute verification bounds from NetworkParams',
      )
    } catch (err) {
      if (this.#current.source === 'chain') this.#current = { ...this.#current, source: 'stale' }
      this.#validUntil = clock.now() + this.#init.retryMs
      logger?.warn(
        { err, source: this.#current.source, ...this.#current.bounds, retryMs: this.#init.retryMs },
        'could not read the compute verification bounds from the chain; using the fallback',
      )
    } finally {
      timer?.cancel()
    }
    return this.#current
  }
}
