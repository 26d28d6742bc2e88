import { createCipheriv, createDecipheriv } from 'node:crypto'
import { hchacha } from '@noble/ciphers/chacha.js'
import { randomBytes } from '@noble/hashes/utils.js'
import { StorageError } from './errors.js'

/**
 * Client-side encryption of stored content: the plaintext is cut into segments (4 MiB by default)
 * and each is sealed with XChaCha20-Poly1305 under the file's content key. The 24-byte nonce is the
 * file's random 16-byte prefix and the segment's index (8 bytes, big-endian); the associated data
 * binds the index and whether the segment is the last, so segments cannot be reordered, dropped,
 * repeated or the file cut short without the tag failing. Nodes only ever see sealed segments.
 */

/** Plaintext bytes per segment unless a file says otherwise. */
export const SEGMENT_BYTES = 4 << 20
/** What sealing adds to a segment (the Poly1305 tag). */
export const TAG_BYTES = 16
const KEY_BYTES = 32
const PREFIX_BYTES = 16
const DOMAIN = new TextEncoder().encode('meshwork-storage-v1')

/** A file's secrets: the content key and the nonce prefix (never sent to nodes). */
export interface ContentKey {
  key: Uint8Array
  noncePrefix: Uint8Array
}

/** A fresh random content key. */
export function newContentKey(): ContentKey {
  return { key: randomBytes(KEY_BYTES), noncePrefix: randomBytes(PREFIX_BYTES) }
}

/** The key as one string for a user to keep: `mwk1.` and base64url of key and prefix. */
export function formatContentKey(k: ContentKey): string {
  const both = new Uint8Array(KEY_BYTES + PREFIX_BYTES)
  both.set(k.key)
  both.set(k.noncePrefix, KEY_BYTES)
  return `mwk1.${Buffer.from(both).toString('base64url')}`
}

/** Reads a key written by {@link formatContentKey}; throws a `STORAGE_KEY_INVALID` error otherwise. */
export function parseContentKey(text: string): ContentKey {
  const body = text.startsWith('mwk1.') ? Buffer.from(text.slice(5), 'base64url') : undefined
  if (body === undefined || body.length !== KEY_BYTES + PREFIX_BYTES || text.length > 128)
    throw new StorageError('STORAGE_KEY_INVALID', 'not a Meshwork content key (expected mwk1.…)')
  return {
    key: new Uint8Array(body.subarray(0, KEY_BYTES)),
    noncePrefix: new Uint8Array(body.subarray(KEY_BYTES)),
  }
}

function nonceOf(k: ContentKey, index: number): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`bad segment index ${index}`)
  const nonce = new Uint8Array(24)
  nonce.set(k.noncePrefix)
  new DataView(nonce.buffer).setBigUint64(PREFIX_BYTES, BigInt(index))
  return nonce
}

function aadOf(index: number, last: boolean): Uint8Array {
  const aad = new Uint8Array(DOMAIN.length + 9)
  aad.set(DOMAIN)
  new DataView(aad.buffer).setBigUint64(DOMAIN.length, BigInt(index))
  aad[DOMAIN.length + 8] = last ? 1 : 0
  return aad
}

/**
 * XChaCha20-Poly1305 as its definition builds it: the subkey is HChaCha20(key, nonce[0..16)), then
 * ChaCha20-Poly1305 (RFC 8439) with nonce 0⁴ ‖ nonce[16..24). The subkey comes from @noble/ciphers,
 * the bulk from node:crypto's native cipher (many times faster on MiB-sized segments); the output is
 * byte for byte that of @noble/ciphers' `xchacha20poly1305` (ciphertext ‖ tag; the tests compare).
 */
function xchachaParts(key: Uint8Array, nonce: Uint8Array): { subkey: Uint8Array; iv: Uint8Array } {
  const sigma = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574])
  const k32 = new Uint32Array(8)
  const keyView = new DataView(key.buffer, key.byteOffset, 32)
  for (let i = 0; i < 8; i++) k32[i] = keyView.getUint32(i * 4, true)
  const n32 = new Uint32Array(4)
  const nonceView = new DataView(nonce.buffer, nonce.byteOffset, 24)
  for (let i = 0; i < 4; i++) n32[i] = nonceView.getUint32(i * 4, true)
  const out32 = new Uint32Array(8)
  hchacha(sigma, k32, n32, out32)
  const subkey = new Uint8Array(32)
  const subView = new DataView(subkey.buffer)
  for (let i = 0; i < 8; i++) subView.setUint32(i * 4, out32[i] as number, true)
  const iv = new Uint8Array(12)
  iv.set(nonce.subarray(16, 24), 4)
  return { subkey, iv }
}

/** Seals segment `index` of a file (`last` for its final segment). */
export function sealSegment(k: ContentKey, index: number, last: boolean, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG_BYTES)
  sealSegmentInto(k, index, last, plaintext, out)
  return out
}

/**
 * {@link sealSegment} written into `target` (at least the plaintext's length plus {@link TAG_BYTES}),
 * so that a caller that lays the sealed bytes out in a buffer of its own copies them once.
 */
export function sealSegmentInto(
  k: ContentKey,
  index: number,
  last: boolean,
  plaintext: Uint8Array,
  target: Uint8Array,
): void {
  if (target.length < plaintext.length + TAG_BYTES) throw new RangeError('target too short')
  const { subkey, iv } = xchachaParts(k.key, nonceOf(k, index))
  const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(aadOf(index, last), { plaintextLength: plaintext.length })
  const body = cipher.update(plaintext)
  target.set(body)
  const rest = cipher.final()
  target.set(rest, body.length)
  target.set(cipher.getAuthTag(), body.length + rest.length)
}

/**
 * {@link sealSegment} written across `pieces` in order (each filled before the next; what the sealed
 * bytes do not fill is left as it is), so that a segment is sealed straight into the K pieces it is
 * cut into, each in a buffer of its own. The bytes are those of {@link sealSegmentInto}.
 */
export function sealSegmentIntoPieces(
  k: ContentKey,
  index: number,
  last: boolean,
  plaintext: Uint8Array,
  pieces: readonly Uint8Array[],
): void {
  const room = pieces.reduce((n, p) => n + p.length, 0)
  if (room < plaintext.length + TAG_BYTES) throw new RangeError('pieces too short')
  const { subkey, iv } = xchachaParts(k.key, nonceOf(k, index))
  const cipher = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(aadOf(index, last), { plaintextLength: plaintext.length })
  let p = 0
  let at = 0
  const put = (bytes: Uint8Array): void => {
    for (let o = 0; o < bytes.length; ) {
      const piece = pieces[p] as Uint8Array
      const n = Math.min(piece.length - at, bytes.length - o)
      piece.set(n === bytes.length ? bytes : bytes.subarray(o, o + n), at)
      at += n
      o += n
      if (at === piece.length) {
        p++
        at = 0
      }
    }
  }
  // A piece's worth of plaintext at a time: each output lands in one piece (the stream cipher
  // gives as many bytes as it takes).
  const step = Math.max(1, (pieces[0] as Uint8Array).length)
  for (let o = 0; o < plaintext.length; o += step) put(cipher.update(plaintext.subarray(o, o + step)))
  put(cipher.final())
  put(cipher.getAuthTag())
}

function openNative(k: ContentKey, index: number, last: boolean, sealed: Uint8Array): Uint8Array {
  if (sealed.length < TAG_BYTES) throw new RangeError('too short')
  const { subkey, iv } = xchachaParts(k.key, nonceOf(k, index))
  const decipher = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES })
  decipher.setAAD(aadOf(index, last), { plaintextLength: sealed.length - TAG_BYTES })
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
  const body = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES))
  const rest = decipher.final()
  // The stream cipher gives everything from update (final only checks the tag): the plaintext is
  // that buffer as it is, not copied again.
  const plain = rest.length === 0 ? body : Buffer.concat([body, rest])
  return new Uint8Array(plain.buffer, plain.byteOffset, plain.length)
}

/**
 * {@link openSegment} of the sealed bytes laid end to end across `pieces` (the first `sealedBytes`
 * of them; the rest is padding): the plaintext as one part per piece, none of it before the whole
 * segment checked, so that a reader need not first copy the pieces into one buffer.
 */
export function openSegmentPieces(
  k: ContentKey,
  index: number,
  last: boolean,
  pieces: readonly Uint8Array[],
  sealedBytes: number,
): Uint8Array[] {
  try {
    const total = pieces.reduce((n, p) => n + p.length, 0)
    if (sealedBytes < TAG_BYTES || total < sealedBytes) throw new RangeError('too short')
    const plainBytes = sealedBytes - TAG_BYTES
    // The tag: the last 16 sealed bytes, which may span two pieces.
    const tag = new Uint8Array(TAG_BYTES)
    let at = 0
    for (const piece of pieces) {
      const from = Math.max(plainBytes, at)
      const to = Math.min(sealedBytes, at + piece.length)
      if (to > from) tag.set(piece.subarray(from - at, to - at), from - plainBytes)
      at += piece.length
    }
    const { subkey, iv } = xchachaParts(k.key, nonceOf(k, index))
    const decipher = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: TAG_BYTES })
    decipher.setAAD(aadOf(index, last), { plaintextLength: plainBytes })
    decipher.setAuthTag(tag)
    const parts: Uint8Array[] = []
    at = 0
    for (const piece of pieces) {
      const take = Math.min(piece.length, plainBytes - at)
      if (take <= 0) break
      const plain = decipher.update(take === piece.length ? piece : piece.subarray(0, take))
      if (plain.length > 0) parts.push(new Uint8Array(plain.buffer, plain.byteOffset, plain.length))
      at += take
    }
    const rest = decipher.final()
    if (rest.length > 0) parts.push(new Uint8Array(rest.buffer, rest.byteOffset, rest.length))
    return parts.length > 0 ? parts : [new Uint8Array(0)]
  } catch {
    throw openError(index)
  }
}

function openError(index: number): StorageError {
  return new StorageError(
    index === 0 ? 'STORAGE_KEY_INVALID' : 'STORAGE_DATA_CORRUPT',
    index === 0
      ? 'the content key does not open this file (wrong key, or the data was changed)'
      : `segment ${index} does not open: its data was changed`,
  )
}

/**
 * Opens a sealed segment. A wrong key, a changed byte, or a segment out of place fails with
 * `STORAGE_KEY_INVALID` or `STORAGE_DATA_CORRUPT` and never returns plaintext.
 */
export function openSegment(k: ContentKey, index: number, last: boolean, sealed: Uint8Array): Uint8Array {
  try {
    return openNative(k, index, last, sealed)
  } catch {
    throw openError(index)
  }
}

/** How a file of `size` bytes is cut: the number of segments and each one's sealed length. */
export function segmentsOf(
  size: number,
  segmentBytes = SEGMENT_BYTES,
): { count: number; sealedBytes(i: number): number } {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad file size ${size}`)
  if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 1) throw new RangeError('bad segment size')
  // An empty file is one empty segment, so that even it is authenticated.
  const count = Math.max(1, Math.ceil(size / segmentBytes))
  return {
    count,
    sealedBytes: (i) => {
      if (i < 0 || i >= count) throw new RangeError(`no segment ${i}`)
      const plain = i < count - 1 ? segmentBytes : size - (count - 1) * segmentBytes
      return plain + TAG_BYTES
    },
  }
}
