import { keccak_256 } from '@noble/hashes/sha3.js'
import { KECCAK_LAYOUT, KECCAK_WASM } from './keccak-wasm.js'

/**
 * Keccak-256 for the reward tree's millions of short inputs: our own small WebAssembly module
 * (`scripts/build-keccak-wasm.ts`, embedded, nothing downloaded), whose loops hash every leaf and
 * inner node of a tree without returning to JavaScript between hashes.
 */

/** A WebAssembly memory (the compiler's lib has no WebAssembly types without the DOM's). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer
  grow(pages: number): number
}

/** The module's exports: one hash, and the tree's two loops (see `scripts/build-keccak-wasm.ts`). */
export interface KeccakModule {
  readonly memory: WasmMemory
  /** keccak256(memory[input, input + length)) into memory[out, out + 32); length <= 135. */
  keccak256(input: number, length: number, out: number): void
  /** For i < n: memory[out + 32i, +32) = keccak256(keccak256(memory[enc + 64i, +64))). */
  hashLeaves(n: number, enc: number, out: number): void
  /** For i from `from` down to `to`: node i of the array tree at `tree` = keccak256(sorted pair of its children). */
  hashInner(tree: number, from: number, to: number): void
}

/** Where a caller's data may start in a module's memory. */
export const KECCAK_DATA_OFFSET = KECCAK_LAYOUT.data

const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Module: new (bytes: Uint8Array) => object
      Instance: new (module: object) => { exports: unknown }
    }
  }
).WebAssembly
const compiled = new wasm.Module(KECCAK_WASM)

/** The compiled module (a helper thread instantiates the same one: `leaf-hasher.ts`). */
export const keccakWasmModule: object = compiled

/** A fresh instance with a memory of its own, grown to hold `bytes` from {@link KECCAK_DATA_OFFSET}. */
export function keccakModule(bytes = 0): KeccakModule {
  const k = new wasm.Instance(compiled).exports as KeccakModule
  const needed = KECCAK_DATA_OFFSET + bytes
  const pages = Math.ceil(needed / 65_536) - k.memory.buffer.byteLength / 65_536
  if (pages > 0) k.memory.grow(pages)
  return k
}

const shared = keccakModule(136 + 32)

/** keccak256(`data`), a fresh 32-byte array. */
export function keccak256(data: Uint8Array): Uint8Array {
  if (data.length > 135) return keccak_256(data)
  const memory = new Uint8Array(shared.memory.buffer)
  const at = KECCAK_DATA_OFFSET
  memory.set(data, at)
  shared.keccak256(at, data.length, at + 136)
  return memory.slice(at + 136, at + 168)
}
