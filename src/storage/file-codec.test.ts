import { describe, expect, it } from 'vitest'
import { buildChunkTree, ChunkTreeBuilder, verifyChunk } from './chunk-tree.js'
import {
  decodeSegment,
  decodeSegmentParts,
  FileEncoder,
  type Manifest,
  manifestCid,
  parseManifest,
  pieceRange,
  segmentCount,
  shardBytesOf,
} from './file-codec.js'
import { formatContentKey, newContentKey, parseContentKey } from './sealed.js'

const SEGMENT = 64 * 1024

/** Deterministic bytes with a known pattern written through them every 4 KiB. */
function fileOf(size: number, pattern: Uint8Array): Uint8Array {
  const out = new Uint8Array(size)
  let x = 0x9e3779b9
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  for (let at = 0; at + pattern.length <= size; at += 4_096) out.set(pattern, at)
  return out
}

/** Encodes in slices of `slice` bytes; returns the manifest and the shards. */
function encode(file: Uint8Array, k: number, n: number, slice = 7_777, pieceRoom = 0, key = newContentKey()) {
  const shards: Uint8Array[][] = Array.from({ length: n }, () => [])
  const encoder = new FileEncoder(
    key,
    file.length,
    { k, n, segmentBytes: SEGMENT, chunkBytes: 4_096, pieceRoom },
    (_, pieces) => {
      for (const [s, p] of pieces.entries()) shards[s]?.push(p.slice())
    },
  )
  for (let at = 0; at < file.length; at += slice) encoder.push(file.subarray(at, at + slice))
  const manifest = encoder.finish()
  return { key, manifest, shards: shards.map((parts) => Buffer.concat(parts)) }
}

function decode(
  manifest: Manifest,
  key: ReturnType<typeof newContentKey>,
  shards: (Uint8Array | undefined)[],
) {
  const parts: Uint8Array[] = []
  for (let i = 0; i < segmentCount(manifest); i++) {
    const { offset, bytes } = pieceRange(manifest, i)
    const pieces = shards.map((s) => s?.subarray(offset, offset + bytes))
    const whole = decodeSegment(manifest, key, i, pieces)
    // The parts a get hands out, one per data piece: the same bytes.
    expect(Buffer.concat(decodeSegmentParts(manifest, key, i, pieces))).toEqual(Buffer.from(whole))
    parts.push(whole)
  }
  return Buffer.concat(parts)
}

const PATTERN = new TextEncoder().encode('MESHWORK-PLAINTEXT-CANARY-0123456789')

describe('file codec (seal, erasure code, commit)', () => {
  it('round-trips 0 B, 1 B, one segment exactly and 3.5 segments, byte for byte, from any K of N', () => {
    for (const size of [0, 1, SEGMENT, Math.floor(3.5 * SEGMENT)]) {
      const file = fileOf(size, PATTERN)
      const { key, manifest, shards } = encode(file, 3, 5)
      expect(manifest.shards.every((s, i) => s.bytes === shards[i]?.length)).toBe(true)
      expect(shards[0]?.length).toBe(shardBytesOf(size, SEGMENT, 3))
      expect(Buffer.from(decode(manifest, key, shards)).equals(Buffer.from(file))).toBe(true)
      // N - K holders gone (two data shards).
      expect(
        Buffer.from(decode(manifest, key, [undefined, shards[1], undefined, shards[3], shards[4]])).equals(
          Buffer.from(file),
        ),
      ).toBe(true)
    }
  })

  it('gives the same shards and manifest with room left before each piece, and leaves that room free', () => {
    const file = fileOf(3.5 * SEGMENT, PATTERN)
    const key = newContentKey()
    const plain = encode(file, 4, 6, 7_777, 0, key)
    const roomy = encode(file, 4, 6, 7_777, 256, key)
    expect(roomy.manifest).toEqual(plain.manifest)
    expect(roomy.shards).toEqual(plain.shards)
    const seen: Uint8Array[] = []
    const encoder = new FileEncoder(key, 1_000, { k: 2, n: 3, segmentBytes: SEGMENT, pieceRoom: 8 }, (_, p) =>
      seen.push(...p),
    )
    encoder.push(file.subarray(0, 1_000))
    encoder.finish()
    for (const p of seen) {
      expect(p.byteOffset).toBe(8)
      expect(new Uint8Array(p.buffer, 0, 8).every((b) => b === 0)).toBe(true)
    }
    expect(() => new FileEncoder(key, 1, { k: 1, n: 1, pieceRoom: 3 }, () => undefined)).toThrow(RangeError)
  })

  it('commits each shard to the root a holder would compute, and every chunk proves against it', () => {
    const { manifest, shards } = encode(fileOf(200_000, PATTERN), 2, 4)
    for (const [s, shard] of shards.entries()) {
      const tree = buildChunkTree(shard, 4_096)
      expect(Buffer.from(tree.root).toString('hex')).toBe(manifest.shards[s]?.root)
      for (let c = 0; c < tree.count; c++) {
        const chunk = shard.subarray(c * 4_096, (c + 1) * 4_096)
        expect(verifyChunk(tree.root, tree.count, c, chunk, tree.path(c))).toBe(true)
      }
      // A changed byte, another chunk's path, or a wrong index do not prove.
      const bad = Uint8Array.from(shard.subarray(0, 4_096))
      bad[7] = (bad[7] as number) ^ 1
      expect(verifyChunk(tree.root, tree.count, 0, bad, tree.path(0))).toBe(false)
      expect(verifyChunk(tree.root, tree.count, 1, shard.subarray(0, 4_096), tree.path(0))).toBe(false)
      expect(verifyChunk(tree.root, tree.count, tree.count, shard.subarray(0, 1), [])).toBe(false)
    }
    // Streaming in odd slices gives the same root as the whole shard.
    const b = new ChunkTreeBuilder(4_096)
    const shard = shards[0] as Uint8Array
    for (let at = 0; at < shard.length; at += 1_000) b.push(shard.subarray(at, at + 1_000))
    expect(b.finish().root).toEqual(buildChunkTree(shard, 4_096).root)
  })

  it('never lets a holder see the plaintext: no shard contains the canary pattern', () => {
    const { shards } = encode(fileOf(300_000, PATTERN), 2, 3)
    for (const shard of shards) expect(Buffer.from(shard).indexOf(Buffer.from(PATTERN))).toBe(-1)
  })

  it('refuses a wrong key and a changed shard with a coded error, never with bytes', () => {
    const file = fileOf(150_000, PATTERN)
    const { key, manifest, shards } = encode(file, 2, 3)
    expect(() => decode(manifest, newContentKey(), shards)).toThrow(
      expect.objectContaining({ code: 'STORAGE_KEY_INVALID' }),
    )
    const changed = Uint8Array.from(shards[1] as Uint8Array)
    const { offset } = pieceRange(manifest, 1)
    changed[offset + 5] = (changed[offset + 5] as number) ^ 0x40
    expect(() => decode(manifest, key, [shards[0], changed, undefined])).toThrow(
      expect.objectContaining({ code: 'STORAGE_DATA_CORRUPT' }),
    )
    expect(() => decode(manifest, key, [shards[0], undefined, undefined])).toThrow(
      expect.objectContaining({ code: 'STORAGE_UNAVAILABLE' }),
    )
    // The key survives being written down and read back; garbage does not parse.
    expect(parseContentKey(formatContentKey(key))).toEqual(key)
    expect(() => parseContentKey('mwk1.short')).toThrow(
      expect.objectContaining({ code: 'STORAGE_KEY_INVALID' }),
    )
  })

  it('names a file by its manifest CID, and refuses a manifest that does not match it', () => {
    const { manifest } = encode(fileOf(10_000, PATTERN), 2, 3)
    const { cid, bytes } = manifestCid(manifest)
    expect(cid).toMatch(/^bafkrei[a-z2-7]+$/)
    expect(parseManifest(cid, bytes)).toEqual(manifest)
    const other = manifestCid({ ...manifest, size: manifest.size + 1 })
    expect(() => parseManifest(cid, other.bytes)).toThrow(
      expect.objectContaining({ code: 'STORAGE_MANIFEST_INVALID' }),
    )
    expect(() => parseManifest(other.cid, other.bytes)).toThrow(/shard sizes/)
    expect(() => parseManifest(cid, new TextEncoder().encode('{"v":2}'))).toThrow(
      expect.objectContaining({ code: 'STORAGE_MANIFEST_INVALID' }),
    )
  })
})
