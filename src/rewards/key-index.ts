import { largeArray, scratchArray } from './large-array.js'

/**
 * Dense indices for string keys (peer ids, addresses): an open-addressing hash table over typed
 * arrays. At a million keys it builds and looks up several times faster than a `Map` (whose
 * per-entry objects and rehashing dominate at that size), which is what settling an epoch of a
 * million operators needs.
 */
export class KeyIndex {
  /**
   * The keys by index, in an array made for the expected count at once (its growth would leave
   * twice its size behind in the old generation) and cut to the count when it is read whole.
   */
  private store: string[]
  private count = 0
  /**
   * Two 32-bit words a slot: the key's index (-1: empty) and its hash, side by side so that a probe
   * reads one cache line (at a million keys the table is 16 MB and every probe would miss twice).
   * An index built at once makes it at its first lookup (`ofDistinct`, `groupKeys`): a settlement
   * whose lookups all find their key by position never makes it.
   */
  private table: Int32Array | undefined
  private mask: number

  /**
   * @param expected how many keys it is made for (it grows past them)
   * @param table false: make the table at the first lookup (an index whose keys are listed first)
   */
  constructor(expected = 16, table = true) {
    let capacity = 16
    while (capacity < 2 * expected) capacity <<= 1
    this.table = table ? emptyTable(capacity) : undefined
    this.mask = capacity - 1
    this.store = expected > 16 ? new Array<string>(expected) : []
  }

  /** The keys, by index. */
  get keys(): string[] {
    if (this.store.length !== this.count) this.store.length = this.count
    return this.store
  }

  get size(): number {
    return this.count
  }

  /** The index of `key`, or -1. */
  get(key: string): number {
    const table = this.table ?? this.buildTable()
    const h = hashOf(key)
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = table[2 * slot] as number
      if (at < 0) return -1
      if (table[2 * slot + 1] === h && this.store[at] === key) return at
    }
  }

  /** The index of `key`, adding it (with the next index) when new. */
  add(key: string): number {
    const table = this.table ?? this.buildTable()
    const h = hashOf(key)
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const at = table[2 * slot] as number
      if (at < 0) {
        const index = this.count++
        if (index < this.store.length) this.store[index] = key
        else this.store.push(key)
        table[2 * slot] = index
        table[2 * slot + 1] = h
        if (4 * this.count > table.length) this.grow()
        return index
      }
      if (table[2 * slot + 1] === h && this.store[at] === key) return at
    }
  }

  /**
   * The table of an index built at once, made at its first lookup: the keys' hashes, then the
   * table filled in the order of their slots (one pass through it, not a cache miss per key).
   * Uses scratch slots 0 to 2.
   */
  private buildTable(): Int32Array {
    const n = this.count
    let capacity = this.mask + 1
    while (capacity < 2 * n) capacity <<= 1
    const table = emptyTable(capacity)
    const mask = capacity - 1
    const hashes = scratchArray(Int32Array, n, 0)
    for (let i = 0; i < n; i++) hashes[i] = hashOf(this.store[i] as string)
    const order = sortBySlot(hashes, n, mask)
    for (let j = 0; j < n; j++) {
      const i = order[j] as number
      const h = hashes[i] as number
      let slot = h & mask
      while ((table[2 * slot] as number) >= 0) slot = (slot + 1) & mask
      table[2 * slot] = i
      table[2 * slot + 1] = h
    }
    this.table = table
    this.mask = mask
    return table
  }

  /**
   * The index of `n` keys, `keyOf(i)` at index i, when they are all distinct; else the least i whose
   * key an earlier one has (where adding them in order would first find one). Built at once: every
   * key's hash first, then the table filled in the order of the keys' slots, one pass through it,
   * instead of a cache miss per key at a random slot of a table of tens of MB.
   */
  static ofDistinct(n: number, keyOf: (i: number) => string): KeyIndex | number {
    const index = new KeyIndex(n, false)
    const store = index.store
    for (let i = 0; i < n; i++) store[i] = keyOf(i)
    const first = index.firstOccurrences(n)
    for (let i = 0; i < n; i++) if (first[i] !== i) return i
    index.count = n
    return index
  }

  /** The key list of an empty index, to be filled (up to its expected count) and grouped. */
  listKeys(): string[] {
    if (this.count !== 0) throw new RangeError('the index is not empty')
    return this.store
  }

  /**
   * Indexes keys 0 to n - 1 of `listKeys()`: each one's index (see `groupListed`), on scratch memory
   * (`scratchArray` slot 3: valid until it is next used). The table is made at the first lookup.
   */
  groupKeys(n: number): Int32Array {
    if (this.count !== 0) throw new RangeError('the index is not empty')
    this.table = undefined
    return this.groupListed(n)
  }

  /**
   * Indexes the `n` keys already in the key list (at 0 to n - 1, of an empty index made for at
   * least n) as adding them in order would: returns each one's index (its first occurrence's), and
   * leaves the distinct keys in the list in that order. Built at once, as `ofDistinct`.
   */
  private groupListed(n: number): Int32Array {
    const store = this.store
    const first = this.firstOccurrences(n)
    // Indices in order of first occurrence (each below its position: the list is compacted in place).
    let count = 0
    for (let i = 0; i < n; i++) {
      const f = first[i] as number
      if (f === i) {
        store[count] = store[i] as string
        first[i] = count++
      } else first[i] = first[f] as number
    }
    this.count = count
    return first
  }

  /**
   * For keys 0 to n - 1 of the list, the index of each one's first occurrence (in scratch slot 3,
   * valid until it is next used). The keys are sorted by hash (a stable radix sort: a key's
   * occurrences stay in their order) and only keys of equal hash compared: no table, no cache miss
   * per key.
   */
  private firstOccurrences(n: number): Int32Array {
    const store = this.store
    const hashes = scratchArray(Int32Array, n, 0)
    for (let i = 0; i < n; i++) hashes[i] = hashOf(store[i] as string)
    const order = sortBySlot(hashes, n, 0x7fffffff)
    const first = scratchArray(Int32Array, n, 3)
    for (let start = 0; start < n; ) {
      const h = hashes[order[start] as number] as number
      let end = start + 1
      while (end < n && hashes[order[end] as number] === h) end++
      if (end - start <= 16) {
        // Rare and short (hashes): each against the earlier ones, the first equal is the first occurrence.
        for (let b = start; b < end; b++) {
          const i = order[b] as number
          first[i] = i
          for (let a = start; a < b; a++) {
            const earlier = order[a] as number
            if (store[earlier] === store[i]) {
              first[i] = earlier
              break
            }
          }
        }
      } else {
        // Only keys made to collide: sorted by key, then position.
        const run = Array.from(order.subarray(start, end))
        run.sort((x, y) => {
          const kx = store[x] as string
          const ky = store[y] as string
          return kx < ky ? -1 : kx > ky ? 1 : x - y
        })
        for (let r = 0; r < run.length; r++) {
          const i = run[r] as number
          const previous = r > 0 ? (run[r - 1] as number) : -1
          first[i] = previous >= 0 && store[previous] === store[i] ? (first[previous] as number) : i
        }
      }
      start = end
    }
    return first
  }

  /** The key at `index` (below `size`). */
  keyAt(index: number): string {
    return this.store[index] as string
  }

  /** A copy of this index (the same keys at the same indices), to grow apart from it. */
  clone(): KeyIndex {
    const copy = new KeyIndex(0, false)
    copy.store = this.keys.slice()
    copy.count = this.count
    copy.mask = this.mask
    if (this.table !== undefined) {
      copy.table = largeArray(Int32Array, this.table.length)
      copy.table.set(this.table)
    }
    return copy
  }

  private grow(): void {
    const old = this.table as Int32Array
    const capacity = old.length
    const table = emptyTable(capacity)
    const mask = capacity - 1
    for (let o = 0; o < old.length; o += 2) {
      const at = old[o] as number
      if (at < 0) continue
      const h = old[o + 1] as number
      let slot = h & mask
      while ((table[2 * slot] as number) >= 0) slot = (slot + 1) & mask
      table[2 * slot] = at
      table[2 * slot + 1] = h
    }
    this.table = table
    this.mask = mask
  }
}

/**
 * 0 to n - 1 ordered by the slot of their hash (`hashes[i] & mask`), those of one slot in their
 * order: a stable radix sort, 11 bits a pass, on scratch memory (slots 1 and 2: the result is
 * valid until they are next used).
 */
function sortBySlot(hashes: Int32Array, n: number, mask: number): Uint32Array {
  let from = scratchArray(Uint32Array, n, 1)
  let to = scratchArray(Uint32Array, n, 2)
  for (let i = 0; i < n; i++) from[i] = i
  const counts = new Uint32Array(2_049)
  for (let shift = 0; shift < 32 && mask >>> shift > 0; shift += 11) {
    counts.fill(0)
    for (let i = 0; i < n; i++)
      (counts[((((hashes[from[i] as number] as number) & mask) >>> shift) & 0x7ff) + 1] as number)++
    for (let d = 0; d < 2_048; d++) counts[d + 1] = (counts[d + 1] as number) + (counts[d] as number)
    for (let i = 0; i < n; i++) {
      const idx = from[i] as number
      const digit = (((hashes[idx] as number) & mask) >>> shift) & 0x7ff
      to[counts[digit] as number] = idx
      counts[digit] = (counts[digit] as number) + 1
    }
    ;[from, to] = [to, from]
  }
  return from
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

/** 2^64 and 2^128: amounts in [0, 2^128) are kept as two 64-bit words. */
const TWO_64 = 1n << 64n
const TWO_128 = 1n << 128n
/** `AccountAmounts` tags: the amount is its low word; both words; in the map of other amounts. */
const LOW = 0
const WIDE = 1
const OTHER = 2

/**
 * Amounts by account (lower-case address), as an epoch's payouts are kept.
 *
 * Amounts in [0, 2^128) (weights and payouts always are) live in typed arrays, two 64-bit words
 * each, not as a million bigints in an array: those would all outlive a young-generation collection
 * or two and be copied into the old generation, where they hasten a full collection of a heap that
 * holds the epoch's bundle. A bigint is made when an amount is read, and dies young. Any other
 * amount is kept as it is.
 */
export class AccountAmounts {
  private index: KeyIndex
  private low: BigUint64Array
  private high: BigUint64Array
  private tags: Uint8Array
  private others: Map<number, bigint> | undefined

  constructor(expected = 16) {
    this.index = new KeyIndex(expected)
    const capacity = Math.max(16, expected)
    this.low = largeArray(BigUint64Array, capacity)
    this.high = largeArray(BigUint64Array, capacity)
    this.tags = largeArray(Uint8Array, capacity)
  }

  /** Room for `capacity` amounts (of an empty instance). */
  private reserve(capacity: number): void {
    const room = Math.max(16, capacity)
    this.low = largeArray(BigUint64Array, room)
    this.high = largeArray(BigUint64Array, room)
    this.tags = largeArray(Uint8Array, room)
  }

  /**
   * Amounts of 0 for the accounts of `other`, at the same positions (a copy of its index: adding
   * by position then needs no hashing).
   */
  static zeroLike(other: AccountAmounts): AccountAmounts {
    const out = new AccountAmounts(other.size)
    out.index = other.index.clone()
    return out
  }

  /**
   * The sums by account of up to `capacity` (account, amount) pairs, the same as adding them in
   * order: `pairs(add)` calls add(account, amount) for each (accounts in lower case). Built at once:
   * the pairs are listed first, then indexed in the order of their slots (as `KeyIndex.ofDistinct`),
   * and the amounts of an account met again are added to its first's.
   *
   * @throws RangeError when `pairs` adds more than `capacity`.
   */
  static sumOf(
    capacity: number,
    pairs: (add: (account: `0x${string}`, amount: bigint) => void) => void,
  ): AccountAmounts {
    const out = new AccountAmounts()
    // Its index's table is made at the first lookup (by key: adding by position needs none).
    out.index = new KeyIndex(capacity, false)
    out.reserve(capacity)
    const listed = out.index.listKeys()
    let n = 0
    pairs((account, amount) => {
      if (n >= capacity) throw new RangeError(`more than ${capacity} pairs`)
      listed[n] = account
      out.put(n, amount)
      n++
    })
    const index = out.index.groupKeys(n)
    // In place: an account's index is at most the position of its first pair.
    let next = 0
    for (let i = 0; i < n; i++) {
      const at = index[i] as number
      if (at === next) {
        if (at !== i) out.put(at, out.read(i))
        next++
      } else out.put(at, out.read(at) + out.read(i))
    }
    for (let i = next; i < n; i++) out.put(i, 0n)
    return out
  }

  /** Adds `amount` to the account at position `at`. */
  addAt(at: number, amount: bigint): void {
    if (!Number.isInteger(at) || at < 0 || at >= this.index.size) throw new RangeError(`no account at ${at}`)
    this.put(at, this.read(at) + amount)
  }

  get size(): number {
    return this.index.size
  }

  /** The amount at position `at` in insertion order. */
  amountAt(at: number): bigint {
    return this.read(at)
  }

  /** Sets the amount of the account at position `at`. */
  setAt(at: number, amount: bigint): void {
    if (!Number.isInteger(at) || at < 0 || at >= this.index.size) throw new RangeError(`no account at ${at}`)
    this.put(at, amount)
  }

  /** The sum of all amounts. */
  sum(): bigint {
    // The low words and the high words summed apart (each sum a safe bigint), then joined.
    let low = 0n
    let high = 0n
    let other = 0n
    for (let i = 0; i < this.index.size; i++) {
      const tag = this.tags[i] as number
      if (tag === LOW) low += this.low[i] as bigint
      else if (tag === WIDE) {
        low += this.low[i] as bigint
        high += this.high[i] as bigint
      } else other += this.others?.get(i) as bigint
    }
    return (high << 64n) + low + other
  }

  /** Adds `amount` to `account`'s (which must be lower case). */
  add(account: `0x${string}`, amount: bigint): void {
    const size = this.index.size
    const at = this.index.add(account)
    if (at === size) {
      if (at === this.tags.length) this.grow()
      this.put(at, amount)
    } else this.put(at, this.read(at) + amount)
  }

  /** The position of `account` (lower case) in insertion order, or -1. */
  indexOf(account: string): number {
    return this.index.get(account)
  }

  get(account: string): bigint | undefined {
    const at = this.index.get(account.toLowerCase())
    return at < 0 ? undefined : this.read(at)
  }

  has(account: string): boolean {
    return this.index.get(account.toLowerCase()) >= 0
  }

  /** The account at position `at` in insertion order (undefined past the end). */
  keyAt(at: number): `0x${string}` | undefined {
    return at < this.index.size ? (this.index.keyAt(at) as `0x${string}`) : undefined
  }

  /** The account at position `at` in insertion order, and its amount. */
  at(at: number): [`0x${string}`, bigint] {
    return [this.index.keyAt(at) as `0x${string}`, this.read(at)]
  }

  *keys(): IterableIterator<`0x${string}`> {
    for (const key of this.index.keys) yield key as `0x${string}`
  }

  *values(): IterableIterator<bigint> {
    for (let i = 0; i < this.index.size; i++) yield this.read(i)
  }

  *entries(): IterableIterator<[`0x${string}`, bigint]> {
    for (let i = 0; i < this.index.size; i++) yield this.at(i)
  }

  [Symbol.iterator](): IterableIterator<[`0x${string}`, bigint]> {
    return this.entries()
  }

  /** The amount at `at` (0 for a position not yet written). */
  private read(at: number): bigint {
    const tag = this.tags[at] as number
    if (tag === LOW) return this.low[at] as bigint
    if (tag === WIDE) return ((this.high[at] as bigint) << 64n) | (this.low[at] as bigint)
    return this.others?.get(at) as bigint
  }

  private put(at: number, amount: bigint): void {
    if (amount >= 0n && amount < TWO_64) {
      this.low[at] = amount
      this.tags[at] = LOW
    } else if (amount > 0n && amount < TWO_128) {
      // A BigUint64Array keeps an amount's low 64 bits.
      this.low[at] = amount
      this.high[at] = amount >> 64n
      this.tags[at] = WIDE
    } else {
      this.others ??= new Map()
      this.others.set(at, amount)
      this.tags[at] = OTHER
      return
    }
    this.others?.delete(at)
  }

  private grow(): void {
    const capacity = 2 * this.tags.length
    const low = largeArray(BigUint64Array, capacity)
    const high = largeArray(BigUint64Array, capacity)
    const tags = largeArray(Uint8Array, capacity)
    low.set(this.low)
    high.set(this.high)
    tags.set(this.tags)
    this.low = low
    this.high = high
    this.tags = tags
  }
}
