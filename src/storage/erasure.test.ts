import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { codeIntoScalar, gfMul, ReedSolomon } from './erasure.js'

const bytes = (...b: number[]) => Uint8Array.from(b)

describe('GF(2^8)', () => {
  it('multiplies as carry-less multiplication reduced by 0x11d does, for every pair', () => {
    const reference = (a: number, b: number) => {
      let r = 0
      for (; b > 0; b >>= 1) {
        if (b & 1) r ^= a
        a <<= 1
        if (a & 0x100) a ^= 0x11d
      }
      return r
    }
    for (let a = 0; a < 256; a++)
      for (let b = 0; b < 256; b++) if (gfMul(a, b) !== reference(a, b)) throw new Error(`${a} × ${b}`)
    expect(gfMul(0x80, 2)).toBe(0x1d)
  })
})

describe('ReedSolomon', () => {
  it('gives the published parity of the 5+5 vector (Backblaze JavaReedSolomon, testOneEncode)', () => {
    const rs = new ReedSolomon(5, 5 + 5)
    const parity = rs.encode([bytes(0, 1), bytes(4, 5), bytes(2, 3), bytes(6, 7), bytes(8, 9)])
    expect(parity).toEqual([bytes(12, 13), bytes(10, 11), bytes(14, 15), bytes(90, 91), bytes(94, 95)])
  })

  it('rebuilds every shard from every subset of 5 of the 10 (252 subsets)', () => {
    const rs = new ReedSolomon(5, 10)
    const data = [bytes(0, 1), bytes(1, 2), bytes(1, 3), bytes(2, 4), bytes(3, 5)]
    const all = [...data, ...rs.encode(data)]
    let subsets = 0
    for (let mask = 0; mask < 1 << 10; mask++) {
      let bits = 0
      for (let m = mask; m > 0; m >>= 1) bits += m & 1
      if (bits !== 5) continue
      subsets++
      const given = all.map((s, i) => ((mask >> i) & 1 ? s : undefined))
      expect(rs.reconstruct(given)).toEqual(all)
    }
    expect(subsets).toBe(252)
  })

  it('rebuilds the data from any K of N shards (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 64 }),
        fc.integer(),
        (k, extra, length, seed) => {
          const n = k + extra
          const rs = new ReedSolomon(k, n)
          let x = seed | 1
          const next = () => {
            x ^= x << 13
            x ^= x >>> 17
            x ^= x << 5
            return x & 0xff
          }
          const data = Array.from({ length: k }, () => Uint8Array.from({ length }, next))
          const all = [...data, ...rs.encode(data)]
          expect(rs.verify(all)).toBe(true)
          // Drop N - K shards chosen by the seed.
          const order = all
            .map((_, i) => i)
            .sort((a, b) => ((a * 7919 + seed) & 1023) - ((b * 7919 + seed) & 1023))
          const missing = new Set(order.slice(0, n - k))
          const given = all.map((s, i) => (missing.has(i) ? undefined : s))
          expect(rs.reconstruct(given)).toEqual(all)
        },
      ),
    )
  })

  it("codes as the byte-by-byte definition does, whatever the length and the inputs' alignment (property)", () => {
    // The coder works 16 bytes at a time in WebAssembly SIMD, with the bytes past the last 16 one by
    // one: check it against the matrix applied per byte.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer(),
        (k, extra, length, offset, seed) => {
          const rs = new ReedSolomon(k, k + extra)
          let x = seed | 1
          const next = () => {
            x ^= x << 13
            x ^= x >>> 17
            x ^= x << 5
            return x & 0xff
          }
          const backing = Uint8Array.from({ length: k * length + offset }, next)
          const data = Array.from({ length: k }, (_, c) =>
            backing.subarray(offset + c * length, offset + (c + 1) * length),
          )
          const parity = rs.encode(data)
          // Row r of the parity is what the unit vectors' parity says its coefficients are.
          const unit = (c: number) => Array.from({ length: k }, (_, j) => Uint8Array.of(j === c ? 1 : 0))
          const columns = Array.from({ length: k }, (_, c) => rs.encode(unit(c)))
          for (let p = 0; p < extra; p++)
            for (let i = 0; i < length; i++) {
              let v = 0
              for (let c = 0; c < k; c++)
                v ^= gfMul(
                  ((columns[c] as Uint8Array[])[p] as Uint8Array)[0] as number,
                  (data[c] as Uint8Array)[i] as number,
                )
              if ((parity[p] as Uint8Array)[i] !== v) throw new Error(`parity ${p} byte ${i}`)
            }
          // encodeInto gives the same parity into views of buffers of their own, whatever they held.
          const into = Array.from({ length: extra }, () => new Uint8Array(8 + length).fill(0xa5).subarray(8))
          rs.encodeInto(data, into)
          expect(into).toEqual(parity)
          const given = [...data, ...parity].map((s, i) => (i < Math.min(extra, k) ? undefined : s))
          expect(rs.reconstructData(given)).toEqual(data.map((d) => Uint8Array.from(d)))
        },
      ),
      { numRuns: 200 },
    )
  })

  it('codes the same in its JavaScript fallback as in WebAssembly SIMD (property)', () => {
    // Where WebAssembly SIMD does not run, the coder works a 32-bit word at a time, and copies
    // inputs that are not on a word boundary. The SIMD coder works in blocks of 64 KiB: lengths
    // around a block's end and past two blocks too.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 6 }),
        fc.oneof(
          { arbitrary: fc.integer({ min: 0, max: 2_000 }), weight: 4 },
          fc.integer({ min: 65_536 - 20, max: 65_536 + 20 }),
          fc.integer({ min: 2 * 65_536, max: 3 * 65_536 }),
        ),
        fc.integer({ min: 0, max: 3 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        (k, extra, length, offset, seed) => {
          const rs = new ReedSolomon(k, k + extra)
          const backing = Uint8Array.from(
            { length: k * length + offset },
            (_, i) => (seed[i % 64] as number) ^ (i * 7),
          )
          const data = Array.from({ length: k }, (_, c) =>
            backing.subarray(offset + c * length, offset + (c + 1) * length),
          )
          const unit = (c: number) => Array.from({ length: k }, (_, j) => Uint8Array.of(j === c ? 1 : 0))
          const columns = Array.from({ length: k }, (_, c) => rs.encode(unit(c)))
          const rows = Array.from({ length: extra }, (_, p) =>
            Uint8Array.from(
              { length: k },
              (_, c) => ((columns[c] as Uint8Array[])[p] as Uint8Array)[0] as number,
            ),
          )
          const scalar = rows.map(() => new Uint8Array(length))
          codeIntoScalar(rows, data, scalar)
          const simd = rs.encode(data)
          // Compared as buffers: a deep equality of 200 KiB arrays takes seconds.
          const differ = scalar.findIndex((p, r) => Buffer.compare(p, simd[r] as Uint8Array) !== 0)
          expect(differ).toBe(-1)
        },
      ),
      { numRuns: 100 },
    )
  })

  it('notices changed parity, and refuses too few shards or bad parameters', () => {
    const rs = new ReedSolomon(3, 5)
    const data = [bytes(1, 2, 3), bytes(4, 5, 6), bytes(7, 8, 9)]
    const all = [...data, ...rs.encode(data)]
    const tampered = all[4] as Uint8Array
    tampered[1] = (tampered[1] as number) ^ 1
    expect(rs.verify(all)).toBe(false)
    expect(() => rs.reconstruct([all[0], undefined, undefined, all[3], undefined])).toThrow(/need 3 shards/)
    expect(() => rs.reconstruct([all[0], bytes(1), all[2], undefined, undefined])).toThrow(/differ in length/)
    expect(() => new ReedSolomon(0, 3)).toThrow(RangeError)
    expect(() => new ReedSolomon(4, 3)).toThrow(RangeError)
    expect(() => new ReedSolomon(200, 300)).toThrow(RangeError)
  })
})
