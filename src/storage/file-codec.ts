import { sha256 } from '@noble/hashes/sha2.js'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { z } from 'zod'
import { canonicalJson } from '../core/canonical-json.js'
import { CHUNK_BYTES, ChunkTreeBuilder, chunkCount } from './chunk-tree.js'
import { ReedSolomon } from './erasure.js'
import { StorageError } from './errors.js'
import {
  type ContentKey,
  openSegment,
  openSegmentPieces,
  SEGMENT_BYTES,
  sealSegmentIntoPieces,
  segmentsOf,
  TAG_BYTES,
} from './sealed.js'

/**
 * A file as the mesh stores it: sealed segments (see `sealed.ts`), each cut into K equal pieces
 * (the last padded with zeros) and Reed-Solomon coded into N; shard i is piece i of every segment
 * in order. The manifest commits to everything a holder or verifier needs to check a byte (sizes,
 * the code, each shard's chunk-tree root) and nothing secret; its CID is the file's identifier.
 * Encoding and decoding stream a segment at a time: a file is never held whole.
 */

const hex32 = z.string().regex(/^[0-9a-f]{64}$/)

/** Largest segment a file may be cut into (a sealed segment travels in one request at K = 1). */
export const MAX_SEGMENT_BYTES = 4 * 1024 * 1024

/** How a file is cut and coded: the manifest's and an offer's common fields, checked the same way. */
export const FILE_PARAMETERS = {
  /** Plaintext bytes. */
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  segmentBytes: z.number().int().min(4_096).max(MAX_SEGMENT_BYTES),
  chunkBytes: z
    .number()
    .int()
    .min(1_024)
    .max(1024 * 1024),
  k: z.number().int().min(1).max(64),
  n: z.number().int().min(1).max(128),
}

/** The file's public manifest (version 1). */
export const MANIFEST = z
  .object({
    v: z.literal(1),
    ...FILE_PARAMETERS,
    /** Each shard's byte length and chunk-tree root (hex), by shard index. */
    shards: z
      .array(z.object({ bytes: z.number().int().nonnegative(), root: hex32 }).strict())
      .min(1)
      .max(128),
  })
  .strict()
  .refine((m) => m.k <= m.n && m.shards.length === m.n, { message: 'k <= n and one entry per shard' })

export type Manifest = z.infer<typeof MANIFEST>

/** Largest manifest accepted from the network. */
export const MAX_MANIFEST_BYTES = 16 * 1024

/** The CID (v1, raw codec, sha2-256, base32) of some bytes. */
export function cidOfBytes(bytes: Uint8Array): string {
  return CID.createV1(raw.code, createDigest(0x12, sha256(bytes))).toString()
}

/** The manifest's canonical bytes and CID: the file's identifier. */
export function manifestCid(m: Manifest): { cid: string; bytes: Uint8Array } {
  const bytes = new TextEncoder().encode(canonicalJson(m))
  return { cid: cidOfBytes(bytes), bytes }
}

/** Parses and checks manifest bytes against the CID they were fetched by. */
export function parseManifest(cid: string, bytes: Uint8Array): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES)
    throw new StorageError('STORAGE_MANIFEST_INVALID', 'manifest too large')
  let parsed: Manifest
  try {
    parsed = MANIFEST.parse(JSON.parse(new TextDecoder().decode(bytes)))
  } catch (err) {
    throw new StorageError(
      'STORAGE_MANIFEST_INVALID',
      `not a manifest: ${(err as Error).message.slice(0, 200)}`,
    )
  }
  const again = manifestCid(parsed)
  if (again.cid !== cid) throw new StorageError('STORAGE_MANIFEST_INVALID', `manifest does not match ${cid}`)
  const expected = shardBytesOf(parsed.size, parsed.segmentBytes, parsed.k)
  if (parsed.shards.some((s) => s.bytes !== expected))
    throw new StorageError('STORAGE_MANIFEST_INVALID', 'shard sizes do not follow from the file size')
  return parsed
}

/** Bytes of each piece of segment `i`. */
function pieceBytesOf(sealedBytes: number, k: number): number {
  return Math.ceil(sealedBytes / k)
}

/** Bytes of every shard of a file of `size` bytes. */
export function shardBytesOf(size: number, segmentBytes: number, k: number): number {
  const segments = segmentsOf(size, segmentBytes)
  let total = 0
  for (let i = 0; i < segments.count; i++) total += pieceBytesOf(segments.sealedBytes(i), k)
  return total
}

/** Options of {@link FileEncoder}. */
export interface EncodeOptions {
  k: number
  n: number
  segmentBytes?: number
  chunkBytes?: number
  /**
   * Bytes left free before each piece, in a buffer of the piece's own (a multiple of 4; default 0):
   * the client frames a piece's request there instead of copying the piece into it.
   */
  pieceRoom?: number
}

/**
 * Encodes a file of known size as it is read: `push` plaintext slices; every complete segment comes
 * out of `onPieces` as N pieces (piece i goes to the end of shard i); `finish` returns the manifest.
 */
export class FileEncoder {
  readonly #key: ContentKey
  readonly #size: number
  readonly #k: number
  readonly #n: number
  readonly #segmentBytes: number
  readonly #chunkBytes: number
  readonly #rs: ReedSolomon
  readonly #trees: ChunkTreeBuilder[]
  readonly #segments: ReturnType<typeof segmentsOf>
  readonly #onPieces: (segment: number, pieces: Uint8Array[]) => void
  readonly #pieceRoom: number
  #buffer: Uint8Array
  #filled = 0
  #segment = 0
  #read = 0

  constructor(
    key: ContentKey,
    size: number,
    options: EncodeOptions,
    onPieces: (segment: number, pieces: Uint8Array[]) => void,
  ) {
    this.#key = key
    this.#size = size
    this.#k = options.k
    this.#n = options.n
    this.#segmentBytes = options.segmentBytes ?? SEGMENT_BYTES
    this.#chunkBytes = options.chunkBytes ?? CHUNK_BYTES
    this.#rs = new ReedSolomon(this.#k, this.#n)
    this.#segments = segmentsOf(size, this.#segmentBytes)
    this.#trees = Array.from({ length: this.#n }, () => new ChunkTreeBuilder(this.#chunkBytes))
    this.#onPieces = onPieces
    this.#pieceRoom = options.pieceRoom ?? 0
    if (!Number.isSafeInteger(this.#pieceRoom) || this.#pieceRoom < 0 || this.#pieceRoom % 4 !== 0)
      throw new RangeError('pieceRoom must be a multiple of 4')
    this.#buffer = new Uint8Array(Math.min(this.#segmentBytes, Math.max(size, 0)))
  }

  push(data: Uint8Array): void {
    if (this.#read + data.length > this.#size)
      throw new StorageError('STORAGE_SIZE_MISMATCH', `more than the announced ${this.#size} bytes`)
    this.#read += data.length
    let at = 0
    while (at < data.length) {
      const want = this.#plainBytes(this.#segment) - this.#filled
      const take = Math.min(want, data.length - at)
      this.#buffer.set(data.subarray(at, at + take), this.#filled)
      this.#filled += take
      at += take
      if (this.#filled === this.#plainBytes(this.#segment) && this.#segment < this.#segments.count - 1)
        this.#emit()
    }
  }

  finish(): Manifest {
    if (this.#read !== this.#size)
      throw new StorageError(
        'STORAGE_SIZE_MISMATCH',
        `read ${this.#read} of the announced ${this.#size} bytes`,
      )
    this.#emit()
    return {
      v: 1,
      size: this.#size,
      segmentBytes: this.#segmentBytes,
      chunkBytes: this.#chunkBytes,
      k: this.#k,
      n: this.#n,
      shards: this.#trees.map((t) => {
        const bytes = t.bytes
        const tree = t.finish()
        return { bytes, root: Buffer.from(tree.root).toString('hex') }
      }),
    }
  }

  #plainBytes(i: number): number {
    return this.#segments.sealedBytes(i) - 16
  }

  #emit(): void {
    const i = this.#segment
    const last = i === this.#segments.count - 1
    const pieceBytes = pieceBytesOf(this.#filled + TAG_BYTES, this.#k)
    // Every piece in a zeroed buffer of its own, after the room asked for; the segment is sealed
    // straight into the data pieces (the last one zero-padded) and coded straight into the parity.
    const room = this.#pieceRoom
    const pieces = Array.from({ length: this.#n }, () => new Uint8Array(room + pieceBytes).subarray(room))
    const data = pieces.slice(0, this.#k)
    sealSegmentIntoPieces(this.#key, i, last, this.#buffer.subarray(0, this.#filled), data)
    this.#rs.encodeInto(data, pieces.slice(this.#k))
    for (const [s, piece] of pieces.entries()) (this.#trees[s] as ChunkTreeBuilder).push(piece)
    this.#onPieces(i, pieces)
    this.#segment++
    this.#filled = 0
  }
}

/** Where segment `i`'s piece sits in every shard, and its length. */
export function pieceRange(m: Manifest, i: number): { offset: number; bytes: number } {
  const segments = segmentsOf(m.size, m.segmentBytes)
  // Every segment but the last has the same piece size.
  const full = pieceBytesOf(m.segmentBytes + 16, m.k)
  const bytes = pieceBytesOf(segments.sealedBytes(i), m.k)
  return { offset: i * full, bytes }
}

/** Segments in a manifest's file. */
export function segmentCount(m: Manifest): number {
  return segmentsOf(m.size, m.segmentBytes).count
}

/**
 * Decodes segment `i` from the pieces of any K shards (`pieces[s]` is shard s's piece or undefined):
 * the plaintext, or a `STORAGE_KEY_INVALID` / `STORAGE_DATA_CORRUPT` error (never wrong bytes).
 */
export function decodeSegment(
  m: Manifest,
  key: ContentKey,
  i: number,
  pieces: readonly (Uint8Array | undefined)[],
): Uint8Array {
  const segments = segmentsOf(m.size, m.segmentBytes)
  const sealedBytes = segments.sealedBytes(i)
  const rs = new ReedSolomon(m.k, m.n)
  let shards: Uint8Array[]
  try {
    // The data pieces only: parity is not needed to read.
    shards = rs.reconstructData(pieces)
  } catch (err) {
    throw new StorageError('STORAGE_UNAVAILABLE', `segment ${i}: ${(err as Error).message}`)
  }
  const sealed = new Uint8Array(sealedBytes)
  let at = 0
  for (let p = 0; p < m.k && at < sealedBytes; p++) {
    const piece = shards[p] as Uint8Array
    const take = Math.min(piece.length, sealedBytes - at)
    sealed.set(piece.subarray(0, take), at)
    at += take
  }
  return openSegment(key, i, i === segments.count - 1, sealed)
}

/**
 * {@link decodeSegment} without copying the data pieces into one buffer first: the plaintext as one
 * part per data piece, in order, once the whole segment has been checked (the same errors).
 */
export function decodeSegmentParts(
  m: Manifest,
  key: ContentKey,
  i: number,
  pieces: readonly (Uint8Array | undefined)[],
): Uint8Array[] {
  const segments = segmentsOf(m.size, m.segmentBytes)
  const rs = new ReedSolomon(m.k, m.n)
  let shards: Uint8Array[]
  try {
    shards = rs.reconstructData(pieces)
  } catch (err) {
    throw new StorageError('STORAGE_UNAVAILABLE', `segment ${i}: ${(err as Error).message}`)
  }
  return openSegmentPieces(key, i, i === segments.count - 1, shards, segments.sealedBytes(i))
}

/** Chunks in a manifest's shards. */
export function shardChunks(m: Manifest): number {
  return chunkCount((m.shards[0] as { bytes: number }).bytes, m.chunkBytes)
}
