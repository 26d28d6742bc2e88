import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  newContentKey,
  openSegment,
  openSegmentPieces,
  sealSegment,
  sealSegmentIntoPieces,
} from './sealed.js'

describe('sealed segments', () => {
  it('are exactly @noble/ciphers’ XChaCha20-Poly1305 (native bulk, noble subkey), and open back', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3_000 }),
        fc.nat({ max: 2 ** 40 }),
        fc.boolean(),
        (plain, index, last) => {
          const k = newContentKey()
          const sealed = sealSegment(k, index, last, plain)
          const nonce = new Uint8Array(24)
          nonce.set(k.noncePrefix)
          new DataView(nonce.buffer).setBigUint64(16, BigInt(index))
          const domain = new TextEncoder().encode('meshwork-storage-v1')
          const aad = new Uint8Array(domain.length + 9)
          aad.set(domain)
          new DataView(aad.buffer).setBigUint64(domain.length, BigInt(index))
          aad[domain.length + 8] = last ? 1 : 0
          expect(sealed).toEqual(xchacha20poly1305(k.key, nonce, aad).encrypt(plain))
          expect(openSegment(k, index, last, sealed)).toEqual(plain)
        },
      ),
      { numRuns: 50 },
    )
  })

  it('are sealed across pieces as they are sealed whole, whatever the split (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3_000 }),
        fc.integer({ min: 1, max: 9 }),
        fc.nat({ max: 40 }),
        fc.boolean(),
        (plain, k, spare, last) => {
          const key = newContentKey()
          const sealed = sealSegment(key, 7, last, plain)
          const size = Math.ceil((sealed.length + spare) / k)
          const pieces = Array.from({ length: k }, () => new Uint8Array(size))
          sealSegmentIntoPieces(key, 7, last, plain, pieces)
          const joined = Buffer.concat(pieces)
          expect(joined.subarray(0, sealed.length)).toEqual(Buffer.from(sealed))
          expect(joined.subarray(sealed.length).every((b) => b === 0)).toBe(true)
          // Opened from the pieces as they are, padding and all; a changed byte (the tag's too,
          // wherever it falls) opens nothing.
          expect(Buffer.concat(openSegmentPieces(key, 7, last, pieces, sealed.length))).toEqual(
            Buffer.from(plain),
          )
          const at = (plain.length * 7919 + spare) % sealed.length
          const piece = pieces[Math.floor(at / size)] as Uint8Array
          piece[at % size] = (piece[at % size] as number) ^ 1
          expect(() => openSegmentPieces(key, 7, last, pieces, sealed.length)).toThrow(
            expect.objectContaining({ code: 'STORAGE_DATA_CORRUPT' }),
          )
        },
      ),
      { numRuns: 100 },
    )
    expect(() =>
      sealSegmentIntoPieces(newContentKey(), 0, true, new Uint8Array(10), [new Uint8Array(25)]),
    ).toThrow(RangeError)
  })

  it('does not open out of place, as another segment, cut short or under another key', () => {
    const k = newContentKey()
    const sealed = sealSegment(k, 3, false, new TextEncoder().encode('segment three'))
    for (const [index, last, bytes, key] of [
      [4, false, sealed, k],
      [3, true, sealed, k],
      [3, false, sealed.subarray(0, sealed.length - 1), k],
      [3, false, sealed, newContentKey()],
    ] as const)
      expect(() => openSegment(key, index, last, bytes)).toThrow(
        expect.objectContaining({ code: 'STORAGE_DATA_CORRUPT' }),
      )
    expect(() => openSegment(k, 0, false, new Uint8Array(3))).toThrow(
      expect.objectContaining({ code: 'STORAGE_KEY_INVALID' }),
    )
  })
})
