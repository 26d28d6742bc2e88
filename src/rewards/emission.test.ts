import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { emissionOf, emittedBefore, emittedThrough, totalEmission } from './emission.js'

const MESH = 10n ** 18n
const schedule = { initialEmission: 34_000n * MESH, halvingInterval: 8_760n }

describe('emission schedule', () => {
  it('releases the initial emission per epoch, halving every interval', () => {
    expect(emittedThrough(schedule, 0n)).toBe(34_000n * MESH)
    expect(emittedThrough(schedule, 8_759n)).toBe(297_840_000n * MESH)
    expect(emissionOf(schedule, 8_760n)).toBe(17_000n * MESH)
    expect(emittedThrough(schedule, 13_139n)).toBe(372_300_000n * MESH)
  })

  it('converges below twice the first period and fits the default max supply with the genesis allocation', () => {
    const total = totalEmission(schedule)
    expect(total).toBeLessThan(2n * 8_760n * 34_000n * MESH)
    expect(total + 400_000_000n * MESH).toBeLessThanOrEqual(1_000_000_000n * MESH)
  })

  it('is the running sum of emissionOf, and never decreases', () => {
    const small = { initialEmission: 1_000n, halvingInterval: 7n }
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 400n }), (epoch) => {
        let sum = 0n
        for (let e = 0n; e <= epoch; e++) sum += emissionOf(small, e)
        expect(emittedThrough(small, epoch)).toBe(sum)
        expect(emittedBefore(small, epoch + 2n) >= emittedBefore(small, epoch + 1n)).toBe(true)
      }),
    )
  })
})
