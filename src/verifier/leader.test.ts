import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { attemptAt, leaderOf } from './leader.js'

const addr = (n: number) => `0x${n.toString(16).padStart(40, '0')}`

describe('leaderOf / attemptAt', () => {
  it('rotates through every verifier, the same whatever order or case they are listed in', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 1_000 }), { minLength: 1, maxLength: 12 }),
        fc.nat(1_000),
        (ns, epoch) => {
          const verifiers = ns.map(addr)
          const shuffled = [...verifiers]
            .reverse()
            .map((v, i) => (i % 2 === 0 ? v.toUpperCase().replace('0X', '0x') : v))
          const leaders = verifiers.map((_, attempt) => leaderOf(verifiers, epoch, attempt))
          expect(new Set(leaders).size).toBe(verifiers.length)
          for (let attempt = 0; attempt < verifiers.length; attempt++) {
            expect(leaderOf(shuffled, epoch, attempt)).toBe(leaders[attempt])
          }
          // The next epoch's first leader is this epoch's second.
          expect(leaderOf(verifiers, epoch + 1, 0)).toBe(leaderOf(verifiers, epoch, 1))
        },
      ),
    )
  })

  it('moves to the next attempt once per timeout after the epoch ends', () => {
    expect(attemptAt(900, 1_000, 300)).toBe(0)
    expect(attemptAt(1_000, 1_000, 300)).toBe(0)
    expect(attemptAt(1_299, 1_000, 300)).toBe(0)
    expect(attemptAt(1_300, 1_000, 300)).toBe(1)
    expect(attemptAt(1_950, 1_000, 300)).toBe(3)
    expect(() => leaderOf([], 1, 0)).toThrow(RangeError)
  })
})
