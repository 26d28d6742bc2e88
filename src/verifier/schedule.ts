import { createHash } from 'node:crypto'

/**
 * When a verifier challenges a node during an epoch. The times follow from the epoch's seed, the hash
 * of the epoch's first block, which nobody knows before that block exists: a node cannot be online
 * only when it expects to be asked, and a verifier cannot pick convenient times. Anyone can recompute
 * every verifier's schedule once the block is known.
 */

/** Options of {@link challengeTimes}. */
export interface ScheduleInput {
  /** The epoch's seed: the hash of its first block (0x + 64 hex). */
  seed: string
  verifier: string
  node: string
  /** The epoch's start and length, in ms. */
  epochStartMs: number
  epochDurationMs: number
  /** Challenges per epoch. */
  count: number
  /**
   * The part of the epoch challenges fall in, as fractions of its length: after `fromFraction` (the
   * seed's block has to exist first) and before `toFraction` (observations must be out before the
   * epoch closes). Default 0.1 and 0.8.
   */
  fromFraction?: number
  toFraction?: number
}

/**
 * The `count` challenge times (ms, ascending) of `verifier` for `node` in the epoch: challenge `i`
 * falls in the `i`-th of `count` equal slots of the window, at an offset drawn from
 * sha256(seed ‖ verifier ‖ node ‖ i). Equal slots spread the challenges over the epoch, so that a
 * node offline for part of it misses that part of its challenges.
 */
export function challengeTimes(input: ScheduleInput): number[] {
  if (!/^0x[0-9a-fA-F]{64}$/.test(input.seed)) throw new RangeError('seed must be a 32-byte hex hash')
  if (!Number.isSafeInteger(input.count) || input.count < 1) throw new RangeError('count must be at least 1')
  const from = input.fromFraction ?? 0.1
  const to = input.toFraction ?? 0.8
  if (!(from >= 0 && from < to && to <= 1)) throw new RangeError('need 0 <= fromFraction < toFraction <= 1')
  // Whole ms: the window's bounds round the same way everywhere.
  const start = input.epochStartMs + Math.floor(input.epochDurationMs * from)
  const end = input.epochStartMs + Math.floor(input.epochDurationMs * to)
  const slot = Math.floor((end - start) / input.count)
  if (slot < 1) throw new RangeError('the window is too short for that many challenges')
  const times: number[] = []
  for (let i = 0; i < input.count; i++) {
    const digest = createHash('sha256')
      .update(`meshwork-schedule-v1\n${input.seed.toLowerCase()}\n${input.verifier}\n${input.node}\n${i}`)
      .digest()
    // 48 bits of the digest, reduced to the slot (the bias of 2^48 mod slot is negligible).
    const draw = digest.readUIntBE(0, 6) % slot
    times.push(start + i * slot + draw)
  }
  return times
}
