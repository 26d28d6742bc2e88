import { describe, expect, it } from 'vitest'
import { largeArray, scratchArray } from './large-array.js'

describe('largeArray and scratchArray', () => {
  it('makes zeroed arrays of the length asked for', () => {
    const small = largeArray(Int32Array, 10)
    const large = largeArray(Uint8Array, 2 << 20)
    expect(small.length).toBe(10)
    expect(large.length).toBe(2 << 20)
    expect(small.every((x) => x === 0) && large.every((x) => x === 0)).toBe(true)
  })

  it('gives a slot the same memory again, grown when too small, and each slot its own', () => {
    const a = scratchArray(Int32Array, 100, 7)
    a.fill(5)
    const b = scratchArray(Uint32Array, 50, 7)
    expect(b.length).toBe(50)
    expect(b.buffer).toBe(a.buffer)
    expect(b[0]).toBe(5)
    const other = scratchArray(Int32Array, 100, 6)
    expect(other.buffer).not.toBe(a.buffer)
    const grown = scratchArray(Int32Array, 1_000, 7)
    expect(grown.length).toBe(1_000)
    expect(grown.buffer).not.toBe(a.buffer)
    expect(scratchArray(Int32Array, 10, 7).buffer).toBe(grown.buffer)
    expect(() => scratchArray(Int32Array, 10, 8)).toThrow(RangeError)
  })
})
