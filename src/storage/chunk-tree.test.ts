import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { buildChunkTree, ChunkTreeBuilder, chunkCount, verifyChunk } from './chunk-tree.js'

/** The commitment as docs/protocol.md defines it, written out plainly to hold the fast path to. */
function referenceRoot(shard: Uint8Array, chunkBytes: number): Uint8Array {
  const h = (...parts: Uint8Array[]) => {
    const hash = createHash('sha256')
    for (const p of parts) hash.update(p)
    return new Uint8Array(hash.digest())
  }
  let level: Uint8Array[] = []
  for (let at = 0; at < shard.length || level.length === 0; at += chunkBytes)
    level.push(h(Uint8Array.of(0), shard.subarray(at, at + chunkBytes)))
  while (level.length > 1) {
    const up: Uint8Array[] = []
    for (let i = 0; i < level.length; i += 2) {
      const right = level[i + 1]
      up.push(
        right === undefined ? (level[i] as Uint8Array) : h(Uint8Array.of(1), level[i] as Uint8Array, right),
      )
    }
    level = up
  }
  return level[0] as Uint8Array
}

describe('chunk tree', () => {
  it('has the known root of a fixed shard (the commitment holders sign must not drift)', () => {
    const shard = new Uint8Array(3 * 1024 + 5).map((_, i) => (i * 31) & 0xff)
    const root = buildChunkTree(shard, 1024).root
    expect(Buffer.from(root).toString('hex')).toBe(Buffer.from(referenceRoot(shard, 1024)).toString('hex'))
    expect(Buffer.from(buildChunkTree(new Uint8Array(0)).root).toString('hex')).toBe(
      // H(0x00): the root of an empty shard (one empty chunk).
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    )
  })

  it('matches the reference for any shard, however it is pushed, and every chunk proves', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 9 * 64 }),
        fc.integer({ min: 1, max: 130 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 6 }),
        (shard, chunkBytes, cuts) => {
          const b = new ChunkTreeBuilder(chunkBytes)
          let at = 0
          for (const cut of cuts) {
            const end = Math.min(shard.length, at + cut)
            b.push(shard.subarray(at, end))
            at = end
          }
          b.push(shard.subarray(at))
          const tree = b.finish()
          expect(tree.root).toEqual(referenceRoot(shard, chunkBytes))
          expect(tree.count).toBe(chunkCount(shard.length, chunkBytes))
          for (let c = 0; c < tree.count; c++) {
            const chunk = shard.subarray(c * chunkBytes, (c + 1) * chunkBytes)
            expect(verifyChunk(tree.root, tree.count, c, chunk, tree.path(c))).toBe(true)
          }
        },
      ),
      { numRuns: 200 },
    )
  })
})
