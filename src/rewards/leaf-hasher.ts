import { Worker } from 'node:worker_threads'
import { KECCAK_DATA_OFFSET, type KeccakModule, keccakModule, keccakWasmModule } from './keccak.js'

/**
 * Hashing a large tree's leaves on two cores. The leaf encodings and hashes live in shared memory;
 * a helper thread (one per process, started on first use, never keeping the process alive) hashes
 * one range while the caller hashes another, and the caller waits for it synchronously (a worker
 * thread runs while the main thread blocks in `Atomics.wait`), so `buildCumulativeTree` stays a plain
 * function. If the helper cannot start, fails or does not finish in time, the caller hashes its range
 * itself: the result never depends on the helper, only the time does.
 */

/** Leaves per copy in and out of a module's memory. */
const CHUNK = 32_768

/**
 * Hashes leaves `[from, to)`: `out[32i, +32) = keccak256(keccak256(enc[64i, +64)))`, through `k`'s
 * memory at {@link KECCAK_DATA_OFFSET} (which must hold `CHUNK * 96` bytes).
 */
function hashRange(k: KeccakModule, enc: Uint8Array, out: Uint8Array, from: number, to: number): void {
  const encAt = KECCAK_DATA_OFFSET
  const outAt = encAt + CHUNK * 64
  for (let start = from; start < to; start += CHUNK) {
    const count = Math.min(CHUNK, to - start)
    const memory = new Uint8Array(k.memory.buffer)
    memory.set(enc.subarray(start * 64, (start + count) * 64), encAt)
    k.hashLeaves(count, encAt, outAt)
    out.set(memory.subarray(outAt, outAt + count * 32), start * 32)
  }
}

/** The helper thread's program (plain JavaScript: it runs without the project's loader). */
const HELPER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { module, dataOffset, chunk, control } = workerData
const k = new WebAssembly.Instance(module).exports
const needed = dataOffset + chunk * 96
const pages = Math.ceil(needed / 65536) - k.memory.buffer.byteLength / 65536
if (pages > 0) k.memory.grow(pages)
parentPort.on('message', ({ job, enc, out, from, to }) => {
  try {
    const encAt = dataOffset
    const outAt = encAt + chunk * 64
    const memory = new Uint8Array(k.memory.buffer)
    for (let start = from; start < to; start += chunk) {
      const count = Math.min(chunk, to - start)
      memory.set(enc.subarray(start * 64, (start + count) * 64), encAt)
      k.hashLeaves(count, encAt, outAt)
      out.set(memory.subarray(outAt, outAt + count * 32), start * 32)
    }
    Atomics.store(control, 0, job)
  } catch {
    Atomics.store(control, 0, -job)
  }
  Atomics.notify(control, 0)
})
`

interface Helper {
  worker: Worker
  /** [0]: the last job finished (negative: failed). */
  control: Int32Array
  jobs: number
}

let helper: Helper | null | undefined

function helperThread(): Helper | null {
  if (helper !== undefined) return helper
  try {
    const control = new Int32Array(new SharedArrayBuffer(4))
    const worker = new Worker(HELPER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { module: keccakWasmModule, dataOffset: KECCAK_DATA_OFFSET, chunk: CHUNK, control },
    })
    worker.unref()
    worker.on('error', () => {
      helper = null
    })
    helper = { worker, control, jobs: 0 }
  } catch {
    helper = null
  }
  return helper
}

/** Below this many leaves one thread hashes them (a second one costs more than it saves). */
export const PARALLEL_LEAVES = 65_536

/** Shared buffers for a tree's leaves: their encodings (64 bytes each) and hashes (32 each). */
export interface LeafBuffers {
  enc: Uint8Array
  leaves: Uint8Array
}

/** Buffers for `n` leaves, shared with the helper thread when `n` is large enough to use it. */
export function leafBuffers(n: number): LeafBuffers {
  const Buffer = n >= PARALLEL_LEAVES ? SharedArrayBuffer : ArrayBuffer
  return { enc: new Uint8Array(new Buffer(n * 64)), leaves: new Uint8Array(new Buffer(n * 32)) }
}

/**
 * Hashes the `n` leaves of `buffers`. `encode(from, to)` writes the encodings of leaves `[from, to)`
 * and is called for the helper's range first, so the helper hashes while the caller encodes its own.
 */
export function hashLeaves(
  buffers: LeafBuffers,
  n: number,
  encode: (from: number, to: number) => void,
): void {
  const { enc, leaves } = buffers
  const local = keccakModule(CHUNK * 96)
  const shared = enc.buffer instanceof SharedArrayBuffer && leaves.buffer instanceof SharedArrayBuffer
  const h = shared && n >= PARALLEL_LEAVES ? helperThread() : null
  if (h === null) {
    encode(0, n)
    hashRange(local, enc, leaves, 0, n)
    return
  }
  // The helper takes the upper part, a little less than half: it starts while the caller encodes.
  const split = Math.floor(n * 0.52)
  encode(split, n)
  const job = ++h.jobs
  h.worker.postMessage({ job, enc, out: leaves, from: split, to: n })
  encode(0, split)
  hashRange(local, enc, leaves, 0, split)
  // Generous: the helper does about as much as the caller just did.
  const deadline = performance.now() + 10_000 + n / 50
  for (;;) {
    const done = Atomics.load(h.control, 0)
    if (done === job) return
    const left = deadline - performance.now()
    if (done === -job || left <= 0) break
    Atomics.wait(h.control, 0, done, left)
  }
  // Failed or too slow: hash its part here (identical bytes even if it is still writing them) and
  // stop using it.
  helper = null
  void h.worker.terminate()
  hashRange(local, enc, leaves, split, n)
}
