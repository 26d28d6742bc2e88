import { Worker } from 'node:worker_threads'
import { KECCAK_DATA_OFFSET, type KeccakModule, keccakModule, keccakWasmModule } from './keccak.js'
import { largeArray } from './large-array.js'

/**
 * Hashing a large tree on two cores: its leaves, then its inner nodes. The tree lives in shared
 * memory; a helper thread (one per process, started on first use, never keeping the process alive)
 * hashes one part while the caller hashes another, and the caller waits for it synchronously (a
 * worker thread runs while the main thread blocks in `Atomics.wait`), so `buildCumulativeTree` stays
 * a plain function. If the helper cannot start, fails or does not finish in time, the caller hashes
 * its part itself: the result never depends on the helper, only the time does.
 *
 * Each thread hashes through a small module memory of its own (a few MB), copying a chunk in and
 * its hashes out: the tree itself is never in a module's memory, so a million-leaf tree costs no
 * 64 MB module memory on top of its own array, which V8 would also count as external memory and
 * answer with a full collection.
 */

let kept: KeccakModule | undefined
/**
 * The caller's module, with room for `bytes` from {@link KECCAK_DATA_OFFSET}: one kept per process
 * (hashing is synchronous and never reentrant), not two new memories per tree.
 */
function localModule(bytes: number): KeccakModule {
  if (kept === undefined || kept.memory.buffer.byteLength < KECCAK_DATA_OFFSET + bytes)
    kept = keccakModule(bytes)
  return kept
}

/** Leaves per copy in and out of a module's memory. */
const CHUNK = 32_768

/**
 * Height of the subtrees whose inner nodes a thread hashes in one go: 2^15 - 1 nodes of 32 bytes
 * (1 MB) fit in the module memory that hashes leaves (`CHUNK * 96` bytes).
 */
const SUBTREE_HEIGHT = 14

/**
 * Hashes leaves `[from, to)`: `out[32i, +32) = keccak256(keccak256(encoding i))`, through `k`'s
 * memory at {@link KECCAK_DATA_OFFSET} (which must hold `CHUNK * 96` bytes). `encode(start, end,
 * into, at)` writes the encodings of leaves `[start, end)` into `into` from byte `at`: here, straight
 * into the module's memory.
 */
function hashRange(k: KeccakModule, out: Uint8Array, from: number, to: number, encode: Encode): void {
  const encAt = KECCAK_DATA_OFFSET
  const outAt = encAt + CHUNK * 64
  for (let start = from; start < to; start += CHUNK) {
    const count = Math.min(CHUNK, to - start)
    const memory = new Uint8Array(k.memory.buffer)
    encode(start, start + count, memory, encAt)
    k.hashLeaves(count, encAt, outAt)
    out.set(memory.subarray(outAt, outAt + count * 32), start * 32)
  }
}

/**
 * Hashes the inner nodes of the subtree of node `root` of an array tree (`tree` holds `size` nodes
 * of 32 bytes, the last `n` of them leaves; node i's children are 2i + 1 and 2i + 2), down to
 * `height` levels below `root` (the nodes at that depth must be hashed already). The subtree is laid
 * out in `k`'s memory as an array tree of its own (its level l is a run of 2^l nodes of `tree`,
 * from 2^l × (root + 1) - 1), its leaves and bottom level copied in, its inner nodes hashed by the
 * module's loop and copied out. The helper thread's program has the same function.
 */
function hashSubtree(
  k: KeccakModule,
  tree: Uint8Array,
  size: number,
  n: number,
  root: number,
  height: number,
): void {
  const at = KECCAK_DATA_OFFSET
  const memory = new Uint8Array(k.memory.buffer)
  // Inner nodes come first in both layouts: the subtree's are its first `inner` nodes.
  let inner = 0
  for (let l = 0, first = root; l <= height && first < size; l++, first = 2 * first + 1) {
    const count = Math.min(2 ** l, size - first)
    const own = l < height ? Math.max(0, Math.min(n - 1 - first, count)) : 0
    if (own > 0) inner = 2 ** l - 1 + own
    const from = first + own
    memory.set(tree.subarray(from * 32, (first + count) * 32), at + (2 ** l - 1 + own) * 32)
  }
  if (inner === 0) return
  k.hashInner(at, inner - 1, 0)
  for (let l = 0, first = root; l < height && first < n - 1; l++, first = 2 * first + 1) {
    const own = Math.min(n - 1 - first, 2 ** l)
    tree.set(memory.subarray(at + (2 ** l - 1) * 32, at + (2 ** l - 1 + own) * 32), first * 32)
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
function leaves({ enc, out, from, to }) {
  const encAt = dataOffset
  const outAt = encAt + chunk * 64
  const memory = new Uint8Array(k.memory.buffer)
  for (let start = from; start < to; start += chunk) {
    const count = Math.min(chunk, to - start)
    memory.set(enc.subarray((start - from) * 64, (start - from + count) * 64), encAt)
    k.hashLeaves(count, encAt, outAt)
    out.set(memory.subarray(outAt, outAt + count * 32), start * 32)
  }
}
function subtree(tree, size, n, root, height) {
  const at = dataOffset
  const memory = new Uint8Array(k.memory.buffer)
  let inner = 0
  for (let l = 0, first = root; l <= height && first < size; l++, first = 2 * first + 1) {
    const count = Math.min(2 ** l, size - first)
    const own = l < height ? Math.max(0, Math.min(n - 1 - first, count)) : 0
    if (own > 0) inner = 2 ** l - 1 + own
    const from = first + own
    memory.set(tree.subarray(from * 32, (first + count) * 32), at + (2 ** l - 1 + own) * 32)
  }
  if (inner === 0) return
  k.hashInner(at, inner - 1, 0)
  for (let l = 0, first = root; l < height && first < n - 1; l++, first = 2 * first + 1) {
    const own = Math.min(n - 1 - first, 2 ** l)
    tree.set(memory.subarray(at + (2 ** l - 1) * 32, at + (2 ** l - 1 + own) * 32), first * 32)
  }
}
function compareAt(buf, a, b) {
  for (let i = 0; i < 32; i++) {
    const d = buf[a + i] - buf[b + i]
    if (d !== 0) return d
  }
  return 0
}
function order({ buffer, n, keys, first, second }) {
  const hashes = buffer.subarray(0, n * 32)
  const view = new DataView(hashes.buffer, hashes.byteOffset, hashes.byteLength)
  for (let i = 0; i < n; i++) keys[i] = view.getUint32(i * 32)
  let from = first
  let to = second
  for (let i = 0; i < n; i++) from[i] = i
  const counts = new Uint32Array(2049)
  for (const shift of [0, 11, 22]) {
    counts.fill(0)
    for (let i = 0; i < n; i++) counts[((keys[from[i]] >>> shift) & 0x7ff) + 1]++
    for (let d = 0; d < 2048; d++) counts[d + 1] += counts[d]
    for (let i = 0; i < n; i++) {
      const idx = from[i]
      const digit = (keys[idx] >>> shift) & 0x7ff
      to[counts[digit]++] = idx
    }
    const t = from
    from = to
    to = t
  }
  const sorted = from
  for (let start = 0; start < n; ) {
    let end = start + 1
    const key = keys[sorted[start]]
    while (end < n && keys[sorted[end]] === key) end++
    if (end - start > 16) {
      sorted.subarray(start, end).sort((x, y) => compareAt(hashes, x * 32, y * 32))
      start = end
      continue
    }
    for (let i = start + 1; i < end; i++) {
      const x = sorted[i]
      let j = i - 1
      while (j >= start && compareAt(hashes, sorted[j] * 32, x * 32) > 0) {
        sorted[j + 1] = sorted[j]
        j--
      }
      sorted[j + 1] = x
    }
    start = end
  }
  const size = 2 * n - 1
  const words = new Uint32Array(buffer.buffer, buffer.byteOffset + 32, size * 8)
  const leafWords = new Uint32Array(buffer.buffer, buffer.byteOffset, n * 8)
  for (let j = 0; j < n; j++) {
    const i = sorted[j]
    const at = size - 1 - j
    const to = at * 8
    const from = i * 8
    words[to] = leafWords[from]
    words[to + 1] = leafWords[from + 1]
    words[to + 2] = leafWords[from + 2]
    words[to + 3] = leafWords[from + 3]
    words[to + 4] = leafWords[from + 4]
    words[to + 5] = leafWords[from + 5]
    words[to + 6] = leafWords[from + 6]
    words[to + 7] = leafWords[from + 7]
    keys[i] = at
  }
}
parentPort.on('message', (message) => {
  try {
    if (message.kind === 'leaves') leaves(message)
    else if (message.kind === 'order') order(message)
    else {
      const { tree, size, n, from, to } = message
      for (let root = from; root < to; root++) subtree(tree, size, n, root, Infinity)
    }
    Atomics.store(control, 0, message.job)
  } catch {
    Atomics.store(control, 0, -message.job)
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

/** The helper for a job on `buffer`, or null (too small to be worth it, not shared, none). */
function helperFor(buffer: ArrayBufferLike, n: number): Helper | null {
  return n >= PARALLEL_LEAVES && buffer instanceof SharedArrayBuffer ? helperThread() : null
}

/**
 * Waits for the helper's job `job`; false when it failed or took too long (the helper is then
 * dropped, and the caller does the job's work itself: same bytes even if the helper is still
 * writing them).
 */
function finished(h: Helper, job: number, n: number): boolean {
  // Generous: the helper does about as much as the caller just did.
  const deadline = performance.now() + 10_000 + n / 50
  for (;;) {
    const done = Atomics.load(h.control, 0)
    if (done === job) return true
    const left = deadline - performance.now()
    if (done === -job || left <= 0) break
    Atomics.wait(h.control, 0, done, left)
  }
  helper = null
  void h.worker.terminate()
  return false
}

/** Below this many leaves one thread hashes them (a second one costs more than it saves). */
export const PARALLEL_LEAVES = 65_536

/**
 * Writes the 64-byte encodings of leaves `[from, to)` into `into`, from byte `at` (the encoding of
 * leaf i at `at + 64 × (i - from)`).
 */
export type Encode = (from: number, to: number, into: Uint8Array, at: number) => void

/**
 * Hashes `n` leaves into `out` (32 bytes each, in order). `encode` is called for the helper's range
 * first, into `spare` (shared memory not otherwise in use until the leaves are hashed: the tree's
 * upper half) or else a buffer of its own, so the helper hashes while the caller encodes its own
 * range, chunk by chunk, straight into its module's memory. The helper is used when `out` is on a
 * `SharedArrayBuffer` and `n` is at least {@link PARALLEL_LEAVES}.
 */
export function hashLeaves(out: Uint8Array, n: number, encode: Encode, spare?: Uint8Array): void {
  const local = localModule(CHUNK * 96)
  const h = helperFor(out.buffer, n)
  if (h === null) {
    hashRange(local, out, 0, n, encode)
    return
  }
  // The helper takes the upper half (as much as `spare` holds the encodings of): it starts once
  // the caller has encoded it, and hashes while the caller encodes and hashes its own.
  const split = Math.ceil(n / 2)
  const bytes = (n - split) * 64
  const enc =
    spare !== undefined && spare.buffer instanceof SharedArrayBuffer && spare.length >= bytes
      ? spare.subarray(0, bytes)
      : new Uint8Array(new SharedArrayBuffer(bytes))
  encode(split, n, enc, 0)
  const job = ++h.jobs
  h.worker.postMessage({ kind: 'leaves', job, enc, out, from: split, to: n })
  hashRange(local, out, 0, split, encode)
  if (finished(h, job, n)) return
  hashRange(local, out, split, n, (from, to, into, at) =>
    into.set(enc.subarray((from - split) * 64, (to - split) * 64), at),
  )
}

/**
 * Hashes the inner nodes of an array tree whose leaves are in place: `tree` holds `size = 2n - 1`
 * nodes of 32 bytes, the last `n` of them leaves, and node i becomes keccak256 of the sorted pair of
 * nodes 2i + 1 and 2i + 2. A large tree is cut into the subtrees below one level (each fits in a
 * module memory of about 1 MB); the helper hashes the left ones (those with the deepest leaves),
 * about half of the work, while the caller hashes the rest; then the caller hashes
 * the levels above them.
 */
export function hashInnerNodes(tree: Uint8Array, n: number): void {
  const size = 2 * n - 1
  const depth = 31 - Math.clz32(size) // of the last node: floor(log2(size))
  const top = Math.max(0, depth - SUBTREE_HEIGHT)
  // Room for a subtree, and for the levels above them (as many nodes as the subtrees' roots, again).
  const local = localModule(Math.max(CHUNK * 96, 2 ** (top + 1) * 32))
  if (top === 0) {
    hashSubtree(local, tree, size, n, 0, Number.POSITIVE_INFINITY)
    return
  }
  const first = 2 ** top - 1
  const end = 2 ** (top + 1) - 1
  // Split the subtrees by their inner nodes: the left ones hold the deepest level's leaves.
  let total = 0
  const inner = new Float64Array(end - first)
  for (let root = first; root < end; root++) {
    let count = 0
    for (let l = 0, f = root; f < n - 1; l++, f = 2 * f + 1) count += Math.min(n - 1 - f, 2 ** l)
    inner[root - first] = count
    total += count
  }
  const h = helperFor(tree.buffer, n)
  let split = first
  if (h !== null) {
    for (let done = 0; split < end && done + (inner[split - first] as number) <= total / 2; split++)
      done += inner[split - first] as number
  }
  let job = 0
  if (h !== null && split > first) {
    job = ++h.jobs
    h.worker.postMessage({ kind: 'inner', job, tree, size, n, from: first, to: split })
  }
  for (let root = split; root < end; root++) hashSubtree(local, tree, size, n, root, Number.POSITIVE_INFINITY)
  if (h !== null && split > first && !finished(h, job, n)) {
    for (let root = first; root < split; root++)
      hashSubtree(local, tree, size, n, root, Number.POSITIVE_INFINITY)
  }
  hashSubtree(local, tree, size, n, 0, top)
}

/** Compares the 32-byte hashes at `a` and `b` of `buf` (byte offsets). */
function compareAt(buf: Uint8Array, a: number, b: number): number {
  for (let i = 0; i < 32; i++) {
    const d = (buf[a + i] as number) - (buf[b + i] as number)
    if (d !== 0) return d
  }
  return 0
}

/**
 * Leaf indices sorted by their hashes (`hashes` holds n hashes of 32 bytes): a radix sort on the
 * first 4 bytes (kept in `keys`), from `first` into `second` and back in three passes (so the result
 * is in `second`), then a full comparison inside the rare runs that share them. The helper thread's
 * program has the same function.
 */
function sortByHash(
  hashes: Uint8Array,
  n: number,
  keys: Uint32Array,
  first: Uint32Array,
  second: Uint32Array,
): Uint32Array {
  const view = new DataView(hashes.buffer, hashes.byteOffset, hashes.byteLength)
  for (let i = 0; i < n; i++) keys[i] = view.getUint32(i * 32)
  let from = first
  let to = second
  for (let i = 0; i < n; i++) from[i] = i
  // Three passes of 11, 11 and 10 bits: each pass's 2,048 counters stay in the fastest cache.
  const counts = new Uint32Array(2_049)
  for (const shift of [0, 11, 22]) {
    counts.fill(0)
    for (let i = 0; i < n; i++)
      (counts[(((keys[from[i] as number] as number) >>> shift) & 0x7ff) + 1] as number)++
    for (let d = 0; d < 2_048; d++) counts[d + 1] = (counts[d + 1] as number) + (counts[d] as number)
    for (let i = 0; i < n; i++) {
      const idx = from[i] as number
      const digit = ((keys[idx] as number) >>> shift) & 0x7ff
      to[counts[digit] as number] = idx
      counts[digit] = (counts[digit] as number) + 1
    }
    ;[from, to] = [to, from]
  }
  const sorted = from
  // Runs with equal 4-byte prefixes: sort them by the whole hash. Hashes make such runs rare and
  // short (insertion sort); a long run can only be made on purpose, and gets a comparison sort.
  for (let start = 0; start < n; ) {
    let end = start + 1
    const key = keys[sorted[start] as number]
    while (end < n && keys[sorted[end] as number] === key) end++
    if (end - start > 16) {
      sorted.subarray(start, end).sort((x, y) => compareAt(hashes, x * 32, y * 32))
      start = end
      continue
    }
    for (let i = start + 1; i < end; i++) {
      const x = sorted[i] as number
      let j = i - 1
      while (j >= start && compareAt(hashes, (sorted[j] as number) * 32, x * 32) > 0) {
        sorted[j + 1] = sorted[j] as number
        j--
      }
      sorted[j + 1] = x
    }
    start = end
  }
  return sorted
}

/**
 * Sorts `order` (from `sortByHash`) leaves into the tree: the leaf of entry order[j] to node
 * 2n - 2 - j, as 32-bit words (a copy keeps the bytes in their order), and its node into
 * `positionOf`.
 */
function placeLeaves(buffer: Uint8Array, n: number, order: Uint32Array, positionOf: Uint32Array): void {
  const size = 2 * n - 1
  const words = new Uint32Array(buffer.buffer, buffer.byteOffset + 32, size * 8)
  const leafWords = new Uint32Array(buffer.buffer, buffer.byteOffset, n * 8)
  for (let j = 0; j < n; j++) {
    const i = order[j] as number
    const at = size - 1 - j
    const to = at * 8
    const from = i * 8
    words[to] = leafWords[from] as number
    words[to + 1] = leafWords[from + 1] as number
    words[to + 2] = leafWords[from + 2] as number
    words[to + 3] = leafWords[from + 3] as number
    words[to + 4] = leafWords[from + 4] as number
    words[to + 5] = leafWords[from + 5] as number
    words[to + 6] = leafWords[from + 6] as number
    words[to + 7] = leafWords[from + 7] as number
    positionOf[i] = at
  }
}

/** Where the leaves went: entry indices by leaf (sorted by hash), and each entry's node. */
export interface LeafOrder {
  order: Uint32Array
  positionOf: Uint32Array
}

/**
 * Sorts the `n` leaf hashes at the start of `buffer` (32 bytes each, in entry order) and copies them,
 * in that order, into the tree that starts at byte 32 of `buffer` (node j at slot j + 1: the leaves
 * at nodes n - 1 to 2n - 2, never over the hashes). A large tree's are sorted and placed by the
 * helper thread while the caller runs `meanwhile` (work of its own that needs no leaf order); else,
 * or when the helper fails, the caller does it after `meanwhile`, into arrays of its own.
 */
export function orderLeaves(buffer: Uint8Array, n: number, meanwhile: () => void): LeafOrder {
  const h = helperFor(buffer.buffer, n)
  if (h === null) {
    meanwhile()
    return orderHere(buffer, n)
  }
  const shared = () => new Uint32Array(new SharedArrayBuffer(n * 4))
  const keys = shared()
  const first = shared()
  const second = shared()
  const job = ++h.jobs
  h.worker.postMessage({ kind: 'order', job, buffer, n, keys, first, second })
  meanwhile()
  if (finished(h, job, n)) return { order: second, positionOf: keys }
  return orderHere(buffer, n)
}

function orderHere(buffer: Uint8Array, n: number): LeafOrder {
  /** Until the leaves are placed, the sort's keys. */
  const positionOf = largeArray(Uint32Array, n)
  const order = sortByHash(
    buffer.subarray(0, n * 32),
    n,
    positionOf,
    largeArray(Uint32Array, n),
    largeArray(Uint32Array, n),
  )
  placeLeaves(buffer, n, order, positionOf)
  return { order, positionOf }
}
