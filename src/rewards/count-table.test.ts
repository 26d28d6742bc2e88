import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CountTable } from './count-table.js'

describe('CountTable', () => {
  it('reads back every count set, none where nothing was, before and after a count too wide for 16 bits (property)', () => {
    const count = fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.integer({ min: -1, max: 1_000_000 }))
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(63), value: count }),
      fc.record({
        kind: fc.constant('move' as const),
        to: fc.nat(32),
        from: fc.nat(32),
        length: fc.nat(31),
      }),
    )
    fc.assert(
      fc.property(fc.constantFrom(0, -1), fc.array(op, { maxLength: 100 }), (none, ops) => {
        const table = new CountTable(64, none)
        const model = new Array<number>(64).fill(none)
        for (const o of ops) {
          if (o.kind === 'move') {
            table.move(o.to, o.from, o.length)
            model.copyWithin(o.to, o.from, o.from + o.length)
          } else if (o.value < none) expect(() => table.set(o.at, o.value)).toThrow(RangeError)
          else {
            table.set(o.at, o.value)
            model[o.at] = o.value
          }
        }
        expect(Array.from({ length: 64 }, (_, i) => table.get(i))).toEqual(model)
      }),
    )
  })
})
