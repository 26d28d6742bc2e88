import { largeArray } from './large-array.js'

/**
 * Counts per slot (integers from `none` to `none` + 2^31 - 1, `none` meaning nothing): two bytes a
 * slot while every count stored fits in 16 bits, as an epoch's uptime observations do (challenges,
 * round trips in ms, distances in km), four from the first one that does not. An epoch of a million
 * nodes and three verifiers keeps four such tables: 24 MB instead of 48.
 */
export class CountTable {
  /** Each slot's count less `none` (0: none). */
  private words: Uint16Array | Int32Array
  private wide = false

  /**
   * @param length slots, all `none` at first
   * @param none what an empty slot reads as (0 or -1)
   */
  constructor(
    length: number,
    private readonly none: number,
  ) {
    this.words = largeArray(Uint16Array, length)
  }

  get(at: number): number {
    return (this.words[at] as number) + this.none
  }

  /** @throws RangeError when `value` is not an integer from `none` to `none` + 2^31 - 1. */
  set(at: number, value: number): void {
    const stored = value - this.none
    if (!Number.isInteger(stored) || stored < 0 || stored > 0x7fffffff)
      throw new RangeError(`not a count: ${value}`)
    if (stored > 0xffff && !this.wide) {
      const words = largeArray(Int32Array, this.words.length)
      words.set(this.words)
      this.words = words
      this.wide = true
    }
    this.words[at] = stored
  }

  /** Copies `length` slots from `from` to `to` (as `copyWithin`). */
  move(to: number, from: number, length: number): void {
    this.words.copyWithin(to, from, from + length)
  }
}
