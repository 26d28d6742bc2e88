import * as crypto from 'node:crypto'

/**
 * The commitment to a shard: a binary Merkle tree over its chunks (16 KiB by default), SHA-256 with
 * domain separation (leaf = H(0x00 ‖ chunk), node = H(0x01 ‖ left ‖ right); a level's odd last
 * node moves up unchanged). A holder signs the root in its receipt; a verifier's challenge names a
 * chunk, and the holder answers with the chunk and its sibling path, checked against the root.
 */

/** Bytes per chunk unless a manifest says otherwise. */
export const CHUNK_BYTES = 16 * 1024

const LEAF = 0
const NODE = 1

// node:crypto's SHA-256 (native, several times faster than a JavaScript one on 16 KiB chunks). The
// one-shot `hash` (Node 20.12 and later) skips making a Hash object per chunk, about a fifth of the
// time on 16 KiB leaves; the domain byte and the data are laid out in one buffer for it.
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer })
  .hash
let scratch = Buffer.allocUnsafe(1 + CHUNK_BYTES)

function sha256Of(data: Uint8Array): Uint8Array {
  if (oneShot !== undefined) {
    const d = oneShot('sha256', data, 'buffer')
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
  }
  return new Uint8Array(crypto.createHash('sha256').update(data).digest())
}

/** H(0x00 ‖ chunk). */
function hashLeaf(chunk: Uint8Array): Uint8Array {
  if (scratch.length < 1 + chunk.length) scratch = Buffer.allocUnsafe(1 + chunk.length)
  scratch[0] = LEAF
  scratch.set(chunk, 1)
  return sha256Of(scratch.subarray(0, 1 + chunk.length))
}

/** H(0x01 ‖ left ‖ right). */
function hashNode(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (scratch.length < 1 + left.length + right.length)
    scratch = Buffer.allocUnsafe(1 + left.length + right.length)
  const b = scratch.subarray(0, 1 + left.length + right.length)
  b[0] = NODE
  b.set(left, 1)
  b.set(right, 1 + left.length)
  return sha256Of(b)
}

/** Chunks in a shard of `bytes` (an empty shard has one empty chunk). */
export function chunkCount(bytes: number, chunkBytes = CHUNK_BYTES): number {
  return Math.max(1, Math.ceil(bytes / chunkBytes))
}

/** A built tree: every level kept (about twice the leaves), so any chunk's path is read off. */
export interface ChunkTree {
  readonly root: Uint8Array
  readonly count: number
  /** The sibling hashes of chunk `index`, leaf level first. */
  path(index: number): Uint8Array[]
}

/**
 * Builds the tree as chunks arrive: `push` any slices of the shard in order, then `finish`. Holds
 * the leaf hashes only (32 bytes a chunk), never the shard.
 */
export class ChunkTreeBuilder {
  readonly #chunkBytes: number
  readonly #leaves: Uint8Array[] = []
  #pending: Uint8Array
  #filled = 0
  #bytes = 0

  constructor(chunkBytes = CHUNK_BYTES) {
    if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new RangeError('bad chunk size')
    this.#chunkBytes = chunkBytes
    this.#pending = new Uint8Array(chunkBytes)
  }

  /** Bytes pushed so far. */
  get bytes(): number {
    return this.#bytes
  }

  push(data: Uint8Array): void {
    this.#bytes += data.length
    let at = 0
    while (at < data.length) {
      if (this.#filled === 0 && data.length - at >= this.#chunkBytes) {
        // A whole chunk in the slice: hashed where it lies, not copied first.
        this.#leaves.push(hashLeaf(data.subarray(at, at + this.#chunkBytes)))
        at += this.#chunkBytes
        continue
      }
      const take = Math.min(this.#chunkBytes - this.#filled, data.length - at)
      this.#pending.set(data.subarray(at, at + take), this.#filled)
      this.#filled += take
      at += take
      if (this.#filled === this.#chunkBytes) {
        this.#leaves.push(hashLeaf(this.#pending))
        this.#filled = 0
      }
    }
  }

  finish(): ChunkTree {
    if (this.#filled > 0 || this.#leaves.length === 0)
      this.#leaves.push(hashLeaf(this.#pending.subarray(0, this.#filled)))
    return treeOfLeaves(this.#leaves)
  }
}

/** The tree of a whole shard held in memory. */
export function buildChunkTree(shard: Uint8Array, chunkBytes = CHUNK_BYTES): ChunkTree {
  const b = new ChunkTreeBuilder(chunkBytes)
  b.push(shard)
  return b.finish()
}

function treeOfLeaves(leaves: Uint8Array[]): ChunkTree {
  const levels: Uint8Array[][] = [leaves]
  while ((levels.at(-1) as Uint8Array[]).length > 1) {
    const below = levels.at(-1) as Uint8Array[]
    const up: Uint8Array[] = []
    for (let i = 0; i < below.length; i += 2) {
      const left = below[i] as Uint8Array
      const right = below[i + 1]
      up.push(right === undefined ? left : hashNode(left, right))
    }
    levels.push(up)
  }
  return {
    root: (levels.at(-1) as Uint8Array[])[0] as Uint8Array,
    count: leaves.length,
    path(index) {
      if (!Number.isInteger(index) || index < 0 || index >= leaves.length)
        throw new RangeError(`no chunk ${index}`)
      const path: Uint8Array[] = []
      let at = index
      for (let l = 0; l < levels.length - 1; l++) {
        const level = levels[l] as Uint8Array[]
        const sibling = at % 2 === 0 ? level[at + 1] : level[at - 1]
        if (sibling !== undefined) path.push(sibling)
        at >>= 1
      }
      return path
    },
  }
}

/**
 * Whether `chunk` is chunk `index` of the `count`-chunk shard committed to by `root`, given its
 * sibling `path`. Pure: what a verifier runs on a challenge's answer.
 */
export function verifyChunk(
  root: Uint8Array,
  count: number,
  index: number,
  chunk: Uint8Array,
  path: readonly Uint8Array[],
): boolean {
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count)
    return false
  let hash = hashLeaf(chunk)
  let at = index
  let width = count
  let used = 0
  while (width > 1) {
    const hasSibling = at % 2 === 1 || at + 1 < width
    if (hasSibling) {
      const sibling = path[used++]
      if (sibling === undefined || sibling.length !== 32) return false
      hash = at % 2 === 0 ? hashNode(hash, sibling) : hashNode(sibling, hash)
    }
    at >>= 1
    width = Math.ceil(width / 2)
  }
  if (used !== path.length || hash.length !== root.length) return false
  for (let i = 0; i < hash.length; i++) if (hash[i] !== root[i]) return false
  return true
}
