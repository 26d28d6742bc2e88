import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { ScheduleInput } from '../verifier/schedule.js'

/**
 * The fast engine's uptime challenges on worker threads, one per core: for each verifier and each
 * registered node of an epoch, how many of its challenges the node answered and its fastest round
 * trip. It is pure (the epoch's seed, the peer ids, the links and the online sessions), so the
 * nodes are split into one contiguous range a worker, and the result does not depend on the split:
 * each worker jumps the verifier's link stream (mulberry32, whose state only adds a constant a
 * draw) to its range's first draw.
 *
 * The schedule is `challengeTimes`' (sha256(`meshwork-schedule-v1` ‖ seed ‖ verifier ‖ node ‖ i),
 * 48 bits of it into the i-th slot of the window), computed by a SHA-256 of the workers' own that
 * keeps the state after the blocks every challenge of a verifier, or of a node, shares: about one
 * block compressed a challenge instead of four, and no allocation. {@link UptimeWorkers.challengeTimes}
 * runs that code for one pair, and a test holds it equal to `challengeTimes`.
 *
 * The workers are started once a run, with the identities' peer ids, links and sessions in shared
 * memory; {@link UptimeWorkers.close} terminates them (they never keep the process alive either).
 */

/** What {@link UptimeWorkers} starts with: the run's identities, verifiers and protocol. */
export interface UptimeWorkersInit {
  /** Peer id of each identity, by identity index. */
  peerIds: readonly string[]
  /** The verifiers' peer ids, in the order of the run. */
  verifiers: readonly string[]
  /**
   * Each identity's online spans (epochs from genesis, sorted and disjoint), flattened: identity i's
   * are `[spans[2s], spans[2s + 1])` for s in `[spanStart[i], spanStart[i + 1])`.
   */
  spans: Float64Array
  spanStart: Int32Array
  /**
   * The links, 6 numbers for verifier v and identity i at `(v × identities + i) × 6`: latency,
   * jitter and loss rate from the verifier to the node, then back.
   */
  links: Float64Array
  /** Unix seconds of epoch 0 and an epoch's length in seconds (to place a time in the sessions). */
  genesisTime: number
  epochDuration: number
  challengesPerEpoch: number
  challengeTimeoutMs: number
  /** Worker threads (default: one per core; the result does not depend on it). */
  workers?: number
}

/** One epoch's challenges. */
export interface UptimeEpoch {
  /** The epoch's seed (0x + 64 hex). */
  seed: string
  epochStartMs: number
  epochDurationMs: number
  /** Seed of each verifier's link stream this epoch (`streamSeed(seed, 'fast-links', epoch, verifier)`). */
  streamSeeds: readonly number[]
  /** The identity index of each registered node, in registry order. */
  nodes: readonly number[]
  /** For each verifier, the position in `nodes` of the verifier itself (it does not challenge itself), or -1. */
  skip: readonly number[]
}

/** What each verifier saw of each node, at `v × nodes + k` (valid until the next epoch is asked for). */
export interface UptimeCounts {
  /** Challenges node k answered to verifier v in time; -1 where the verifier is the node. */
  answered: Int32Array
  /** Its fastest answered round trip, ms (Infinity when none was answered). */
  fastest: Float64Array
}

/** The challenge window of `challengeTimes` (whole ms) and its slot length; throws where it does. */
export function scheduleWindow(
  input: Pick<ScheduleInput, 'epochStartMs' | 'epochDurationMs' | 'count' | 'fromFraction' | 'toFraction'>,
): { start: number; slot: number } {
  const from = input.fromFraction ?? 0.1
  const to = input.toFraction ?? 0.8
  if (!Number.isSafeInteger(input.count) || input.count < 1) throw new RangeError('count must be at least 1')
  if (!(from >= 0 && from < to && to <= 1)) throw new RangeError('need 0 <= fromFraction < toFraction <= 1')
  const start = input.epochStartMs + Math.floor(input.epochDurationMs * from)
  const end = input.epochStartMs + Math.floor(input.epochDurationMs * to)
  const slot = Math.floor((end - start) / input.count)
  if (slot < 1) throw new RangeError('the window is too short for that many challenges')
  return { start, slot }
}

/** The workers' program (plain JavaScript: it runs without the project's loader). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { verifiers, spans, spanStart, links, idBytes, idStart, genesisTime, epochDuration, count, timeoutMs } =
  workerData
const identities = spanStart.length - 1

// SHA-256 (FIPS 180-4) over bytes, one 64-byte block at a time into an 8-word state.
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
])
const IV = Int32Array.from([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
])
const w = new Int32Array(64)
function compress(h, bytes, at) {
  for (let i = 0; i < 16; i++, at += 4)
    w[i] = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]
    const y = w[i - 2]
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0
  }
  let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7]
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
    const t1 = (k + s1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0
    k = g
    g = f
    f = e
    e = (d + t1) | 0
    d = c
    c = b
    b = a
    a = (t1 + t2) | 0
  }
  h[0] = (h[0] + a) | 0
  h[1] = (h[1] + b) | 0
  h[2] = (h[2] + c) | 0
  h[3] = (h[3] + d) | 0
  h[4] = (h[4] + e) | 0
  h[5] = (h[5] + f) | 0
  h[6] = (h[6] + g) | 0
  h[7] = (h[7] + k) | 0
}

// The state after the whole blocks of a verifier's prefix, its remaining bytes and its length.
function prefixOf(seed, verifier) {
  const bytes = Buffer.from('meshwork-schedule-v1\\n' + seed.toLowerCase() + '\\n' + verifier + '\\n', 'utf8')
  const state = Int32Array.from(IV)
  const whole = bytes.length - (bytes.length % 64)
  for (let at = 0; at < whole; at += 64) compress(state, bytes, at)
  return { state, tail: bytes.subarray(whole), length: bytes.length }
}

let buf = new Uint8Array(256)
const block = new Uint8Array(128)
const nodeState = new Int32Array(8)
const state = new Int32Array(8)
// draws[i] = the first 48 bits of sha256(prefix ‖ node ‖ i), node given as its bytes with '\\n'.
function drawsOf(prefix, node, from, to, draws) {
  const length = prefix.tail.length + (to - from)
  if (buf.length < length) buf = new Uint8Array(2 * length)
  buf.set(prefix.tail, 0)
  buf.set(node.subarray(from, to), prefix.tail.length)
  nodeState.set(prefix.state)
  const whole = length - (length % 64)
  for (let at = 0; at < whole; at += 64) compress(nodeState, buf, at)
  const total = prefix.length + (to - from)
  for (let i = 0; i < draws.length; i++) {
    let m = 0
    for (let j = whole; j < length; j++) block[m++] = buf[j]
    const digits = String(i)
    for (let j = 0; j < digits.length; j++) block[m++] = digits.charCodeAt(j)
    block[m++] = 0x80
    const end = m + 8 <= 64 ? 64 : 128
    block.fill(0, m, end - 4)
    const bits = (total + digits.length) * 8
    block[end - 8] = 0
    block[end - 7] = 0
    block[end - 6] = 0
    block[end - 5] = Math.floor(bits / 0x100000000)
    block[end - 4] = bits >>> 24
    block[end - 3] = bits >>> 16
    block[end - 2] = bits >>> 8
    block[end - 1] = bits
    state.set(nodeState)
    compress(state, block, 0)
    if (end === 128) compress(state, block, 64)
    draws[i] = (state[0] >>> 0) * 0x10000 + (state[1] >>> 16)
  }
}

function onlineAt(id, ms) {
  const t = (ms / 1000 - genesisTime) / epochDuration
  let lo = spanStart[id]
  let hi = spanStart[id + 1] - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (t < spans[2 * mid]) hi = mid - 1
    else if (t >= spans[2 * mid + 1]) lo = mid + 1
    else return true
  }
  return false
}

// mulberry32 (src/core/prng.ts), its state in one variable so that it can jump.
let a = 0
function uniform() {
  a = (a + 0x6d2b79f5) >>> 0
  let t = a
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 0x100000000
}

function epoch({ seed, start, slot, streamSeeds, nodes, n, skip, from, to, answered, fastest }) {
  const draws = new Float64Array(count)
  for (let v = 0; v < verifiers.length; v++) {
    const prefix = prefixOf(seed, verifiers[v])
    const s = skip[v]
    for (let k = from; k < to; k++) {
      const out = v * n + k
      if (k === s) {
        answered[out] = -1
        continue
      }
      // The stream draws 4 numbers a challenge, node after node (the verifier itself skipped).
      const before = s >= 0 && s < k ? k - 1 : k
      a = (streamSeeds[v] + Math.imul(before * count * 4, 0x6d2b79f5)) >>> 0
      const id = nodes[k]
      drawsOf(prefix, idBytes, idStart[id], idStart[id + 1], draws)
      const l = (v * identities + id) * 6
      let got = 0
      let best = Infinity
      for (let i = 0; i < count; i++) {
        const time = start + i * slot + (draws[i] % slot)
        const lostThere = uniform() < links[l + 2]
        const oneWay = Math.round(links[l] + uniform() * links[l + 1])
        const lostBack = uniform() < links[l + 5]
        const backWay = Math.round(links[l + 3] + uniform() * links[l + 4])
        if (lostThere || lostBack || oneWay + backWay > timeoutMs) continue
        if (onlineAt(id, time + oneWay)) {
          got++
          best = Math.min(best, oneWay + backWay)
        }
      }
      answered[out] = got
      fastest[out] = best
    }
  }
}

function times({ seed, verifier, node, start, slot, count }) {
  const bytes = Buffer.from(node + '\\n', 'utf8')
  const draws = new Float64Array(count)
  drawsOf(prefixOf(seed, verifier), bytes, 0, bytes.length, draws)
  return Array.from(draws, (d, i) => start + i * slot + (d % slot))
}

parentPort.on('message', (message) => {
  try {
    if (message.kind === 'epoch') {
      epoch(message)
      parentPort.postMessage({ job: message.job })
    } else parentPort.postMessage({ job: message.job, times: times(message) })
  } catch (error) {
    parentPort.postMessage({ job: message.job, error: String((error && error.stack) || error) })
  }
})
`

interface Pending {
  resolve: (reply: { times?: number[] }) => void
  reject: (error: Error) => void
}

/** The worker threads of one fast-engine run; see the module's comment. */
export class UptimeWorkers {
  readonly size: number
  readonly #workers: Worker[]
  readonly #pending = new Map<number, Pending>()
  readonly #verifiers: number
  readonly #count: number
  readonly #nodes: Int32Array
  readonly #answered: Int32Array
  readonly #fastest: Float64Array
  #failure: Error | undefined
  #nextJob = 0

  constructor(init: UptimeWorkersInit) {
    this.size = Math.max(1, Math.floor(init.workers ?? availableParallelism()))
    const identities = init.peerIds.length
    if (init.spanStart.length !== identities + 1)
      throw new RangeError('spanStart needs identities + 1 entries')
    if (init.links.length !== init.verifiers.length * identities * 6)
      throw new RangeError('links need 6 numbers a verifier and identity')
    this.#verifiers = init.verifiers.length
    this.#count = init.challengesPerEpoch
    // Each identity's peer id and '\n', as UTF-8, back to back.
    const encoded = init.peerIds.map((p) => Buffer.from(`${p}\n`, 'utf8'))
    const idStart = new Int32Array(new SharedArrayBuffer(4 * (identities + 1)))
    for (let i = 0; i < identities; i++)
      idStart[i + 1] = (idStart[i] as number) + (encoded[i] as Buffer).length
    const idBytes = new Uint8Array(new SharedArrayBuffer(idStart[identities] as number))
    for (let i = 0; i < identities; i++) idBytes.set(encoded[i] as Buffer, idStart[i])
    const shared = <T extends Float64Array | Int32Array>(a: T): T => {
      if (a.buffer instanceof SharedArrayBuffer) return a
      const copy = (
        a instanceof Float64Array
          ? new Float64Array(new SharedArrayBuffer(a.byteLength))
          : new Int32Array(new SharedArrayBuffer(a.byteLength))
      ) as T
      copy.set(a)
      return copy
    }
    this.#nodes = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, identities)))
    const results = Math.max(1, this.#verifiers * identities)
    this.#answered = new Int32Array(new SharedArrayBuffer(4 * results))
    this.#fastest = new Float64Array(new SharedArrayBuffer(8 * results))
    const workerData = {
      verifiers: [...init.verifiers],
      spans: shared(init.spans),
      spanStart: shared(init.spanStart),
      links: shared(init.links),
      idBytes,
      idStart,
      genesisTime: init.genesisTime,
      epochDuration: init.epochDuration,
      count: init.challengesPerEpoch,
      timeoutMs: init.challengeTimeoutMs,
    }
    this.#workers = []
    try {
      for (let i = 0; i < this.size; i++) {
        const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData })
        worker.unref()
        worker.on('message', (reply: { job: number; error?: string; times?: number[] }) => {
          const pending = this.#pending.get(reply.job)
          if (pending === undefined) return
          this.#pending.delete(reply.job)
          if (reply.error === undefined) pending.resolve(reply)
          else pending.reject(new Error(`an uptime worker failed: ${reply.error}`))
        })
        worker.on('error', (error) => this.#fail(error))
        worker.on('exit', (code) => this.#fail(new Error(`an uptime worker exited with ${code}`)))
        this.#workers.push(worker)
      }
    } catch (error) {
      void this.close()
      throw error
    }
  }

  /** Every verifier's challenges of every registered node this epoch; the arrays are reused by the next call. */
  async epoch(input: UptimeEpoch): Promise<UptimeCounts> {
    if (input.streamSeeds.length !== this.#verifiers || input.skip.length !== this.#verifiers)
      throw new RangeError('need a stream seed and a skip position for each verifier')
    if (!/^0x[0-9a-fA-F]{64}$/.test(input.seed)) throw new RangeError('seed must be a 32-byte hex hash')
    const n = input.nodes.length
    if (n > this.#nodes.length) throw new RangeError('more nodes than identities')
    this.#nodes.set(input.nodes)
    const { start, slot } = scheduleWindow({ ...input, count: this.#count })
    // Contiguous ranges of nodes, as equal as they can be.
    const jobs: Promise<unknown>[] = []
    for (let w = 0; w < this.#workers.length; w++) {
      const from = Math.floor((n * w) / this.#workers.length)
      const to = Math.floor((n * (w + 1)) / this.#workers.length)
      if (from === to) continue
      jobs.push(
        this.#ask(w, {
          kind: 'epoch',
          seed: input.seed,
          start,
          slot,
          streamSeeds: input.streamSeeds.map((s) => s >>> 0),
          nodes: this.#nodes,
          n,
          skip: [...input.skip],
          from,
          to,
          answered: this.#answered,
          fastest: this.#fastest,
        }),
      )
    }
    await Promise.all(jobs)
    const size = this.#verifiers * n
    return { answered: this.#answered.subarray(0, size), fastest: this.#fastest.subarray(0, size) }
  }

  /**
   * The workers' schedule of `verifier` for `node`: what `challengeTimes(input)` returns, computed
   * the way {@link UptimeWorkers.epoch} does (for tests).
   */
  async challengeTimes(input: ScheduleInput): Promise<number[]> {
    if (!/^0x[0-9a-fA-F]{64}$/.test(input.seed)) throw new RangeError('seed must be a 32-byte hex hash')
    const { start, slot } = scheduleWindow(input)
    const reply = await this.#ask(0, {
      kind: 'times',
      seed: input.seed,
      verifier: input.verifier,
      node: input.node,
      start,
      slot,
      count: input.count,
    })
    return reply.times ?? []
  }

  /** Terminates the workers (a pending epoch fails). */
  async close(): Promise<void> {
    this.#fail(new Error('the uptime workers were closed'))
    await Promise.all(this.#workers.map((w) => w.terminate()))
  }

  #ask(worker: number, message: Record<string, unknown>): Promise<{ times?: number[] }> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    const job = ++this.#nextJob
    return new Promise((resolve, reject) => {
      this.#pending.set(job, { resolve, reject })
      ;(this.#workers[worker] as Worker).postMessage({ ...message, job })
    })
  }

  #fail(error: Error): void {
    this.#failure ??= error
    for (const pending of this.#pending.values()) pending.reject(this.#failure)
    this.#pending.clear()
  }
}
