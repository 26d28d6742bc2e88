import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { challengeTimes } from './schedule.js'

const seed = (n: number) => `0x${n.toString(16).padStart(64, '0')}`
const base = {
  seed: seed(1),
  verifier: 'v',
  node: 'n',
  epochStartMs: 1_000_000,
  epochDurationMs: 60_000,
  count: 6,
}

describe('challengeTimes', () => {
  it('puts one challenge in each slot of the window, ascending, the same for everyone', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 10_000, max: 10_000_000 }),
        (s, verifier, node, count, epochDurationMs) => {
          const input = { ...base, seed: seed(s), verifier, node, count, epochDurationMs }
          const times = challengeTimes(input)
          expect(challengeTimes(input)).toEqual(times)
          expect(times).toHaveLength(count)
          const start = base.epochStartMs + Math.floor(epochDurationMs * 0.1)
          const end = base.epochStartMs + Math.floor(epochDurationMs * 0.8)
          const slot = Math.floor((end - start) / count)
          times.forEach((t, i) => {
            expect(t).toBeGreaterThanOrEqual(start + i * slot)
            expect(t).toBeLessThan(start + (i + 1) * slot)
          })
        },
      ),
    )
  })

  it('differs by seed, verifier and node, so nobody can guess the times before the epoch block', () => {
    const a = challengeTimes(base)
    expect(challengeTimes({ ...base, seed: seed(2) })).not.toEqual(a)
    expect(challengeTimes({ ...base, verifier: 'w' })).not.toEqual(a)
    expect(challengeTimes({ ...base, node: 'm' })).not.toEqual(a)
  })

  it('refuses a malformed seed, no challenges, or a window too short for them', () => {
    expect(() => challengeTimes({ ...base, seed: '0x1234' })).toThrow(/seed/)
    expect(() => challengeTimes({ ...base, count: 0 })).toThrow(/count/)
    expect(() => challengeTimes({ ...base, epochDurationMs: 10, count: 50 })).toThrow(/too short/)
  })
})
