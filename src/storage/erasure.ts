/**
 * Reed-Solomon erasure coding over GF(2^8): K data shards and N - K parity shards, any K of which
 * give back the data. Systematic (the first K shards are the data itself), with the matrix built as
 * Backblaze's and Klaus Post's coders build it (a Vandermonde matrix over the field with polynomial
 * x^8 + x^4 + x^3 + x^2 + 1 and generator 2, times the inverse of its top square), so shards are
 * byte-compatible with theirs; the tests check the published vectors.
 */

import { simdCoder } from './gf-simd.js'

/** The field's reducing polynomial, 0x11d. */
const POLYNOMIAL = 0x11d

const EXP = new Uint8Array(510)
const LOG = new Uint8Array(256)
;(() => {
  let x = 1
  for (let i = 0; i < 255; i++) {
    EXP[i] = x
    EXP[i + 255] = x
    LOG[x] = i
    x <<= 1
    if (x & 0x100) x ^= POLYNOMIAL
  }
})()

/** a × b in the field. */
export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0
  return EXP[(LOG[a] as number) + (LOG[b] as number)] as number
}

function gfInverse(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse')
  return EXP[255 - (LOG[a] as number)] as number
}

/** a^n in the field (0^0 = 1). */
function gfPow(a: number, n: number): number {
  if (n === 0) return 1
  if (a === 0) return 0
  return EXP[((LOG[a] as number) * n) % 255] as number
}

/** Products by every byte value, one 256-byte row per coefficient (64 KiB): the coding loops' table. */
const MUL = (() => {
  const table = new Uint8Array(256 * 256)
  for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) table[a * 256 + b] = gfMul(a, b)
  return table
})()

type Matrix = Uint8Array<ArrayBufferLike>[]

function identity(size: number): Matrix {
  return Array.from({ length: size }, (_, r) => {
    const row = new Uint8Array(size)
    row[r] = 1
    return row
  })
}

function multiply(a: Matrix, b: Matrix): Matrix {
  const cols = (b[0] as Uint8Array).length
  return a.map((row) => {
    const out = new Uint8Array(cols)
    for (let c = 0; c < cols; c++) {
      let v = 0
      for (let i = 0; i < row.length; i++) v ^= gfMul(row[i] as number, (b[i] as Uint8Array)[c] as number)
      out[c] = v
    }
    return out
  })
}

/** The inverse of a square matrix (Gauss-Jordan); throws on a singular one. */
function invert(m: Matrix): Matrix {
  const size = m.length
  const work: Matrix = m.map((row) => Uint8Array.from(row))
  const inv = identity(size)
  const rowOf = (rows: Matrix, r: number) => rows[r] as Uint8Array
  for (let col = 0; col < size; col++) {
    let pivot = col
    while (pivot < size && rowOf(work, pivot)[col] === 0) pivot++
    if (pivot === size) throw new RangeError('singular matrix')
    const swap = (rows: Matrix) => {
      const held = rowOf(rows, col)
      rows[col] = rowOf(rows, pivot)
      rows[pivot] = held
    }
    swap(work)
    swap(inv)
    const top = rowOf(work, col)
    const topInv = rowOf(inv, col)
    const scale = gfInverse(top[col] as number)
    for (let c = 0; c < size; c++) {
      top[c] = gfMul(top[c] as number, scale)
      topInv[c] = gfMul(topInv[c] as number, scale)
    }
    for (let r = 0; r < size; r++) {
      const row = rowOf(work, r)
      const rowInv = rowOf(inv, r)
      const factor = row[col] as number
      if (r === col || factor === 0) continue
      for (let c = 0; c < size; c++) {
        row[c] = (row[c] as number) ^ gfMul(factor, top[c] as number)
        rowInv[c] = (rowInv[c] as number) ^ gfMul(factor, topInv[c] as number)
      }
    }
  }
  return inv
}

/**
 * Products by every byte value at each byte position of a 32-bit word, one table of 4 × 256 words
 * per coefficient (4 KiB, built when first used): entry 256j + v is (coefficient × v) << 8j. A word
 * of input then codes with four lookups and no shifts on the way out, and since a byte's product
 * lands at the position it was read from, the result does not depend on the platform's byte order.
 */
const WORD_TABLES: (Uint32Array | undefined)[] = new Array(256).fill(undefined)

function wordTable(coefficient: number): Uint32Array {
  let table = WORD_TABLES[coefficient]
  if (table === undefined) {
    table = new Uint32Array(1024)
    for (let j = 0; j < 4; j++)
      for (let v = 0; v < 256; v++) table[j * 256 + v] = (gfMul(coefficient, v) << (8 * j)) >>> 0
    WORD_TABLES[coefficient] = table
  }
  return table
}

/** A 32-bit view of a Uint8Array's first `words` words (its offset must be a multiple of 4). */
function wordsOf(bytes: Uint8Array, words: number): Uint32Array {
  return new Uint32Array(bytes.buffer, bytes.byteOffset, words)
}

/**
 * o0 ^= Σ t0[j] × s[j], o1 ^= Σ t1[j] × s[j] over four inputs, a word at a time: each input word is
 * read once for both outputs (the coder's hot loop; a byte-at-a-time loop is about three times
 * slower).
 */
function mulAdd2x4(
  o0: Uint32Array,
  o1: Uint32Array,
  s: readonly Uint32Array[],
  t0: readonly Uint32Array[],
  t1: readonly Uint32Array[],
): void {
  const [s0, s1, s2, s3] = s as [Uint32Array, Uint32Array, Uint32Array, Uint32Array]
  const [a0, a1, a2, a3] = t0 as [Uint32Array, Uint32Array, Uint32Array, Uint32Array]
  const [b0, b1, b2, b3] = t1 as [Uint32Array, Uint32Array, Uint32Array, Uint32Array]
  for (let i = 0; i < o0.length; i++) {
    const x0 = s0[i] as number
    const x1 = s1[i] as number
    const x2 = s2[i] as number
    const x3 = s3[i] as number
    const p0 = x0 & 255
    const q0 = ((x0 >>> 8) & 255) | 256
    const r0 = ((x0 >>> 16) & 255) | 512
    const u0 = (x0 >>> 24) | 768
    const p1 = x1 & 255
    const q1 = ((x1 >>> 8) & 255) | 256
    const r1 = ((x1 >>> 16) & 255) | 512
    const u1 = (x1 >>> 24) | 768
    const p2 = x2 & 255
    const q2 = ((x2 >>> 8) & 255) | 256
    const r2 = ((x2 >>> 16) & 255) | 512
    const u2 = (x2 >>> 24) | 768
    const p3 = x3 & 255
    const q3 = ((x3 >>> 8) & 255) | 256
    const r3 = ((x3 >>> 16) & 255) | 512
    const u3 = (x3 >>> 24) | 768
    o0[i] =
      (o0[i] as number) ^
      (a0[p0] as number) ^
      (a0[q0] as number) ^
      (a0[r0] as number) ^
      (a0[u0] as number) ^
      (a1[p1] as number) ^
      (a1[q1] as number) ^
      (a1[r1] as number) ^
      (a1[u1] as number) ^
      (a2[p2] as number) ^
      (a2[q2] as number) ^
      (a2[r2] as number) ^
      (a2[u2] as number) ^
      (a3[p3] as number) ^
      (a3[q3] as number) ^
      (a3[r3] as number) ^
      (a3[u3] as number)
    o1[i] =
      (o1[i] as number) ^
      (b0[p0] as number) ^
      (b0[q0] as number) ^
      (b0[r0] as number) ^
      (b0[u0] as number) ^
      (b1[p1] as number) ^
      (b1[q1] as number) ^
      (b1[r1] as number) ^
      (b1[u1] as number) ^
      (b2[p2] as number) ^
      (b2[q2] as number) ^
      (b2[r2] as number) ^
      (b2[u2] as number) ^
      (b3[p3] as number) ^
      (b3[q3] as number) ^
      (b3[r3] as number) ^
      (b3[u3] as number)
  }
}

/**
 * outputs[r] = Σ_c rows[r][c] × inputs[c] (outputs zeroed by the caller, all of one length): all
 * whole 16 bytes in WebAssembly SIMD (gf-simd.ts) where it runs, the rest a byte at a time; else
 * {@link codeIntoScalar}.
 */
function codeInto(
  rows: readonly Uint8Array[],
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
): void {
  const length = (outputs[0] as Uint8Array | undefined)?.length ?? 0
  const simd = length >= 16 ? simdCoder(gfMul) : undefined
  if (simd === undefined) {
    codeIntoScalar(rows, inputs, outputs)
    return
  }
  const bytes = length & ~15
  simd(rows, inputs, outputs, bytes)
  codeTail(rows, inputs, outputs, bytes)
}

/**
 * {@link codeInto} in JavaScript: the words through {@link mulAdd2x4}, two outputs and four inputs a
 * pass (a missing fifth output or input codes with coefficient 0), the last length mod 4 bytes
 * through the byte table. Inputs not on a 4-byte boundary are copied to one first (outputs are the
 * coder's own, always aligned). Exported for the tests, which hold the two paths to each other.
 *
 * @internal
 */
export function codeIntoScalar(
  rows: readonly Uint8Array[],
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
): void {
  const length = (outputs[0] as Uint8Array | undefined)?.length ?? 0
  const words = length >>> 2
  if (words > 0) {
    const zero = wordTable(0)
    const sources = inputs.map((d) => wordsOf(d.byteOffset % 4 === 0 ? d : new Uint8Array(d), words))
    const sinks = outputs.map((o) => wordsOf(o, words))
    for (let r = 0; r < outputs.length; r += 2) {
      const o0 = sinks[r] as Uint32Array
      // An odd output out pairs with a scratch one.
      const o1 = sinks[r + 1] ?? new Uint32Array(words)
      const row0 = rows[r] as Uint8Array
      const row1 = rows[r + 1]
      for (let c = 0; c < inputs.length; c += 4) {
        const s: Uint32Array[] = []
        const t0: Uint32Array[] = []
        const t1: Uint32Array[] = []
        for (let j = c; j < c + 4; j++) {
          const present = j < inputs.length
          s.push((present ? sources[j] : sources[c]) as Uint32Array)
          t0.push(present ? wordTable(row0[j] as number) : zero)
          t1.push(present && row1 !== undefined ? wordTable(row1[j] as number) : zero)
        }
        mulAdd2x4(o0, o1, s, t0, t1)
      }
    }
  }
  codeTail(rows, inputs, outputs, words * 4)
}

/** {@link codeInto} from byte `from` to the end, a byte at a time. */
function codeTail(
  rows: readonly Uint8Array[],
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
  from: number,
): void {
  for (const [r, out] of outputs.entries()) {
    const row = rows[r] as Uint8Array
    for (const [c, input] of inputs.entries()) {
      const base = (row[c] as number) * 256
      for (let i = from; i < out.length; i++)
        out[i] = (out[i] as number) ^ (MUL[base + (input[i] as number)] as number)
    }
  }
}

/** Largest total number of shards (the field has 256 elements; the matrix needs distinct rows). */
export const MAX_SHARDS = 256

/** A K-of-N Reed-Solomon code. */
export class ReedSolomon {
  readonly k: number
  readonly n: number
  /** N rows by K columns; the first K rows are the identity. */
  readonly #matrix: Matrix

  /** @throws RangeError unless 1 <= k <= n <= 256. */
  constructor(k: number, n: number) {
    if (!Number.isInteger(k) || !Number.isInteger(n) || k < 1 || n < k || n > MAX_SHARDS)
      throw new RangeError(`a K-of-N code needs 1 <= K <= N <= ${MAX_SHARDS} (got ${k} of ${n})`)
    this.k = k
    this.n = n
    const vandermonde = Array.from({ length: n }, (_, r) =>
      Uint8Array.from({ length: k }, (_, c) => gfPow(r, c)),
    )
    this.#matrix = multiply(vandermonde, invert(vandermonde.slice(0, k)))
  }

  /** The N - K parity shards of K data shards of equal length. */
  encode(data: readonly Uint8Array[]): Uint8Array[] {
    this.#checkData(data)
    const length = (data[0] as Uint8Array).length
    const parity = Array.from({ length: this.n - this.k }, () => new Uint8Array(length))
    codeInto(this.#matrix.slice(this.k), data, parity)
    return parity
  }

  /**
   * {@link encode} into `parity` (N - K buffers of the data shards' length, 4-byte aligned, such as
   * views at a multiple of 4 into buffers of their own), which it overwrites.
   */
  encodeInto(data: readonly Uint8Array[], parity: readonly Uint8Array[]): void {
    this.#checkData(data)
    const length = (data[0] as Uint8Array).length
    if (
      parity.length !== this.n - this.k ||
      parity.some((p) => p.length !== length || p.byteOffset % 4 !== 0)
    )
      throw new RangeError(`encodeInto needs ${this.n - this.k} aligned parity buffers of ${length} bytes`)
    for (const p of parity) p.fill(0)
    codeInto(this.#matrix.slice(this.k), data, parity)
  }

  /**
   * Every shard (data then parity) from any K of them: `shards[i]` is shard i or undefined when
   * missing. Present shards are returned as given.
   *
   * @throws RangeError when fewer than K are present or their lengths differ.
   */
  reconstruct(shards: readonly (Uint8Array | undefined)[]): Uint8Array[] {
    const data = this.reconstructData(shards)
    const missing: number[] = []
    for (let i = this.k; i < this.n; i++) if (shards[i] === undefined) missing.push(i)
    const rebuilt = missing.map(() => new Uint8Array((data[0] as Uint8Array).length))
    if (missing.length > 0)
      codeInto(
        missing.map((i) => this.#matrix[i] as Uint8Array),
        data,
        rebuilt,
      )
    return Array.from(
      { length: this.n },
      (_, i) => shards[i] ?? ((i < this.k ? data[i] : rebuilt[missing.indexOf(i)]) as Uint8Array),
    )
  }

  /**
   * The K data shards from any K shards (as {@link reconstruct}, without rebuilding missing parity:
   * what reading a file needs). Present data shards are returned as given.
   *
   * @throws RangeError when fewer than K are present or their lengths differ.
   */
  reconstructData(shards: readonly (Uint8Array | undefined)[]): Uint8Array[] {
    if (shards.length !== this.n) throw new RangeError(`expected ${this.n} shard slots, got ${shards.length}`)
    const present: number[] = []
    for (let i = 0; i < this.n && present.length < this.k; i++) if (shards[i] !== undefined) present.push(i)
    if (present.length < this.k)
      throw new RangeError(`need ${this.k} shards to rebuild, have ${present.length}`)
    const length = (shards[present[0] as number] as Uint8Array).length
    for (const i of present)
      if ((shards[i] as Uint8Array).length !== length) throw new RangeError('shards differ in length')
    if (present.every((i, j) => i === j)) return present.map((i) => shards[i] as Uint8Array)
    const decode = invert(present.map((i) => this.#matrix[i] as Uint8Array))
    const lost: number[] = []
    for (let c = 0; c < this.k; c++) if (shards[c] === undefined) lost.push(c)
    const rebuilt = lost.map(() => new Uint8Array(length))
    codeInto(
      lost.map((c) => decode[c] as Uint8Array),
      present.map((i) => shards[i] as Uint8Array),
      rebuilt,
    )
    return Array.from({ length: this.k }, (_, c) => shards[c] ?? (rebuilt[lost.indexOf(c)] as Uint8Array))
  }

  /** Whether the parity shards match the data shards. */
  verify(shards: readonly Uint8Array[]): boolean {
    if (shards.length !== this.n) return false
    const parity = this.encode(shards.slice(0, this.k))
    return parity.every((p, i) => {
      const held = shards[this.k + i] as Uint8Array
      if (held.length !== p.length) return false
      for (let b = 0; b < p.length; b++) if (held[b] !== p[b]) return false
      return true
    })
  }

  #checkData(data: readonly Uint8Array[]): void {
    if (data.length !== this.k) throw new RangeError(`expected ${this.k} data shards, got ${data.length}`)
    const length = (data[0] as Uint8Array).length
    if (data.some((d) => d.length !== length)) throw new RangeError('data shards differ in length')
  }
}
