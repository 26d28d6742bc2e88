import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AccountAmounts, IntIndex, KeyIndex } from './key-index.js'

describe('KeyIndex', () => {
  it('gives each distinct key the next index, finds it again, and knows nothing else (as a Map would)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 12 }), { maxLength: 400 }),
        fc.array(fc.string()),
        fc.integer({ min: 1, max: 600 }),
        (keys, probes, expected) => {
          // Any expected count: its key list is made for that many, and cut when read.
          const index = new KeyIndex(expected)
          const model = new Map<string, number>()
          const half = keys.length >> 1
          keys.forEach((key, i) => {
            if (!model.has(key)) model.set(key, model.size)
            expect(index.add(key)).toBe(model.get(key))
            if (i === half) expect(index.keys).toEqual([...model.keys()])
          })
          expect(index.size).toBe(model.size)
          expect(index.keys).toEqual([...model.keys()])
          expect(index.clone().keys).toEqual([...model.keys()])
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

describe('AccountAmounts (amounts of any size)', () => {
  it('keeps every amount exactly, below 2^64, up to 2^128 and beyond, and negative ones (property)', () => {
    const amount = fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.bigInt({ min: 1n << 64n, max: (1n << 128n) - 1n }),
      fc.bigInt({ min: -(1n << 300n), max: 1n << 300n }),
      fc.constantFrom(0n, (1n << 64n) - 1n, 1n << 64n, (1n << 128n) - 1n, 1n << 128n, -1n),
    )
    const op = fc.tuple(fc.integer({ min: 0, max: 40 }), amount, fc.constantFrom('add', 'setAt', 'addAt'))
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const amounts = new AccountAmounts()
        const model = new Map<string, bigint>()
        for (const [k, value, kind] of ops) {
          const account = `0x${k.toString(16).padStart(40, '0')}` as const
          const at = amounts.indexOf(account)
          if (kind === 'add' || at < 0) {
            amounts.add(account, value)
            model.set(account, (model.get(account) ?? 0n) + value)
          } else if (kind === 'setAt') {
            amounts.setAt(at, value)
            model.set(account, value)
          } else {
            amounts.addAt(at, value)
            model.set(account, (model.get(account) ?? 0n) + value)
          }
        }
        expect([...amounts]).toEqual([...model])
        expect(amounts.sum()).toBe([...model.values()].reduce((a, b) => a + b, 0n))
        const zeros = AccountAmounts.zeroLike(amounts)
        expect([...zeros]).toEqual([...model.keys()].map((k) => [k, 0n]))
        for (let i = 0; i < amounts.size; i++) {
          const [account, value] = amounts.at(i)
          expect(amounts.keyAt(i)).toBe(account)
          expect(amounts.amountAt(i)).toBe(value)
          expect(amounts.get(account.toUpperCase().replace('0X', '0x'))).toBe(value)
        }
        expect(amounts.keyAt(amounts.size)).toBeUndefined()
      }),
    )
  })
})

describe('KeyIndex.ofDistinct', () => {
  it('indexes distinct keys as adding them in order does, and names the first key seen before (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 3 }), { maxLength: 300 }),
        fc.array(fc.string()),
        (keys, probes) => {
          const built = KeyIndex.ofDistinct(keys.length, (i) => keys[i] as string)
          const sequential = new KeyIndex(1)
          const twice = keys.findIndex((key, i) => sequential.add(key) !== i)
          if (twice >= 0) {
            expect(built).toBe(twice)
            return
          }
          if (typeof built === 'number') throw new Error(`found ${built} twice`)
          expect(built.size).toBe(keys.length)
          expect(built.keys).toEqual(keys)
          for (const key of [...keys, ...probes]) expect(built.get(key)).toBe(sequential.get(key))
          // It grows on as any index does.
          expect(built.add('a new key, longer than the others')).toBe(keys.length)
          expect(built.get('a new key, longer than the others')).toBe(keys.length)
        },
      ),
    )
  })
})

describe('AccountAmounts.sumOf', () => {
  it('sums (account, amount) pairs as adding them in order does (property)', () => {
    const pair = fc.tuple(
      fc.integer({ min: 0, max: 30 }),
      fc.oneof(fc.bigInt({ min: 0n, max: 1n << 70n }), fc.bigInt({ min: -(1n << 200n), max: 1n << 200n })),
    )
    fc.assert(
      fc.property(fc.array(pair, { maxLength: 120 }), fc.integer({ min: 0, max: 50 }), (pairs, room) => {
        const capacity = pairs.length + room
        const sequential = new AccountAmounts()
        const account = (k: number) => `0x${k.toString(16).padStart(40, '0')}` as const
        for (const [k, amount] of pairs) sequential.add(account(k), amount)
        const built = AccountAmounts.sumOf(capacity, (add) => {
          for (const [k, amount] of pairs) add(account(k), amount)
        })
        expect([...built]).toEqual([...sequential])
        expect(built.sum()).toBe(sequential.sum())
        for (let k = 0; k <= 31; k++) expect(built.indexOf(account(k))).toBe(sequential.indexOf(account(k)))
        // It takes more accounts as any does.
        built.add(account(99), 5n)
        expect(built.get(account(99))).toBe(5n)
        expect(built.size).toBe(sequential.size + 1)
      }),
    )
    const tooMany = () =>
      AccountAmounts.sumOf(1, (add) => {
        add('0x1', 1n)
        add('0x2', 1n)
      })
    expect(tooMany).toThrow(RangeError)
  })
})

describe('KeyIndex and AccountAmounts built at once, keys met many times', () => {
  it('finds the first repeat and sums in order however often a key comes back', () => {
    // More than 16 keys of one hash: the sorted path for long runs.
    const keys = ['b', ...Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? 'a' : `k${i}`)), 'b']
    expect(KeyIndex.ofDistinct(keys.length, (i) => keys[i] as string)).toBe(4)
    const accounts = Array.from(
      { length: 100 },
      (_, i) => `0x${(i % 4 === 1 ? 7 : i).toString(16).padStart(40, '0')}`,
    )
    const sequential = new AccountAmounts()
    accounts.forEach((a, i) => {
      sequential.add(a as `0x${string}`, BigInt(i) << 70n)
    })
    const built = AccountAmounts.sumOf(accounts.length, (add) => {
      accounts.forEach((a, i) => {
        add(a as `0x${string}`, BigInt(i) << 70n)
      })
    })
    expect([...built]).toEqual([...sequential])
    expect(built.indexOf(accounts[1] as string)).toBe(1)
  })
})
