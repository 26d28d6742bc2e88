import { largeArray } from './large-array.js'

/**
 * Dense indices for string keys (peer ids, addresses): an open-addressing hash table over typed
 * arrays. At a million keys it builds and looks up several times faster than a `Map` (whose
 * per-entry objects and rehashing dominate at that size), which is what settling an epoch of a
 * million operators needs.
 */
export class KeyIndex {
  /** The keys, by index. */
  readonly keys: string[] = []
  /**
   * Two 32-bit words a slot: the key's index (-1: empty) and its hash, side by side so that a probe
   * reads one cache line (at a million keys the table is 16 MB and every probe would miss twice).
   */
  private table: Int32Array
  private mask: number

  constructor(expected = 16) {
    let capacity = 16
    while (capacity < 2 * expected) capacity <<= 1
    this.table = emptyTable(capacity)
    this.mask = capacity - 1
  }

  get size(): number {
    return this.keys.length
  }

  /** The index of `key`, or -1. */
  get(key: string): number {
    const h = hashOf(key)
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = this.table[2 * slot] as number
      if (at < 0) return -1
      if (this.table[2 * slot + 1] === h && this.keys[at] === key) return at
    }
  }

  /** The index of `key`, adding it (with the next index) when new. */
  add(key: string): number {
    const h = hashOf(key)
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = this.table[2 * slot] as number
      if (at < 0) {
        const index = this.keys.length
        this.keys.push(key)
        this.table[2 * slot] = index
        this.table[2 * slot + 1] = h
        if (4 * this.keys.length > this.table.length) this.grow()
        return index
      }
      if (this.table[2 * slot + 1] === h && this.keys[at] === key) return at
    }
  }

  /** A copy of this index (the same keys at the same indices), to grow apart from it. */
  clone(): KeyIndex {
    const copy = new KeyIndex()
    for (const key of this.keys) copy.keys.push(key)
    copy.table = largeArray(Int32Array, this.table.length)
    copy.table.set(this.table)
    copy.mask = this.mask
    return copy
  }

  private grow(): void {
    const capacity = this.table.length
    const table = emptyTable(capacity)
    const mask = capacity - 1
    for (let old = 0; old < this.table.length; old += 2) {
      const at = this.table[old] as number
      if (at < 0) continue
      const h = this.table[old + 1] as number
      let slot = h & mask
      while ((table[2 * slot] as number) >= 0) slot = (slot + 1) & mask
      table[2 * slot] = at
      table[2 * slot + 1] = h
    }
    this.table = table
    this.mask = mask
  }
}

/** A table of `capacity` empty slots (two words each: index -1, hash 0). */
function emptyTable(capacity: number): Int32Array {
  const table = largeArray(Int32Array, 2 * capacity)
  for (let i = 0; i < table.length; i += 2) table[i] = -1
  return table
}

/**
 * Dense indices for integer keys in [0, 2^31) (H3 cell groups): an open-addressing hash table over
 * typed arrays, without a `Map`'s per-entry objects.
 */
export class IntIndex {
  /** Two 32-bit words a slot, side by side: the key's index (-1: empty) and the key. */
  private table: Int32Array
  private mask: number
  private count = 0

  constructor(expected = 16) {
    let capacity = 16
    while (capacity < 2 * expected) capacity <<= 1
    this.table = emptyTable(capacity)
    this.mask = capacity - 1
  }

  get size(): number {
    return this.count
  }

  /** The index of `key`, or -1. */
  get(key: number): number {
    for (let slot = mixOf(key) & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = this.table[2 * slot] as number
      if (at < 0 || this.table[2 * slot + 1] === key) return at
    }
  }

  /**
   * The index of `key`, adding it (with the next index) when new.
   *
   * @throws RangeError when `key` is not an integer in [0, 2^31).
   */
  add(key: number): number {
    if (!Number.isInteger(key) || key < 0 || key > 0x7fffffff) throw new RangeError(`not a key: ${key}`)
    for (let slot = mixOf(key) & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = this.table[2 * slot] as number
      if (at >= 0 && this.table[2 * slot + 1] !== key) continue
      if (at >= 0) return at
      const index = this.count++
      this.table[2 * slot] = index
      this.table[2 * slot + 1] = key
      if (4 * this.count > this.table.length) this.grow()
      return index
    }
  }

  private grow(): void {
    const capacity = this.table.length
    const table = emptyTable(capacity)
    const mask = capacity - 1
    for (let old = 0; old < this.table.length; old += 2) {
      const at = this.table[old] as number
      if (at < 0) continue
      const key = this.table[old + 1] as number
      let slot = mixOf(key) & mask
      while ((table[2 * slot] as number) >= 0) slot = (slot + 1) & mask
      table[2 * slot] = at
      table[2 * slot + 1] = key
    }
    this.table = table
    this.mask = mask
  }
}

/** A 31-bit mix of an integer key (neighbouring keys land far apart). */
function mixOf(key: number): number {
  let h = Math.imul(key ^ (key >>> 16), 0x45d9f3b)
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b)
  return (h ^ (h >>> 16)) & 0x7fffffff
}

/** FNV-1a over the UTF-16 code units, then a final mix (keys often differ only at the end). */
function hashOf(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  return h & 0x7fffffff
}

/** Amounts by account (lower-case address), as an epoch's payouts are kept. */
export class AccountAmounts {
  private index: KeyIndex
  private amounts: bigint[]

  constructor(expected = 16) {
    this.index = new KeyIndex(expected)
    this.amounts = []
  }

  /**
   * Amounts of 0 for the accounts of `other`, at the same positions (a copy of its index: adding
   * by position then needs no hashing).
   */
  static zeroLike(other: AccountAmounts): AccountAmounts {
    const out = new AccountAmounts()
    out.index = other.index.clone()
    out.amounts = new Array<bigint>(other.size).fill(0n)
    return out
  }

  /** Adds `amount` to the account at position `at`. */
  addAt(at: number, amount: bigint): void {
    if (!Number.isInteger(at) || at < 0 || at >= this.index.size) throw new RangeError(`no account at ${at}`)
    this.amounts[at] = (this.amounts[at] as bigint) + amount
  }

  get size(): number {
    return this.index.size
  }

  /** The amount at position `at` in insertion order. */
  amountAt(at: number): bigint {
    return this.amounts[at] as bigint
  }

  /** Sets the amount of the account at position `at`. */
  setAt(at: number, amount: bigint): void {
    if (!Number.isInteger(at) || at < 0 || at >= this.index.size) throw new RangeError(`no account at ${at}`)
    this.amounts[at] = amount
  }

  /** The sum of all amounts. */
  sum(): bigint {
    let sum = 0n
    for (let i = 0; i < this.amounts.length; i++) sum += this.amounts[i] as bigint
    return sum
  }

  /** Adds `amount` to `account`'s (which must be lower case). */
  add(account: `0x${string}`, amount: bigint): void {
    const at = this.index.add(account)
    this.amounts[at] = (this.amounts[at] ?? 0n) + amount
  }

  /** The position of `account` (lower case) in insertion order, or -1. */
  indexOf(account: string): number {
    return this.index.get(account)
  }

  get(account: string): bigint | undefined {
    const at = this.index.get(account.toLowerCase())
    return at < 0 ? undefined : this.amounts[at]
  }

  has(account: string): boolean {
    return this.index.get(account.toLowerCase()) >= 0
  }

  /** The account at position `at` in insertion order (undefined past the end). */
  keyAt(at: number): `0x${string}` | undefined {
    return this.index.keys[at] as `0x${string}` | undefined
  }

  /** The account at position `at` in insertion order, and its amount. */
  at(at: number): [`0x${string}`, bigint] {
    return [this.index.keys[at] as `0x${string}`, this.amounts[at] as bigint]
  }

  *keys(): IterableIterator<`0x${string}`> {
    for (const key of this.index.keys) yield key as `0x${string}`
  }

  *values(): IterableIterator<bigint> {
    for (const amount of this.amounts) yield amount
  }

  *entries(): IterableIterator<[`0x${string}`, bigint]> {
    for (let i = 0; i < this.index.size; i++) yield this.at(i)
  }

  [Symbol.iterator](): IterableIterator<[`0x${string}`, bigint]> {
    return this.entries()
  }
}
