/**
 * The Reed-Solomon coder's hot loop in WebAssembly SIMD: out = Σ_j c_j × in_j over GF(2^8), 16 bytes
 * at a time. A product by a constant c is two 16-entry table lookups, one per nibble of the byte
 * (c × x = c × (x & 15) ^ c × (x & 240)), and `i8x16.swizzle` does 16 such lookups in one
 * instruction. The module is assembled here, byte by byte, from the instructions below: there is
 * no compiler to run and nothing to download, and it is small enough to read.
 *
 * Node 20 and later (and every current browser) run WebAssembly SIMD; where it cannot be
 * instantiated, {@link simdCoder} returns undefined and the coder keeps its JavaScript loop.
 */

/** GF(2^8) product, as the coder defines it; passed in so that this file holds no field of its own. */
export type FieldMul = (a: number, b: number) => number

/**
 * Codes `bytes` bytes (a multiple of 16) of each output: outputs[r] = Σ_c rows[r][c] × inputs[c]
 * over the first `bytes` bytes, overwriting them.
 */
export type SimdCode = (
  rows: readonly Uint8Array[],
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
  bytes: number,
) => void

// ─── The module ─────────────────────────────────────────────────────────────────────────────────

/** Unsigned LEB128. */
function leb(n: number): number[] {
  const out: number[] = []
  do {
    let byte = n & 0x7f
    n >>>= 7
    if (n !== 0) byte |= 0x80
    out.push(byte)
  } while (n !== 0)
  return out
}

/** A section: its id, then its size-prefixed contents. */
function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body]
}

/** A vector: its length, then its items. */
function vec(items: number[][]): number[] {
  return [...leb(items.length), ...items.flat()]
}

const I32 = 0x7f
const V128 = 0x7b
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, depth],
  brIf: (depth: number) => [0x0d, depth],
  get: (local: number) => [0x20, local],
  set: (local: number) => [0x21, local],
  i32: (value: number) => [0x41, ...leb(value)], // values used here are < 64: one byte, sign bit clear
  i32Load: [0x28, 2, 0],
  i32Add: [0x6a],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  v128Load: (offset: number) => [0xfd, 0x00, 0, ...leb(offset)],
  v128Store: [0xfd, 0x0b, 0, 0],
  swizzle: [0xfd, 0x0e],
  splat: [0xfd, 0x0f],
  and: [0xfd, 0x4e],
  xor: [0xfd, 0x51],
  shrU: [0xfd, 0x6d],
}

/**
 * `code(count, bytes, sources, tables, sink)`: for each 16 bytes at offset i < bytes,
 * sink[i] = xor over j < count of lo_j[x & 15] ^ hi_j[x >> 4], x = the 16 bytes at
 * (i32 at sources + 4j) + i, with lo_j and hi_j the 16-byte tables at tables + 32j and + 32j + 16.
 */
function codeFunction(): number[] {
  // Params 0-4: count, bytes, sources, tables, sink. Locals: 5 i, 6 j, 7 p (i32); 8 acc, 9 x, 10 mask.
  const [count, bytes, sources, tables, sink, i, j, p, acc, x, mask] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  const body = [
    ...op.i32(15),
    ...op.splat,
    ...op.set(mask),
    ...op.block,
    ...op.loop,
    // while (i < bytes)
    ...[...op.get(i), ...op.get(bytes), ...op.i32GeU, ...op.brIf(1)],
    ...[...op.i32(0), ...op.splat, ...op.set(acc)],
    ...[...op.i32(0), ...op.set(j)],
    ...op.block,
    ...op.loop,
    // while (j < count)
    ...[...op.get(j), ...op.get(count), ...op.i32GeU, ...op.brIf(1)],
    // x = v128 at sources[j] + i
    ...[...op.get(sources), ...op.get(j), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.i32Load],
    ...[...op.get(i), ...op.i32Add, ...op.v128Load(0), ...op.set(x)],
    // p = tables + 32j
    ...[...op.get(tables), ...op.get(j), ...op.i32(5), ...op.i32Shl, ...op.i32Add, ...op.set(p)],
    // acc ^= swizzle(lo, x & 15) ^ swizzle(hi, x >> 4)
    ...op.get(acc),
    ...[...op.get(p), ...op.v128Load(0), ...op.get(x), ...op.get(mask), ...op.and, ...op.swizzle, ...op.xor],
    ...[...op.get(p), ...op.v128Load(16), ...op.get(x), ...op.i32(4), ...op.shrU, ...op.swizzle, ...op.xor],
    ...op.set(acc),
    ...[...op.get(j), ...op.i32(1), ...op.i32Add, ...op.set(j), ...op.br(0)],
    ...op.end,
    ...op.end,
    // sink[i] = acc; i += 16
    ...[...op.get(sink), ...op.get(i), ...op.i32Add, ...op.get(acc), ...op.v128Store],
    ...[...op.get(i), ...op.i32(16), ...op.i32Add, ...op.set(i), ...op.br(0)],
    ...op.end,
    ...op.end,
    ...op.end,
  ]
  const locals = vec([
    [3, I32],
    [3, V128],
  ])
  const fn = [...locals, ...body]
  return [...leb(fn.length), ...fn]
}

/** The module's bytes: one memory (exported as `m`) and `code` (exported as `c`). */
export function simdModuleBytes(): Uint8Array {
  const type = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), 0]
  const name = (s: string) => [...leb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))]
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([type])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, 1]])),
    ...section(
      7,
      vec([
        [...name('m'), 0x02, 0],
        [...name('c'), 0x00, 0],
      ]),
    ),
    ...section(10, vec([codeFunction()])),
  ])
}

// ─── The coder ──────────────────────────────────────────────────────────────────────────────────

/** Bytes of each shard coded per call: every shard's block and the tables stay in the cache. */
const BLOCK_BYTES = 64 * 1024
const PAGE_BYTES = 65_536
/** Where the tables (32 bytes per input, at most 256 inputs) and the input pointers go. */
const TABLES_AT = 0
const POINTERS_AT = 256 * 32
const DATA_AT = POINTERS_AT + 256 * 4

let coder: SimdCode | null | undefined

/**
 * The SIMD coder, or undefined where WebAssembly SIMD is not available. Built once; its memory holds
 * one block of each shard being coded (at most 257 × 64 KiB).
 */
export function simdCoder(mul: FieldMul): SimdCode | undefined {
  if (coder === undefined) coder = build(mul)
  return coder ?? undefined
}

/** The parts of WebAssembly used here (the compiler's lib has no WebAssembly types without the DOM's). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { exports: Record<string, unknown> }
}

function build(mul: FieldMul): SimdCode | null {
  let exports: Record<string, unknown>
  try {
    const wasm = (globalThis as { WebAssembly?: Wasm }).WebAssembly
    if (wasm === undefined) return null
    exports = new wasm.Instance(new wasm.Module(simdModuleBytes())).exports
  } catch {
    return null
  }
  const memory = exports.m as { readonly buffer: ArrayBuffer; grow(pages: number): number }
  const code = exports.c as (
    count: number,
    bytes: number,
    sources: number,
    tables: number,
    sink: number,
  ) => void
  return (rows, inputs, outputs, bytes) => {
    const count = inputs.length
    const need = DATA_AT + (count + 1) * BLOCK_BYTES
    if (memory.buffer.byteLength < need)
      memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE_BYTES))
    const heap = new Uint8Array(memory.buffer)
    const pointers = new Uint32Array(memory.buffer, POINTERS_AT, count)
    for (let c = 0; c < count; c++) pointers[c] = DATA_AT + c * BLOCK_BYTES
    const sink = DATA_AT + count * BLOCK_BYTES
    // Each row's tables, built once per call (32 bytes per coefficient).
    const tables = rows.map((row) => {
      const t = new Uint8Array(count * 32)
      for (let c = 0; c < count; c++) {
        const coefficient = row[c] as number
        for (let v = 0; v < 16; v++) {
          t[c * 32 + v] = mul(coefficient, v)
          t[c * 32 + 16 + v] = mul(coefficient, v << 4)
        }
      }
      return t
    })
    for (let at = 0; at < bytes; at += BLOCK_BYTES) {
      const size = Math.min(BLOCK_BYTES, bytes - at)
      for (let c = 0; c < count; c++)
        heap.set((inputs[c] as Uint8Array).subarray(at, at + size), DATA_AT + c * BLOCK_BYTES)
      for (let r = 0; r < outputs.length; r++) {
        heap.set(tables[r] as Uint8Array, TABLES_AT)
        code(count, size, POINTERS_AT, TABLES_AT, sink)
        ;(outputs[r] as Uint8Array).set(heap.subarray(sink, sink + size), at)
      }
    }
  }
}
