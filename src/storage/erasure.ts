/**
 * Reed-Solomon erasure coding over GF(2^8): K data shards and N - K parity shards, any K of which
 * give back the data. Systematic (the first K shards are the data itself), with the matrix built as
 * Backblaze's and Klaus Post's coders build it (a Vandermonde matrix over the field with polynomial
 * x^8 + x^4 + x^3 + x^2 + 1 and generator 2, times the inverse of its top square), so shards are
 * byte-compatible with theirs; the tests check the published vectors.
 */

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

/** out ^= coefficient × input, byte by byte, through the coefficient's row of the product table. */
function mulAddInto(coefficient: number, input: Uint8Array, out: Uint8Array): void {
  if (coefficient === 0) return
  if (coefficient === 1) {
    for (let i = 0; i < input.length; i++) out[i] = (out[i] as number) ^ (input[i] as number)
    return
  }
  const base = coefficient * 256
  for (let i = 0; i < input.length; i++)
    out[i] = (out[i] as number) ^ (MUL[base + (input[i] as number)] as number)
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
    // One pass over the data: each position's inputs are read once for every parity shard (a pass
    // per coefficient reads and writes the outputs K times over).
    const k = this.k
    const inputs = data.map((d) =>
      d instanceof Buffer ? new Uint8Array(d.buffer, d.byteOffset, d.length) : d,
    )
    for (const [p, out] of parity.entries()) {
      const row = this.#matrix[this.k + p] as Uint8Array
      const bases = Int32Array.from(row, (coefficient) => coefficient * 256)
      if (k === 4) {
        const [b0, b1, b2, b3] = bases as unknown as [number, number, number, number]
        const [d0, d1, d2, d3] = inputs as [Uint8Array, Uint8Array, Uint8Array, Uint8Array]
        for (let i = 0; i < length; i++)
          out[i] =
            (MUL[b0 + (d0[i] as number)] as number) ^
            (MUL[b1 + (d1[i] as number)] as number) ^
            (MUL[b2 + (d2[i] as number)] as number) ^
            (MUL[b3 + (d3[i] as number)] as number)
        continue
      }
      for (let c = 0; c < k; c++) mulAddInto(row[c] as number, inputs[c] as Uint8Array, out)
    }
    return parity
  }

  /**
   * Every shard (data then parity) from any K of them: `shards[i]` is shard i or undefined when
   * missing. Present shards are returned as given.
   *
   * @throws RangeError when fewer than K are present or their lengths differ.
   */
  reconstruct(shards: readonly (Uint8Array | undefined)[]): Uint8Array[] {
    if (shards.length !== this.n) throw new RangeError(`expected ${this.n} shard slots, got ${shards.length}`)
    const present: number[] = []
    for (let i = 0; i < this.n && present.length < this.k; i++) if (shards[i] !== undefined) present.push(i)
    if (present.length < this.k)
      throw new RangeError(`need ${this.k} shards to rebuild, have ${present.length}`)
    const length = (shards[present[0] as number] as Uint8Array).length
    for (const i of present)
      if ((shards[i] as Uint8Array).length !== length) throw new RangeError('shards differ in length')
    let data: Uint8Array[]
    if (present.every((i, j) => i === j)) data = present.map((i) => shards[i] as Uint8Array)
    else {
      const decode = invert(present.map((i) => this.#matrix[i] as Uint8Array))
      data = []
      for (let c = 0; c < this.k; c++) {
        const known = shards[c]
        if (known !== undefined) {
          data.push(known)
          continue
        }
        const out = new Uint8Array(length)
        const row = decode[c] as Uint8Array
        for (let j = 0; j < this.k; j++)
          mulAddInto(row[j] as number, shards[present[j] as number] as Uint8Array, out)
        data.push(out)
      }
    }
    const parity = shards.slice(this.k).some((s) => s === undefined) ? this.encode(data) : []
    return Array.from(
      { length: this.n },
      (_, i) => shards[i] ?? ((i < this.k ? data[i] : parity[i - this.k]) as Uint8Array),
    )
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
