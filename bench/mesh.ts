/**
 * The mesh on 127.0.0.1, with the production pieces: `npm run bench -- mesh`.
 *
 * - gossipP50/P99: 20 nodes (createMeshLibp2p + createLibp2pPort + Advertiser + wire codec). One node
 *   publishes its signed advertisement; the time until the last of the other 19 has accepted it
 *   (decoded, verified, in its ad table). Rotating publishers, one publication at a time. Measured
 *   with the 20 nodes in 2 child processes, one a core of the 2-core machine this was sized for (the
 *   headline; 4, 10 and 20 processes measured slower: more processes than cores only add context
 *   switches), and with all 20 in this process. `npm run bench -- mesh gossip` runs only this part.
 * - requestP50/P99: `port.request` to a 64-byte echo handler, against the same round trip on a bare
 *   libp2p stream (baseline), alternating, on one connection between two processes.
 * - idleRss/idleCpu: a real `meshwork node start` (libp2p, port, NodeAgent with its default
 *   refresh, SQLite, ops server) in a child process, connected to one other such node.
 *
 * Children run this file as plain JavaScript: it and the sources it imports are transpiled with
 * TypeScript into a temporary directory first, so that no loader (tsx adds about 35 MB and a thread)
 * sits in the processes being measured. Children exit when their IPC channel closes.
 */
import '../src/core/polyfill.js'
import { type ChildProcess, fork } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { systemClock } from '../src/core/clock.js'
import { VERSION } from '../src/core/version.js'
import { createMeshLibp2p, type MeshLibp2p } from '../src/mesh/create-libp2p.js'
import { createLibp2pPort } from '../src/mesh/libp2p-port.js'
import type { NetworkPort } from '../src/mesh/network-port.js'
import { createPeerSigner } from '../src/mesh/peer-key.js'
import { createWireCodec } from '../src/mesh/wire-codec.js'
import { AdTable } from '../src/node/ad-table.js'
import { ADVERTISEMENT, type Advertisement, adTopic } from '../src/node/advertisement.js'
import { Advertiser } from '../src/node/advertiser.js'
import { initNodeDir } from '../src/node/identity.js'
import { syntheticNetworkFile } from '../test/helpers/synthetic-network.js'
import { report } from './report.js'

const BENCH = 'mesh'
const NODES = 20
const HOST_PROCESSES = 2
const SEEDS = 3
const WARMUP_PUBLICATIONS = 20
const PUBLICATIONS = 200
const REQUEST_WARMUP = 200
const REQUESTS = 2_000
const PAYLOAD_BYTES = 64
const IDLE_SETTLE_MS = 20_000
const IDLE_WINDOW_MS = 60_000
/** The node defaults (config.ts: ads.refreshSeconds and ads.ttlSeconds). */
const REFRESH_MS = 60_000
const TTL_MS = 300_000

const REGISTRY = '0x00000000000000000000000000000000000000b2'
const NET = `31337:${REGISTRY}`
const TOPIC = adTopic(NET)
const CELL = '871f1d489ffffff'
const OPERATOR = '0x000000000000000000000000000000000000dEaD'
const PORT_ECHO = '/meshwork-bench/echo/1'
const BARE_ECHO = '/meshwork-bench/bare-echo/1'
const CHILD_FLAG = '--meshwork-mesh-bench-child'

/** Wall-clock time in ms with sub-millisecond resolution; every process on this machine shares it. */
const wallNow = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0)

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i] ?? Number.NaN
}

function tcpAddr(node: MeshLibp2p): string {
  const addr = node.getMultiaddrs().find((a) => !a.toString().includes('/ws'))
  if (addr === undefined) throw new Error('node has no TCP address')
  return addr.toString()
}

// Gossip: a process hosting some of the 20 nodes

/** One node's advertisement accepted by another node. */
interface Receipt {
  to: string
  from: string
  seq: number
  at: number
}

interface Publication {
  from: string
  seq: number
  at: number
}

interface GossipNode {
  peerId: string
  libp2p: MeshLibp2p
  port: NetworkPort
  advertiser: Advertiser
  seq: () => number
}

/** Nodes of the gossip mesh in one process, each a production node minus the SQLite and ops parts. */
class GossipHost {
  readonly nodes: GossipNode[] = []
  readonly #onReceipt: (r: Receipt) => void

  constructor(onReceipt: (r: Receipt) => void) {
    this.#onReceipt = onReceipt
  }

  async add(bootstrap: string[]): Promise<{ local: number; peerId: string; addr: string }> {
    const privateKey = await generateKeyPair('Ed25519')
    const libp2p = await createMeshLibp2p({ privateKey, bootstrap, scoredTopics: [TOPIC] })
    const port = createLibp2pPort(libp2p)
    const peerId = libp2p.peerId.toString()
    let seq = 0
    const codec = createWireCodec({
      network: NET,
      signer: createPeerSigner(privateKey),
      clock: systemClock,
      types: [ADVERTISEMENT],
      nextSeq: () => ++seq,
    })
    const ad = (): Advertisement => ({
      operator: OPERATOR,
      services: [],
      resources: { cores: 2, memoryMb: 24_576, diskFreeMb: 100_000, gpus: [] },
      h3Cell: CELL,
      tier: 'edge',
      version: VERSION,
      addrs: libp2p.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/[^/]+$/, '')),
    })
    const advertiser = new Advertiser(
      { topic: TOPIC, refreshMs: REFRESH_MS, ttlMs: TTL_MS, ad },
      {
        port,
        codec,
        clock: systemClock,
        table: new AdTable({ clock: systemClock }),
        onAd: (envelope) =>
          this.#onReceipt({ to: peerId, from: envelope.from, seq: envelope.seq, at: wallNow() }),
      },
    )
    await advertiser.start()
    this.nodes.push({ peerId, libp2p, port, advertiser, seq: () => seq })
    return { local: this.nodes.length - 1, peerId, addr: tcpAddr(libp2p) }
  }

  /** Publishes node `local`'s advertisement now (the codec takes its sequence number synchronously). */
  async publish(local: number): Promise<Publication> {
    const node = this.nodes[local]
    if (node === undefined) throw new Error(`no node ${local}`)
    const at = wallNow()
    const publishing = node.advertiser.publishNow()
    const seq = node.seq()
    await publishing
    return { from: node.peerId, seq, at }
  }

  topicPeers(): number[] {
    return this.nodes.map((n) => n.port.topicPeers(TOPIC).length)
  }

  /** Each node's gossipsub mesh degree on the ad topic: the peers it forwards every message to. */
  meshPeers(): number[] {
    return this.nodes.map((n) => n.libp2p.services.pubsub.getMeshPeers(TOPIC).length)
  }

  connections(): number[] {
    return this.nodes.map((n) => n.libp2p.getConnections().length)
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        n.advertiser.stop()
        await n.port.close()
      }),
    )
    this.nodes.length = 0
  }
}

/** What the gossip benchmark needs of a host, in this process or behind IPC. */
interface HostHandle {
  add(bootstrap: string[]): Promise<{ local: number; peerId: string; addr: string }>
  publish(local: number): Promise<Publication>
  topicPeers(): Promise<number[]>
  meshPeers(): Promise<number[]>
  connections(): Promise<number[]>
  /** CPU time the host process has used, in ms. */
  cpuMs(): Promise<number>
  stop(): Promise<void>
}

/** Collects receipts and resolves once a publication has reached `need` nodes. */
class ReceiptCollector {
  readonly #times = new Map<string, number[]>()
  readonly #waiters = new Map<string, { need: number; resolve: () => void }>()

  add(r: Receipt): void {
    const key = `${r.from}/${r.seq}`
    const times = this.#times.get(key) ?? []
    times.push(r.at)
    this.#times.set(key, times)
    const waiter = this.#waiters.get(key)
    if (waiter !== undefined && times.length >= waiter.need) waiter.resolve()
  }

  /** The receive times of a publication once `need` nodes have it, or what arrived by `timeoutMs`. */
  async wait(p: Publication, need: number, timeoutMs: number): Promise<number[]> {
    const key = `${p.from}/${p.seq}`
    if ((this.#times.get(key)?.length ?? 0) < need) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs)
        this.#waiters.set(key, {
          need,
          resolve: () => {
            clearTimeout(timer)
            resolve()
          },
        })
      })
      this.#waiters.delete(key)
    }
    const times = this.#times.get(key) ?? []
    this.#times.delete(key)
    return times
  }
}

interface GossipResult {
  latencies: number[]
  first: number[]
  lost: number
  topicPeersMean: number
  topicPeersMin: number
  meshPeersMean: number
  connectionsMean: number
  setupMs: number
  cpuMsPerPublication: number
  backgroundCpuMsPerS: number
}

/** Starts 20 nodes over `hosts` (node i on host i mod n), waits for the mesh, and times publications. */
async function gossipRun(hosts: HostHandle[], collector: ReceiptCollector): Promise<GossipResult> {
  const t0 = performance.now()
  const nodes: { host: HostHandle; local: number; addr: string }[] = []
  const hostOf = (i: number) => hosts[i % hosts.length] as HostHandle
  // Seeds first (the network file's bootstrap list), then everyone bootstraps from them.
  for (let i = 0; i < SEEDS; i++) {
    const info = await hostOf(i).add(nodes.map((n) => n.addr))
    nodes.push({ host: hostOf(i), ...info })
  }
  const seeds = nodes.map((n) => n.addr)
  const rest = await Promise.all(
    Array.from({ length: NODES - SEEDS }, async (_, j) => {
      const host = hostOf(SEEDS + j)
      return { host, ...(await host.add(seeds)) }
    }),
  )
  nodes.push(...rest)

  // The DHT connects the nodes to one another over the first seconds: wait until connections and
  // topic peers stop changing (every node with at least 4 topic peers, no change for 3 s), at most 30 s.
  const topicPeers = async () => (await Promise.all(hosts.map((h) => h.topicPeers()))).flat()
  const connections = async () => (await Promise.all(hosts.map((h) => h.connections()))).flat()
  const hostsCpuMs = async () => sum(await Promise.all(hosts.map((h) => h.cpuMs())))
  let stableSince = performance.now()
  let stableCpu = 0
  let last = ''
  for (const deadline = performance.now() + 30_000; performance.now() < deadline; ) {
    const tp = await topicPeers()
    const key = `${tp.join(',')}|${(await connections()).join(',')}`
    if (key !== last) {
      last = key
      stableSince = performance.now()
      stableCpu = await hostsCpuMs()
    } else if (Math.min(...tp) >= 4 && performance.now() - stableSince >= 3_000) break
    await sleep(250)
  }
  const setupMs = performance.now() - t0
  const cpuAtStart = await hostsCpuMs()
  // What the nodes use with no publications (heartbeats, DHT, pings), over the quiet end of setup.
  const backgroundCpuMsPerS = ((cpuAtStart - stableCpu) / (performance.now() - stableSince)) * 1000

  const latencies: number[] = []
  const first: number[] = []
  let lost = 0
  for (let k = 0; k < WARMUP_PUBLICATIONS + PUBLICATIONS; k++) {
    const node = nodes[k % NODES] as (typeof nodes)[number]
    const pub = await node.host.publish(node.local)
    const times = await collector.wait(pub, NODES - 1, 3_000)
    if (k >= WARMUP_PUBLICATIONS) {
      if (times.length < NODES - 1) lost++
      else {
        latencies.push(Math.max(...times) - pub.at)
        first.push(Math.min(...times) - pub.at)
      }
    }
    await sleep(5)
  }
  const cpuUsed = (await hostsCpuMs()) - cpuAtStart
  const tp = await topicPeers()
  const mesh = (await Promise.all(hosts.map((h) => h.meshPeers()))).flat()
  const conns = await connections()
  return {
    latencies,
    first,
    lost,
    topicPeersMean: round(sum(tp) / tp.length, 1),
    topicPeersMin: Math.min(...tp),
    meshPeersMean: round(sum(mesh) / mesh.length, 1),
    connectionsMean: round(sum(conns) / conns.length, 1),
    setupMs,
    cpuMsPerPublication: round(cpuUsed / (WARMUP_PUBLICATIONS + PUBLICATIONS), 1),
    backgroundCpuMsPerS: round(backgroundCpuMsPerS, 0),
  }
}

function reportGossip(suffix: string, r: GossipResult, extra: Record<string, unknown>): void {
  const common = {
    unit: 'ms',
    nodes: NODES,
    publications: PUBLICATIONS,
    lost: r.lost,
    topicPeersMean: r.topicPeersMean,
    topicPeersMin: r.topicPeersMin,
    meshPeersMean: r.meshPeersMean,
    connectionsMean: r.connectionsMean,
    cpuMsPerPublication: r.cpuMsPerPublication,
    backgroundCpuMsPerS: r.backgroundCpuMsPerS,
    setupS: round(r.setupMs / 1000, 1),
    ...extra,
  }
  report({
    bench: BENCH,
    metric: `gossipP50${suffix}`,
    value: round(percentile(r.latencies, 0.5)),
    firstReceiverP50: round(percentile(r.first, 0.5)),
    ...common,
  })
  report({
    bench: BENCH,
    metric: `gossipP99${suffix}`,
    value: round(percentile(r.latencies, 0.99)),
    max: round(Math.max(...r.latencies)),
    target: '<= 50',
    ...common,
  })
}

// Request/response: the port against a bare libp2p stream

/** Bare echo server: read 64 bytes, send them back, close. */
function bareEchoHandler(stream: Stream): void {
  const chunks: Uint8Array[] = []
  let received = 0
  const onMessage = (event: StreamMessageEvent): void => {
    const data = event.data.subarray()
    chunks.push(data)
    received += data.byteLength
    if (received < PAYLOAD_BYTES) return
    stream.removeEventListener('message', onMessage)
    stream.send(Buffer.concat(chunks))
    stream.close().catch((err: unknown) => stream.abort(err as Error))
  }
  stream.addEventListener('message', onMessage)
}

/** Bare echo client: a new stream, send 64 bytes and close the write side, read 64 bytes. */
async function bareEcho(node: MeshLibp2p, peer: PeerId, payload: Uint8Array): Promise<void> {
  const stream = await node.dialProtocol(peer, BARE_ECHO)
  const answered = new Promise<void>((resolve, reject) => {
    let received = 0
    stream.addEventListener('message', (event: StreamMessageEvent) => {
      received += event.data.byteLength
      if (received >= PAYLOAD_BYTES) resolve()
    })
    stream.addEventListener('close', (event: StreamCloseEvent) => {
      if (received < PAYLOAD_BYTES) reject(event.error ?? new Error('stream closed before the answer'))
    })
  })
  stream.send(payload)
  const closing = stream.close()
  await answered
  await closing
}

async function requestBench(entry: string, children: Set<Child>): Promise<void> {
  const server = new Child(entry, 'echo')
  children.add(server)
  await server.ready
  const { peerId, addr } = await server.call<{ peerId: string; addr: string }>('start')
  const client = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), bootstrap: [addr] })
  const port = createLibp2pPort(client)
  try {
    const deadline = Date.now() + 10_000
    while (!port.peers().includes(peerId)) {
      if (Date.now() > deadline) throw new Error('the client did not connect to the echo server')
      await sleep(20)
    }
    const peer = peerIdFromString(peerId)
    const payload = new Uint8Array(PAYLOAD_BYTES).fill(7)
    const viaPort: number[] = []
    const bare: number[] = []
    const timePort = async () => {
      const t = performance.now()
      const answer = await port.request(peerId, PORT_ECHO, payload)
      const ms = performance.now() - t
      if (answer.byteLength !== PAYLOAD_BYTES) throw new Error('wrong echo')
      return ms
    }
    const timeBare = async () => {
      const t = performance.now()
      await bareEcho(client, peer, payload)
      return performance.now() - t
    }
    for (let i = 0; i < REQUEST_WARMUP + REQUESTS; i++) {
      // Alternate, and alternate which goes first, so that drift and GC fall on both alike.
      let p: number
      let b: number
      if (i % 2 === 0) {
        p = await timePort()
        b = await timeBare()
      } else {
        b = await timeBare()
        p = await timePort()
      }
      if (i < REQUEST_WARMUP) continue
      viaPort.push(p)
      bare.push(b)
    }
    const note =
      'port.request to a 64-byte echo handler vs a bare libp2p stream (dialProtocol, send 64 B, close write, read 64 B); new stream each, alternating, same connection; client in the bench process, server in a child'
    for (const [metric, q] of [
      ['requestP50', 0.5],
      ['requestP99', 0.99],
    ] as const) {
      const value = percentile(viaPort, q)
      const baseline = percentile(bare, q)
      report({
        bench: BENCH,
        metric,
        value: round(value, 3),
        unit: 'ms',
        baseline: round(baseline, 3),
        ratio: round(value / baseline, 3),
        requests: REQUESTS,
        nodes: 2,
        ...(metric === 'requestP50' ? { target: 'ratio <= 1.5', note } : {}),
      })
    }
  } finally {
    await port.close()
    await server.stop()
    children.delete(server)
  }
}

// Idle: a real `meshwork node start`

interface Sample {
  rss: number
  heapTotal: number
  heapUsed: number
  external: number
  arrayBuffers: number
  cpuMicros: number
  at: number
}

function sample(): Sample {
  const m = process.memoryUsage()
  const cpu = process.cpuUsage()
  return {
    rss: m.rss,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    cpuMicros: cpu.user + cpu.system,
    at: performance.now(),
  }
}

interface IdleNodes {
  a: Child
  b: Child
  connectedAt: number
}

/** Starts two real nodes, the second bootstrapping from the first, and waits until they are connected. */
async function startIdleNodes(entry: string, workDir: string, children: Set<Child>): Promise<IdleNodes> {
  const a = new Child(entry, 'idle')
  const b = new Child(entry, 'idle')
  children.add(a)
  children.add(b)
  await Promise.all([a.ready, b.ready])
  const first = await a.call<{ addr: string }>('start', { dir: join(workDir, 'node-a'), bootstrap: [] })
  await b.call('start', { dir: join(workDir, 'node-b'), bootstrap: [first.addr] })
  const deadline = Date.now() + 15_000
  for (;;) {
    const [pa, pb] = await Promise.all([a.call<number>('peers'), b.call<number>('peers')])
    if (pa >= 1 && pb >= 1) break
    if (Date.now() > deadline) throw new Error('the idle nodes did not connect')
    await sleep(100)
  }
  return { a, b, connectedAt: performance.now() }
}

/**
 * The 60 s CPU window (at least 20 s after the nodes connected, and after every other measurement),
 * then the report, then stops the nodes.
 */
async function idleBench(idle: IdleNodes, children: Set<Child>): Promise<void> {
  const { a, b } = idle
  try {
    await sleep(idle.connectedAt + IDLE_SETTLE_MS - performance.now())
    const [a0, b0] = await Promise.all([a.call<Sample>('sample'), b.call<Sample>('sample')])
    const settleS = round((performance.now() - idle.connectedAt) / 1000, 0)
    await sleep(IDLE_WINDOW_MS)
    const [a1, b1] = await Promise.all([a.call<Sample>('sample'), b.call<Sample>('sample')])
    const [early, adsA, adsB] = await Promise.all([
      b.call<Sample>('earlySample'),
      a.call<number>('ads'),
      b.call<number>('ads'),
    ])
    const mb = (bytes: number) => round(bytes / 2 ** 20, 1)
    const cpu = (s0: Sample, s1: Sample) =>
      round(((s1.cpuMicros - s0.cpuMicros) / 1000 / (s1.at - s0.at)) * 100, 3)
    report({
      bench: BENCH,
      metric: 'idleRss',
      value: mb(b1.rss),
      unit: 'MB',
      upS: round((b1.at - early.at) / 1000 + IDLE_SETTLE_MS / 1000, 0),
      heapUsedMb: mb(b1.heapUsed),
      heapTotalMb: mb(b1.heapTotal),
      arrayBuffersMb: mb(b1.arrayBuffers),
      rssAt20sMb: mb(early.rss),
      heapTotalAt20sMb: mb(early.heapTotal),
      otherNodeMb: mb(a1.rss),
      target: '<= 120',
      note: 'a real `meshwork node start` (libp2p, port, NodeAgent with the default 60 s refresh, SQLite, ops server) as plain JS in a child process, connected to one other such node (the other node: otherNodeMb). value: at the end of the CPU window; rssAt20sMb: 20 s after start, before V8 has given back the startup heap (its memory reducer runs about 45-80 s after start)',
    })
    report({
      bench: BENCH,
      metric: 'idleCpu',
      value: cpu(b0, b1),
      unit: '% of one core',
      windowS: IDLE_WINDOW_MS / 1000,
      windowStartS: settleS,
      otherNode: cpu(a0, a1),
      adsKnown: [adsB, adsA],
      target: '<= 1',
      note: 'process.cpuUsage (user + system) of the node over 60 s, starting windowStartS after the two nodes connected and after every other measurement had stopped (the nodes were started before the one-process gossip run and idled through it and the request run)',
    })
  } finally {
    await Promise.all([a.stop('SIGTERM'), b.stop('SIGTERM')])
    children.delete(a)
    children.delete(b)
  }
}

// Child processes

type ChildRole = 'host' | 'echo' | 'idle'
type ToChild = { id: number; cmd: string; args?: unknown }
type FromChild =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: string }
  | { event: 'ready' }
  | { event: 'receipts'; receipts: Receipt[] }

/** A child process running this file in one role, driven over IPC. */
class Child {
  readonly ready: Promise<void>
  readonly #proc: ChildProcess
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  readonly #exited: Promise<void>
  #nextId = 0
  #stderr = ''
  #onReady: () => void = () => undefined

  constructor(entry: string, role: ChildRole, onReceipts?: (r: Receipt[]) => void) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MESHWORK_')))
    this.#proc = fork(entry, [CHILD_FLAG, role], {
      execArgv: [],
      env: { ...env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    this.#proc.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4_000)
    })
    this.ready = new Promise((resolve) => {
      this.#onReady = resolve
    })
    this.#proc.on('message', (m: FromChild) => {
      if ('event' in m) {
        if (m.event === 'ready') this.#onReady()
        else onReceipts?.(m.receipts)
        return
      }
      const p = this.#pending.get(m.id)
      this.#pending.delete(m.id)
      if (m.ok) p?.resolve(m.value)
      else p?.reject(new Error(`${role} child: ${m.error}`))
    })
    this.#exited = new Promise((resolve) => {
      this.#proc.on('exit', (code, signal) => {
        const error = new Error(`${role} child exited (${code ?? signal}): ${this.#stderr.slice(-1_000)}`)
        for (const p of this.#pending.values()) p.reject(error)
        this.#pending.clear()
        this.#onReady = () => undefined
        resolve()
      })
    })
    // A child that dies before it is ready fails `ready` instead of hanging it.
    const ready = this.ready
    this.ready = Promise.race([
      ready,
      this.#exited.then(() => {
        throw new Error(`${role} child exited before it was ready: ${this.#stderr.slice(-1_000)}`)
      }),
    ])
  }

  call<T>(cmd: string, args?: unknown): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) {
        reject(new Error('child has exited'))
        return
      }
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#proc.send({ id, cmd, args } satisfies ToChild)
    })
  }

  /** Stops the child: a signal (or closing IPC), then SIGKILL after 5 s. */
  async stop(signal?: NodeJS.Signals): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return
    if (signal !== undefined) this.#proc.kill(signal)
    else if (this.#proc.connected) this.#proc.disconnect()
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 5_000)
    await this.#exited
    clearTimeout(timer)
  }

  kill(): void {
    if (this.#proc.exitCode === null && this.#proc.signalCode === null) this.#proc.kill('SIGKILL')
  }
}

function childHost(child: Child): HostHandle {
  return {
    add: (bootstrap) => child.call('add', bootstrap),
    publish: (local) => child.call('publish', local),
    topicPeers: () => child.call('topicPeers'),
    meshPeers: () => child.call('meshPeers'),
    connections: () => child.call('connections'),
    cpuMs: () => child.call('cpuMs'),
    stop: () => child.call('stop'),
  }
}

function localHost(host: GossipHost): HostHandle {
  return {
    add: (bootstrap) => host.add(bootstrap),
    publish: (local) => host.publish(local),
    topicPeers: async () => host.topicPeers(),
    meshPeers: async () => host.meshPeers(),
    connections: async () => host.connections(),
    cpuMs: async () => cpuMs(),
    stop: () => host.stop(),
  }
}

/**
 * Checks that the children's clocks agree with this one: per child, the probe with the least round
 * trip (up to 200 probes, stopping below 0.5 ms) gives its offset to within half that round trip.
 * Returns the largest offset found and the round trip it was measured with.
 */
async function clockCheck(children: Child[]): Promise<{ offsetMs: number; rttMs: number }> {
  let worst = { offsetMs: 0, rttMs: 0 }
  for (const child of children) {
    let best = { rttMs: Number.POSITIVE_INFINITY, offsetMs: 0 }
    for (let i = 0; i < 200 && best.rttMs >= 0.5; i++) {
      const p0 = wallNow()
      const c = await child.call<number>('clock')
      const p1 = wallNow()
      if (p1 - p0 < best.rttMs) best = { rttMs: p1 - p0, offsetMs: c - (p0 + p1) / 2 }
    }
    if (Math.abs(best.offsetMs) >= Math.abs(worst.offsetMs)) worst = best
  }
  return { offsetMs: round(worst.offsetMs, 3), rttMs: round(worst.rttMs, 3) }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function httpJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => {
        try {
          resolve(JSON.parse(body))
        } catch (err) {
          reject(err)
        }
      })
    }).on('error', reject)
  })
}

/** The network file a `node start` reads: a fake deployment (the node never calls the chain). */
function networkFile(bootstrap: string[]): unknown {
  return syntheticNetworkFile({ name: 'bench', registry: REGISTRY, bootstrap })
}

async function childMain(role: ChildRole): Promise<void> {
  // The parent went away (or closed the channel): go too.
  process.on('disconnect', () => process.exit(0))
  const send = (m: FromChild) => {
    if (process.connected) process.send?.(m)
  }
  let handlers: Record<string, (args: never) => unknown>
  if (role === 'host') {
    let batch: Receipt[] = []
    const host = new GossipHost((r) => {
      if (batch.length === 0)
        setImmediate(() => {
          send({ event: 'receipts', receipts: batch })
          batch = []
        })
      batch.push(r)
    })
    handlers = {
      add: (bootstrap: string[]) => host.add(bootstrap),
      publish: (local: number) => host.publish(local),
      topicPeers: () => host.topicPeers(),
      meshPeers: () => host.meshPeers(),
      connections: () => host.connections(),
      cpuMs: () => cpuMs(),
      clock: () => wallNow(),
      stop: () => host.stop(),
    }
  } else if (role === 'echo') {
    let port: NetworkPort | undefined
    handlers = {
      start: async () => {
        const libp2p = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519') })
        port = createLibp2pPort(libp2p)
        port.handle(PORT_ECHO, async (request) => request)
        await libp2p.handle(BARE_ECHO, (stream) => bareEchoHandler(stream), { maxInboundStreams: 32 })
        return { peerId: libp2p.peerId.toString(), addr: tcpAddr(libp2p) }
      },
      stop: () => port?.close(),
    }
  } else {
    let ops = ''
    let early: Sample | undefined
    handlers = {
      start: async (args: { dir: string; bootstrap: string[] }) => {
        const [tcp, api] = [await freePort(), await freePort()]
        const identity = await initNodeDir({
          dir: args.dir,
          h3Cell: CELL,
          listen: [`/ip4/127.0.0.1/tcp/${tcp}`, '/ip4/127.0.0.1/tcp/0/ws'],
          apiListen: `127.0.0.1:${api}`,
        })
        writeFileSync(join(args.dir, 'network.json'), JSON.stringify(networkFile(args.bootstrap)))
        const { main } = await import('../src/cli/main.js')
        main(['node', 'start', '--dir', args.dir]).then(
          (code) => process.exit(code),
          () => process.exit(1),
        )
        setTimeout(() => {
          early = sample()
        }, IDLE_SETTLE_MS)
        ops = `http://127.0.0.1:${api}`
        for (const deadline = Date.now() + 20_000; ; await sleep(100)) {
          if (await httpJson(`${ops}/healthz`).catch(() => undefined)) break
          if (Date.now() > deadline) throw new Error('the node did not come up')
        }
        return { addr: `/ip4/127.0.0.1/tcp/${tcp}/p2p/${identity.peerId}` }
      },
      peers: async () => ((await httpJson(`${ops}/status`)) as { peers: string[] }).peers.length,
      ads: async () => ((await httpJson(`${ops}/status`)) as { ads: unknown[] }).ads.length,
      sample: () => sample(),
      earlySample: () => early ?? sample(),
    }
  }
  process.on('message', (m: ToChild) => {
    const handler = handlers[m.cmd]
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown command ${m.cmd}`)
        return handler(m.args as never)
      })
      .then(
        (value) => send({ id: m.id, ok: true, value: value ?? null }),
        (err: unknown) => send({ id: m.id, ok: false, error: String((err as Error)?.stack ?? err) }),
      )
  })
  send({ event: 'ready' })
}

// Build: this file and the sources it imports, as plain JavaScript

/**
 * Transpiles this file and every relative import it reaches (static or dynamic) into `out`, with a
 * `node_modules` link back to the project's, and returns the entry file.
 */
async function buildChildEntry(out: string): Promise<string> {
  const ts = (await import('typescript')).default
  const self = fileURLToPath(import.meta.url)
  const root = resolve(dirname(self), '..')
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'), 'dir')
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n')
  const seen = new Set<string>()
  const queue = [self]
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue
    seen.add(file)
    const source = readFileSync(file, 'utf8')
    for (const m of source.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)'(\.{1,2}\/[^']+)\.js'/g)) {
      const target = resolve(dirname(file), `${m[1]}.ts`)
      if (existsSync(target)) queue.push(target)
    }
    const { outputText } = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    })
    const dest = join(out, relative(root, file)).replace(/\.ts$/, '.js')
    mkdirSync(dirname(dest), { recursive: true })
    writeFileSync(dest, outputText)
  }
  return join(out, relative(root, self)).replace(/\.ts$/, '.js')
}

/** The parts of this benchmark, in the order they run; `npm run bench -- mesh PART…` runs some. */
const PARTS = ['gossip', 'gossip-one-process', 'request', 'idle'] as const
type Part = (typeof PARTS)[number]

export async function run(args: string[] = []): Promise<void> {
  const unknown = args.filter((a) => !(PARTS as readonly string[]).includes(a))
  if (unknown.length > 0) throw new Error(`unknown part ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`)
  const wanted = (part: Part) => args.length === 0 || args.includes(part)
  const workDir = mkdtempSync(join(tmpdir(), 'meshwork-bench-mesh-'))
  const children = new Set<Child>()
  try {
    const entry = await buildChildEntry(workDir)

    // Gossip, 20 nodes in 4 child processes.
    if (wanted('gossip')) {
      const collector = new ReceiptCollector()
      const hostChildren = Array.from(
        { length: HOST_PROCESSES },
        () =>
          new Child(entry, 'host', (receipts) => {
            for (const r of receipts) collector.add(r)
          }),
      )
      for (const c of hostChildren) children.add(c)
      await Promise.all(hostChildren.map((c) => c.ready))
      const clock = await clockCheck(hostChildren)
      const hosts = hostChildren.map(childHost)
      const result = await gossipRun(hosts, collector)
      await Promise.all(hosts.map((h) => h.stop()))
      await Promise.all(hostChildren.map((c) => c.stop()))
      for (const c of hostChildren) children.delete(c)
      reportGossip('', result, {
        processes: HOST_PROCESSES,
        clockOffsetMs: clock.offsetMs,
        clockProbeRttMs: clock.rttMs,
        note: `${NODES} nodes in ${HOST_PROCESSES} child processes (${NODES / HOST_PROCESSES} each) (one a core on a 2-core machine); from publishNow() on the publisher to the last of the other ${NODES - 1} accepting the ad (decoded, verified, in its ad table), on the wall clock all processes share. CPU-bound here: the nodes together spend cpuMsPerPublication per ad (on top of backgroundCpuMsPerS), and the last receiver waits for most of it`,
      })
    }

    // The two idle nodes start now and settle through the next two runs (they take about 1% of a
    // core between them); their CPU window comes last, when nothing else runs.
    const idle = wanted('idle') ? await startIdleNodes(entry, workDir, children) : undefined

    // Gossip, all 20 nodes in this process.
    if (wanted('gossip-one-process')) {
      const collector = new ReceiptCollector()
      const host = new GossipHost((r) => collector.add(r))
      try {
        const result = await gossipRun([localHost(host)], collector)
        reportGossip('OneProcess', result, {
          processes: 1,
          note: `all ${NODES} nodes in the bench process, on one event loop: each hop also waits behind the other nodes' work`,
        })
      } finally {
        await host.stop()
      }
    }

    if (wanted('request')) await requestBench(entry, children)
    if (idle !== undefined) await idleBench(idle, children)
  } finally {
    await Promise.all([...children].map((c) => c.stop().catch(() => c.kill())))
    const link = join(workDir, 'node_modules')
    if (existsSync(link)) unlinkSync(link)
    rmSync(workDir, { recursive: true, force: true })
  }
}

if (process.argv.includes(CHILD_FLAG)) {
  await childMain(process.argv[process.argv.indexOf(CHILD_FLAG) + 1] as ChildRole)
}
