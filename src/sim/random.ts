import { createHash } from 'node:crypto'
import { mulberry32 } from '../core/prng.js'

/**
 * A seeded source of numbers for the simulator, built on {@link mulberry32}. Each part of a run
 * draws from its own stream, named by a label (`stream(seed, 'placement')`), so adding draws to one
 * part never shifts another's: a scenario stays comparable to itself across changes.
 */
export class SimRandom {
  readonly #next: () => number

  constructor(seed32: number) {
    this.#next = mulberry32(seed32)
  }

  /** A number in [0, 1). */
  uniform(): number {
    return this.#next() / 0x1_0000_0000
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.uniform() * (max - min + 1))
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.uniform() < p
  }

  /** An index drawn in proportion to `weights` (non-negative, not all zero), by their running sums. */
  weighted(cumulative: readonly number[]): number {
    const total = cumulative[cumulative.length - 1] as number
    const x = this.uniform() * total
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cumulative[mid] as number) > x) hi = mid
      else lo = mid + 1
    }
    return lo
  }

  /** An exponentially distributed number with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.uniform()) * mean
  }
}

/** 32 bits of sha256(`meshwork-sim`, seed, labels…): the seed of one named stream. */
export function streamSeed(seed: number, ...labels: (string | number)[]): number {
  return createHash('sha256')
    .update(`meshwork-sim\n${seed}\n${labels.join('\n')}`)
    .digest()
    .readUInt32BE(0)
}

/** The random stream `labels` of a run seeded with `seed`. */
export function stream(seed: number, ...labels: (string | number)[]): SimRandom {
  return new SimRandom(streamSeed(seed, ...labels))
}

/** 32 deterministic bytes for keys of simulated identities (never use these keys outside a simulation). */
export function seedBytes(seed: number, ...labels: (string | number)[]): Uint8Array {
  return new Uint8Array(
    createHash('sha256')
      .update(`meshwork-sim-key\n${seed}\n${labels.join('\n')}`)
      .digest(),
  )
}
