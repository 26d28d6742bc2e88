import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SERVICES, type ServiceName, servicesMask, servicesOf } from './services.js'

describe('services bitmask', () => {
  it('round-trips any set of services', () => {
    const names = Object.keys(SERVICES) as ServiceName[]
    fc.assert(
      fc.property(fc.subarray(names), (subset) => {
        expect(servicesOf(servicesMask(subset))).toEqual(names.filter((n) => subset.includes(n)))
      }),
    )
  })
  it('ignores bits it does not know', () => {
    expect(servicesOf(SERVICES.storage | (1 << 20))).toEqual(['storage'])
  })
})
