import { keccak_256 } from '@noble/hashes/sha3.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KECCAK_DATA_OFFSET, keccak256, keccakModule } from './keccak.js'

describe('keccak256 (our WebAssembly module)', () => {
  it('equals @noble/hashes keccak_256 for any input, across the one-block limit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        expect(Buffer.from(keccak256(data))).toEqual(Buffer.from(keccak_256(data)))
      }),
      { numRuns: 500 },
    )
    // Known vector: keccak256("") as Ethereum uses it.
    expect(Buffer.from(keccak256(new Uint8Array())).toString('hex')).toBe(
      'c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470',
    )
  })

  it('hashes leaves twice and inner nodes as sorted pairs, in its own loops', () => {
    const n = 5
    const k = keccakModule(n * 64 + n * 32 + (2 * n - 1) * 32)
    const memory = new Uint8Array(k.memory.buffer)
    const enc = KECCAK_DATA_OFFSET
    const out = enc + n * 64
    for (let i = 0; i < n * 64; i++) memory[enc + i] = (i * 131) & 0xff
    k.hashLeaves(n, enc, out)
    for (let i = 0; i < n; i++) {
      const expected = keccak_256(keccak_256(memory.slice(enc + i * 64, enc + i * 64 + 64)))
      expect(Buffer.from(memory.slice(out + i * 32, out + i * 32 + 32))).toEqual(Buffer.from(expected))
    }
    // A tree of 3 nodes: node 0 = keccak256(sorted(node 1, node 2)).
    const tree = out + n * 32
    memory.copyWithin(tree + 32, out, out + 64)
    k.hashInner(tree, 0, 0)
    const [a, b] = [memory.slice(tree + 32, tree + 64), memory.slice(tree + 64, tree + 96)]
    const [lo, hi] = Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? [a, b] : [b, a]
    expect(Buffer.from(memory.slice(tree, tree + 32))).toEqual(
      Buffer.from(keccak_256(new Uint8Array([...lo, ...hi]))),
    )
  })
})
