import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AccountAmounts, IntIndex, KeyIndex } from './key-index.js'

describe('KeyIndex', () => {
  it('gives each distinct key the next index, finds it again, and knows nothing else (as a Map would)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 12 }), { maxLength: 400 }),
        fc.array(fc.string()),
        (keys, probes) => {
          const index = new KeyIndex(1)
          const model = new Map<string, number>()
          for (const key of keys) {
            if (!model.has(key)) model.set(key, model.size)
            expect(index.add(key)).toBe(model.get(key))
          }
          expect(index.size).toBe(model.size)
          expect(index.keys).toEqual([...model.keys()])
          for (const key of [...keys, ...probes]) expect(index.get(key)).toBe(model.get(key) ?? -1)
        },
      ),
    )
  })
})

describe('IntIndex', () => {
  it('gives each distinct integer key the next index, finds it again, and knows nothing else (as a Map would)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 0x7fffffff })), {
          maxLength: 400,
        }),
        fc.array(fc.integer({ min: 0, max: 0x7fffffff })),
        (keys, probes) => {
          const index = new IntIndex(1)
          const model = new Map<number, number>()
          for (const key of keys) {
            if (!model.has(key)) model.set(key, model.size)
            expect(index.add(key)).toBe(model.get(key))
          }
          expect(index.size).toBe(model.size)
          for (const key of [...keys, ...probes]) expect(index.get(key)).toBe(model.get(key) ?? -1)
        },
      ),
    )
  })

  it('refuses a key outside [0, 2^31)', () => {
    expect(() => new IntIndex().add(-1)).toThrow(RangeError)
    expect(() => new IntIndex().add(2 ** 31)).toThrow(RangeError)
  })
})

describe('AccountAmounts', () => {
  it('sums amounts per account and reads like a map', () => {
    const amounts = new AccountAmounts()
    amounts.add('0xaa', 5n)
    amounts.add('0xbb', 1n)
    amounts.add('0xaa', 2n)
    expect(amounts.size).toBe(2)
    expect(amounts.get('0xAA')).toBe(7n)
    expect(amounts.has('0xcc')).toBe(false)
    expect([...amounts]).toEqual([
      ['0xaa', 7n],
      ['0xbb', 1n],
    ])
    expect([...amounts.values()]).toEqual([7n, 1n])
  })
})
