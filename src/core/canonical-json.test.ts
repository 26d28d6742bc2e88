import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalJson } from './canonical-json.js'

describe('canonicalJson', () => {
  it('gives the same bytes whatever the key order, and parses back to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value)
        const again = JSON.parse(text)
        expect(canonicalJson(again)).toBe(text)
        const reversed = JSON.parse(JSON.stringify(value), (_k, v) =>
          v && typeof v === 'object' && !Array.isArray(v)
            ? Object.fromEntries(Object.entries(v).reverse())
            : v,
        )
        expect(canonicalJson(reversed)).toBe(text)
      }),
    )
    expect(canonicalJson({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}')
  })

  it('refuses what JSON cannot hold exactly', () => {
    for (const bad of [
      { a: undefined },
      { a: Number.NaN },
      { a: 1n },
      [() => 1],
      { a: Number.POSITIVE_INFINITY },
    ]) {
      expect(() => canonicalJson(bad)).toThrow(TypeError)
    }
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    expect(() => canonicalJson(cycle)).toThrow(/cycle/)
  })
})
