import { createKeccak } from 'hash-wasm'

/**
 * Keccak-256 for the reward tree's millions of short inputs. hash-wasm's WebAssembly Keccak (shipped
 * inside the npm package, nothing is downloaded) hashes a 64-byte input in about 0.8 µs here,
 * against about 6 µs for the pure-JS @noble/hashes one, which stays in use where a hash is rare.
 */
const hasher = await createKeccak(256)

/** keccak256(`data`), a fresh 32-byte array. Synchronous; one shared WebAssembly instance. */
export function keccak256(data: Uint8Array): Uint8Array {
  hasher.init()
  hasher.update(data)
  return hasher.digest('binary')
}
