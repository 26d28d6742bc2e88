import { createPrivateKey, type KeyObject } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { base58btc } from 'multiformats/bases/base58'

/**
 * The libp2p peer ids of many Ed25519 keys given by their 32-byte seeds, derived with node:crypto
 * on every core: helper threads (one per core but the caller's) and the caller take chunks of keys
 * from a shared counter, the public keys land in shared memory, and the caller waits for the
 * helpers' chunks synchronously (`Atomics.wait`), so that building a world stays a plain function.
 * A chunk a helper fails, or does not finish in time, the caller derives itself: the ids never
 * depend on the helpers, only the time does. Deriving a key costs about 0.1 ms (most of it
 * node:crypto computing the public key), 11 s for 100,000 identities on one core.
 */

/** Keys a thread takes at a time. */
const CHUNK = 256

/** Below this many keys the caller derives them alone (starting a thread costs about as much as 500 keys). */
export const PARALLEL_PEER_IDS = 2_048

/** A peer id's bytes before the public key: identity multihash (0x00, 36 bytes) of a protobuf Ed25519 public key. */
const PEER_ID_PREFIX = Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])

/** The node:crypto key of an Ed25519 seed (imported as JWK: ten times faster than PKCS#8 DER here). */
export function ed25519PrivateKey(seed: Uint8Array): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(seed).toString('base64url'), x: '' },
    format: 'jwk',
  })
}

/** The 32-byte public key of a node:crypto Ed25519 key, private (its JWK carries it: no second key object) or public. */
export function ed25519PublicKey(key: KeyObject): Uint8Array {
  return Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url')
}

/** The peer id of a 32-byte Ed25519 public key. */
export function peerIdOfPublicKey(publicKey: Uint8Array): string {
  const bytes = new Uint8Array(38)
  bytes.set(PEER_ID_PREFIX, 0)
  bytes.set(publicKey, 6)
  return base58btc.baseEncode(bytes)
}

/** The helpers' program (plain JavaScript: it runs without the project's loader), the same derivation. */
const HELPER_SOURCE = `
const { workerData } = require('node:worker_threads')
const { createPrivateKey } = require('node:crypto')
const { seeds, keys, status, next, n, chunk } = workerData
for (;;) {
  const c = Atomics.add(next, 0, 1)
  if (c * chunk >= n) break
  try {
    for (let i = c * chunk; i < Math.min(n, (c + 1) * chunk); i++) {
      const d = Buffer.from(seeds.buffer, seeds.byteOffset + 32 * i, 32).toString('base64url')
      const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d, x: '' }, format: 'jwk' })
      keys.set(Buffer.from(key.export({ format: 'jwk' }).x, 'base64url'), 32 * i)
    }
    Atomics.store(status, c, 1)
  } catch {
    Atomics.store(status, c, 2)
  }
  Atomics.notify(status, c)
}
`

/**
 * The peer id of each 32-byte seed, in order: the same as `ed25519PeerId` of each. `helpers`
 * (default: one per core but the caller's) are used from {@link PARALLEL_PEER_IDS} seeds.
 */
export function ed25519PeerIds(seeds: readonly Uint8Array[], helpers = availableParallelism() - 1): string[] {
  const n = seeds.length
  const keys = new Uint8Array(new SharedArrayBuffer(Math.max(1, 32 * n)))
  const derive = (from: number, to: number) => {
    for (let i = from; i < to; i++)
      keys.set(ed25519PublicKey(ed25519PrivateKey(seeds[i] as Uint8Array)), 32 * i)
  }
  const threads = n >= PARALLEL_PEER_IDS ? Math.max(0, Math.floor(helpers)) : 0
  if (threads === 0) derive(0, n)
  else {
    const chunks = Math.ceil(n / CHUNK)
    const shared = new Uint8Array(new SharedArrayBuffer(32 * n))
    for (let i = 0; i < n; i++) {
      const seed = seeds[i] as Uint8Array
      if (seed.length !== 32) throw new RangeError(`seed ${i} is not 32 bytes`)
      shared.set(seed, 32 * i)
    }
    const status = new Int32Array(new SharedArrayBuffer(4 * chunks))
    const next = new Int32Array(new SharedArrayBuffer(4))
    const workers: Worker[] = []
    for (let t = 0; t < threads; t++) {
      try {
        const worker = new Worker(HELPER_SOURCE, {
          eval: true,
          execArgv: [],
          workerData: { seeds: shared, keys, status, next, n, chunk: CHUNK },
        })
        worker.unref()
        // A helper that fails leaves its chunk to the caller (below); nothing else to do here.
        worker.on('error', () => {})
        workers.push(worker)
      } catch {
        break
      }
    }
    const t0 = performance.now()
    const mine = new Uint8Array(chunks)
    for (;;) {
      const c = Atomics.add(next, 0, 1)
      if (c >= chunks) break
      derive(c * CHUNK, Math.min(n, (c + 1) * CHUNK))
      mine[c] = 1
    }
    // Generous: a helper's last chunk takes about as long as one of the caller's.
    const deadline = performance.now() + 10_000 + 2 * (performance.now() - t0)
    for (let c = 0; c < chunks; c++) {
      if (mine[c] === 1) continue
      let state = Atomics.load(status, c)
      while (state === 0) {
        const left = deadline - performance.now()
        if (left <= 0) break
        Atomics.wait(status, c, 0, left)
        state = Atomics.load(status, c)
      }
      if (state !== 1) derive(c * CHUNK, Math.min(n, (c + 1) * CHUNK))
    }
    for (const worker of workers) void worker.terminate()
  }
  const ids: string[] = []
  for (let i = 0; i < n; i++) ids.push(peerIdOfPublicKey(keys.subarray(32 * i, 32 * i + 32)))
  return ids
}
