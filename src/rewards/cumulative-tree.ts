import { bytesToHex, getAddress, type Hex } from 'viem'
import { keccak256 } from './keccak.js'
import type { AccountAmounts } from './key-index.js'
import { largeArray } from './large-array.js'
import { type Encode, hashInnerNodes, hashLeaves, orderLeaves } from './leaf-hasher.js'

/** One operator's entry: everything it has earned since genesis, in MESH base units. */
export interface CumulativeEntry {
  account: `0x${string}`
  cumulativeAmount: bigint
}

/** A proof of one leaf, as `claim` takes it. */
export interface LeafProof {
  account: `0x${string}`
  cumulativeAmount: bigint
  proof: Hex[]
}

/** A built tree: its root, and a proof for every account. */
export interface CumulativeTree {
  readonly root: Hex
  readonly size: number
  /** The proof of `account`'s leaf, or undefined when it has no leaf. */
  proof(account: `0x${string}`): { cumulativeAmount: bigint; proof: Hex[] } | undefined
  /** The proof of the `index`-th entry of the list the tree was built from. */
  proofAt(index: number): LeafProof
  /**
   * The proof of the `index`-th entry as raw bytes, its sibling hashes one after another (32 bytes
   * each, leaf side first): what a proof server stores or sends without hex-encoding it.
   */
  proofBytesAt(index: number): Uint8Array
  /**
   * Writes the `index`-th entry's proof bytes (as `proofBytesAt`) into `out` from `offset`, and
   * returns how many bytes it wrote: serving proofs without allocating one array each.
   *
   * @throws RangeError when `out` has no room for it.
   */
  proofInto(index: number, out: Uint8Array, offset: number): number
  /**
   * Entry indices in the order of their leaves in the tree. Proofs taken in this order read
   * neighbouring parts of the tree one after another: for every proof of a large tree, several times
   * faster than in entry order.
   */
  leafOrder(): Uint32Array
}

const MAX_UINT256 = (1n << 256n) - 1n
const TWO_64 = 1n << 64n
const TWO_128 = 1n << 128n
/** Deepest proof: a tree of up to 2^32 leaves. */
const MAX_DEPTH = 33
/** Each UTF-16 code unit's hex digit value, -1 for a non-digit (64 KiB: no range check needed). */
const HEX_VALUES = (() => {
  const table = new Int8Array(65_536).fill(-1)
  for (let i = 0; i < 16; i++) {
    table['0123456789abcdef'.charCodeAt(i)] = i
    table['0123456789ABCDEF'.charCodeAt(i)] = i
  }
  return table
})()

/**
 * Writes the hex digits of `hex` from `start` (no 0x) into `out` from `offset`, right-aligned in
 * `width` bytes (leading bytes zeroed). False when they are not hex digits or do not fit.
 */
function writeHex(
  out: Uint8Array<ArrayBufferLike>,
  offset: number,
  width: number,
  hex: string,
  start: number,
): boolean {
  const digits = hex.length - start
  if (digits > 2 * width) return false
  let o = offset + width - ((digits + 1) >> 1)
  for (let z = offset; z < o; z++) out[z] = 0
  let i = start
  if (digits % 2 === 1) {
    const lo = HEX_VALUES[hex.charCodeAt(i)] as number
    if (lo < 0) return false
    out[o++] = lo
    i++
  }
  for (; i < hex.length; i += 2) {
    const hi = HEX_VALUES[hex.charCodeAt(i)] as number
    const lo = HEX_VALUES[hex.charCodeAt(i + 1)] as number
    if ((hi | lo) < 0) return false
    out[o++] = (hi << 4) | lo
  }
  return true
}

const encoded = new Uint8Array(64)
/** abi.encode(address, uint256) of an entry into `out` at `offset` (default: a shared 64-byte buffer). */
function encodeLeaf(
  account: string,
  amount: bigint,
  out: Uint8Array<ArrayBufferLike> = encoded,
  offset = 0,
): Uint8Array<ArrayBufferLike> {
  if (amount < 0n || amount > MAX_UINT256) throw new RangeError(`amount out of uint256 range: ${amount}`)
  if (account.length !== 42 || account[0] !== '0' || (account[1] !== 'x' && account[1] !== 'X'))
    throw new RangeError(`not an address: ${account}`)
  for (let z = offset; z < offset + 12; z++) out[z] = 0
  if (!writeHex(out, offset + 12, 20, account, 2)) throw new RangeError(`not an address: ${account}`)
  // The amount's 64-bit words from the low end (no hex string per amount), zeros above them. A
  // DataView keeps a bigint's low 64 bits: amounts below 2^128 (all real ones) take one shift.
  const view = viewOf(out)
  const low = out.byteOffset + offset + 32
  if (amount < TWO_128) {
    view.setBigUint64(low, 0n)
    view.setBigUint64(low + 8, 0n)
    view.setBigUint64(low + 16, amount < TWO_64 ? 0n : amount >> 64n)
    view.setBigUint64(low + 24, amount)
    return out
  }
  let rest = amount
  let at = low + 24
  for (; rest > 0n; at -= 8, rest >>= 64n) view.setBigUint64(at, BigInt.asUintN(64, rest))
  for (; at >= low; at -= 8) view.setBigUint64(at, 0n)
  return out
}

let lastView: DataView | undefined
/** A DataView of `bytes`' whole buffer, kept while callers write into the same buffer. */
function viewOf(bytes: Uint8Array<ArrayBufferLike>): DataView {
  if (lastView?.buffer !== bytes.buffer) lastView = new DataView(bytes.buffer)
  return lastView
}

/**
 * The leaf of (account, amount) in OpenZeppelin's standard format: keccak256(keccak256(abi.encode(
 * address, uint256))). EpochRewards verifies exactly this, and @openzeppelin/merkle-tree builds it.
 */
export function leafHash(account: `0x${string}`, amount: bigint): Uint8Array {
  return keccak256(keccak256(encodeLeaf(account, amount)))
}

/** `address` in lower case, without a copy when it already is (as stored tables keep it). */
export function lowerAddress(address: string): `0x${string}` {
  return (UPPER_HEX.test(address) ? address.toLowerCase() : address) as `0x${string}`
}
const UPPER_HEX = /[A-F]/

/**
 * The next cumulative table: `previous` (the last epoch's table) with this epoch's `payouts` added,
 * accounts new to the table appended. Entries keep the previous table's order; the tree does not
 * depend on it (and refuses a table that holds an account twice).
 */
export function addPayouts(previous: readonly CumulativeEntry[], payouts: AccountAmounts): CumulativeEntry[] {
  const next: CumulativeEntry[] = new Array(previous.length)
  const used = largeArray(Uint8Array, payouts.size)
  // Tables and payouts tend to list operators in the same order (the registry's): try the position
  // after the last match before hashing the address (same result, one string comparison).
  let last = -1
  for (let i = 0; i < previous.length; i++) {
    const e = previous[i] as CumulativeEntry
    const guess = last + 1
    const key = guess < payouts.size ? payouts.keyAt(guess) : undefined
    // An account equal to a (lower-case) key is in lower case already.
    const account = key === e.account ? key : lowerAddress(e.account)
    const at = key === account ? guess : payouts.indexOf(account)
    if (at >= 0) last = at
    if (at < 0) next[i] = e
    else {
      used[at] = 1
      next[i] = { account: e.account, cumulativeAmount: e.cumulativeAmount + payouts.amountAt(at) }
    }
  }
  for (let at = 0; at < payouts.size; at++) {
    if (used[at] === 1) continue
    next.push({ account: payouts.keyAt(at) as `0x${string}`, cumulativeAmount: payouts.amountAt(at) })
  }
  return next
}

/**
 * An open-addressing hash index of the entries by account: finds an entry by address without a
 * million-key Map, and refuses a list with an account twice. It keeps entry indices only (4 bytes
 * a slot) and compares accounts by their hex digits, whatever their case.
 */
class AccountIndex {
  private readonly entries: readonly CumulativeEntry[]
  private readonly slots: Int32Array
  private readonly mask: number

  /** `entries`' accounts must be addresses (`encodeLeaf` checked them). */
  constructor(entries: readonly CumulativeEntry[], n: number) {
    this.entries = entries
    let capacity = 1
    while (capacity < 2 * n) capacity <<= 1
    this.slots = largeArray(Int32Array, capacity).fill(-1)
    this.mask = capacity - 1
    for (let i = 0; i < n; i++) {
      const account = (entries[i] as CumulativeEntry).account
      let slot = this.hash(account)
      for (;;) {
        const held = this.slots[slot] as number
        if (held < 0) {
          this.slots[slot] = i
          break
        }
        if (sameAddress((entries[held] as CumulativeEntry).account, account))
          throw new RangeError(`account ${getAddress(account.toLowerCase())} appears twice`)
        slot = (slot + 1) & this.mask
      }
    }
  }

  /** The entry index of `account`, or undefined. */
  find(account: string): number | undefined {
    if (account.length !== 42 || account[0] !== '0' || (account[1] !== 'x' && account[1] !== 'X'))
      return undefined
    for (let i = 2; i < 42; i++) if ((HEX_VALUES[account.charCodeAt(i)] as number) < 0) return undefined
    for (let slot = this.hash(account); ; slot = (slot + 1) & this.mask) {
      const held = this.slots[slot] as number
      if (held < 0) return undefined
      if (sameAddress((this.entries[held] as CumulativeEntry).account, account)) return held
    }
  }

  /** FNV-1a over the 40 hex digits' values (so that casing does not matter). */
  private hash(account: string): number {
    let h = 0x811c9dc5
    for (let i = 2; i < 42; i++) h = Math.imul(h ^ (HEX_VALUES[account.charCodeAt(i)] as number), 0x01000193)
    return (h >>> 0) & this.mask
  }
}

/** Whether two addresses (0x and 40 hex digits) have the same digits, whatever their case; from the end, where sequential addresses differ. */
function sameAddress(a: string, b: string): boolean {
  for (let i = 41; i >= 2; i--) if (HEX_VALUES[a.charCodeAt(i)] !== HEX_VALUES[b.charCodeAt(i)]) return false
  return true
}

/**
 * Builds the cumulative reward tree in OpenZeppelin's standard Merkle format (leaves sorted by hash,
 * laid out as a complete binary tree in an array, pairs hashed in sorted order), so that its root and
 * proofs match `StandardMerkleTree.of(entries, ['address', 'uint256'])` byte for byte.
 *
 * The tree lives in one byte array (64 bytes a leaf), so a million operators take 64 MB and proofs
 * are read out of it on demand.
 *
 * @throws RangeError when the list is empty, an account appears twice or a value does not fit.
 */
export function buildCumulativeTree(entries: readonly CumulativeEntry[]): CumulativeTree {
  const n = entries.length
  if (n === 0) throw new RangeError('a reward tree needs at least one entry')
  const size = 2 * n - 1
  // One array holds the leaves' hashes (slots 0 to n - 1, in entry order) and then the tree (node j
  // in slot j + 1, 32 bytes a node): the tree's leaves (slots n to 2n - 1) never overlap the hashes
  // they are copied from, and its inner nodes overwrite them only once they are placed. Large trees
  // are hashed on two cores (`leaf-hasher.ts`): the caller encodes its leaves straight into its
  // module's memory, the helper's into slots n to 2n - 1 while they are free.
  const buffer = largeArray(Uint8Array, 2 * n * 32)
  const leaves = buffer.subarray(0, n * 32)
  const encode: Encode = (from, to, into, at) => {
    for (let i = from; i < to; i++) {
      const e = entries[i] as CumulativeEntry
      encodeLeaf(e.account, e.cumulativeAmount, into, at + (i - from) * 64)
    }
  }
  hashLeaves(leaves, n, encode, buffer.subarray(n * 32))
  // The leaves sorted by hash into the tree (by the helper, for a large tree) while this thread
  // indexes the accounts (and refuses one that appears twice).
  let index: AccountIndex | undefined
  const { order, positionOf } = orderLeaves(buffer, n, () => {
    index = new AccountIndex(entries, n)
  })
  const accounts = index as AccountIndex

  const tree = buffer.subarray(32, 32 + size * 32)
  const words = new Uint32Array(buffer.buffer, buffer.byteOffset + 32, size * 8)
  hashInnerNodes(tree, n)

  /** The depth of node `at` (the root is 0): floor(log2(at + 1)). */
  const depthOf = (at: number): number => 31 - Math.clz32(at + 1)
  let outWords: Uint32Array | undefined
  let outLongs: BigUint64Array | undefined
  const longs = new BigUint64Array(buffer.buffer, buffer.byteOffset + 32, size * 4)
  const proofInto = (index: number, out: Uint8Array, offset: number): number => {
    if (!Number.isInteger(index) || index < 0 || index >= n) throw new RangeError(`no entry ${index}`)
    let at = positionOf[index] as number
    const length = depthOf(at) * 32
    if (offset < 0 || offset + length > out.length)
      throw new RangeError(`no room for a proof of ${length} bytes`)
    const start = out.byteOffset + offset
    if (start % 8 === 0) {
      // Four 64-bit words a sibling (copied as they are: an optimized copy makes no bigint), through
      // one view of the caller's buffer kept between calls (a server writes every proof into the
      // same response buffer): no view object per proof or sibling.
      if (outLongs?.buffer !== out.buffer)
        outLongs = new BigUint64Array(out.buffer, 0, out.buffer.byteLength >> 3)
      const to = outLongs
      for (let o = start >> 3; at > 0; o += 4) {
        const from = (at % 2 === 1 ? at + 1 : at - 1) * 4
        to[o] = longs[from] as bigint
        to[o + 1] = longs[from + 1] as bigint
        to[o + 2] = longs[from + 2] as bigint
        to[o + 3] = longs[from + 3] as bigint
        at = (at - 1) >> 1
      }
      return length
    }
    if (start % 4 === 0) {
      // Word by word, through one view of the caller's buffer kept between calls (a server writes
      // every proof into the same response buffer): no view object per proof or sibling.
      if (outWords?.buffer !== out.buffer)
        outWords = new Uint32Array(out.buffer, 0, out.buffer.byteLength >> 2)
      const to = outWords
      for (let o = start >> 2; at > 0; o += 8) {
        const from = (at % 2 === 1 ? at + 1 : at - 1) * 8
        // Unrolled: eight words, one sibling.
        to[o] = words[from] as number
        to[o + 1] = words[from + 1] as number
        to[o + 2] = words[from + 2] as number
        to[o + 3] = words[from + 3] as number
        to[o + 4] = words[from + 4] as number
        to[o + 5] = words[from + 5] as number
        to[o + 6] = words[from + 6] as number
        to[o + 7] = words[from + 7] as number
        at = (at - 1) >> 1
      }
      return length
    }
    for (let o = offset; at > 0; o += 32) {
      const from = (at % 2 === 1 ? at + 1 : at - 1) * 32
      for (let b = 0; b < 32; b++) out[o + b] = tree[from + b] as number
      at = (at - 1) >> 1
    }
    return length
  }
  const proofBytesAt = (index: number): Uint8Array => {
    const out = new Uint8Array(32 * MAX_DEPTH)
    return out.slice(0, proofInto(index, out, 0))
  }
  const proofAt = (index: number): LeafProof => {
    const bytes = proofBytesAt(index)
    const proof: Hex[] = []
    for (let o = 0; o < bytes.length; o += 32) proof.push(bytesToHex(bytes.subarray(o, o + 32)))
    const e = entries[index] as CumulativeEntry
    return { account: e.account, cumulativeAmount: e.cumulativeAmount, proof }
  }

  return {
    root: bytesToHex(tree.subarray(0, 32)),
    size: n,
    proof(account) {
      const at = accounts.find(account)
      if (at === undefined) return undefined
      const { cumulativeAmount, proof } = proofAt(at)
      return { cumulativeAmount, proof }
    },
    proofAt,
    proofBytesAt,
    proofInto,
    leafOrder: () => {
      const copy = largeArray(Uint32Array, n)
      copy.set(order)
      return copy
    },
  }
}
