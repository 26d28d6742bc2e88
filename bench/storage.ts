/**
 * Storage on 127.0.0.1: `npm run bench -- storage`.
 *
 * - putMBps / getMBps: ten nodes (libp2p, network port, the node's StorageService with its SQLite
 *   index and shard files) in a child process, as other machines would be, and a builder's SDK
 *   client in this one; a 100 MiB file streamed from disk with `mw.storage.put` (sealed, coded
 *   4-of-6, spread over six nodes) and fetched back with `mw.storage.get` (checked against the
 *   file's sha-256). MB/s of the file's size. Baseline: raw libp2p stream throughput from this
 *   process to one of the nodes in the same run (100 MiB down one stream with backpressure, from a
 *   node started for it and stopped after), measured before the put and after the get, the mean of
 *   the two; ratio = value / baseline. Nothing is measured before the holders have been up 8 s
 *   (their start-up announcements over). A put sends N/K = 1.5 times the file's bytes. `cpuSeconds`:
 *   CPU time (user + system) the builder's process and the holders' spent on each transfer, the
 *   work it took, which other load on the machine does not change as it does throughput;
 *   `baselineCpuSeconds` the same for each of the two raw transfers.
 * - challengeVerify: storage proofs (a 16 KiB chunk and its Merkle path in a shard of 1,600 chunks)
 *   checked per second on one core.
 *
 * `npm run bench -- storage transfer` or `challenge` runs one part; with
 * `MESHWORK_BENCH_PROFILE=DIR`, each transfer's CPU profile is written there, the builder's and the
 * holders' apart.
 */
import '../src/core/polyfill.js'
import { fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { StreamMessageEvent } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { gridDisk, latLngToCell } from 'h3-js'
import { systemClock } from '../src/core/clock.js'
import { createLogger } from '../src/core/logger.js'
import { createMeshLibp2p, type MeshLibp2p } from '../src/mesh/create-libp2p.js'
import { createLibp2pPort } from '../src/mesh/libp2p-port.js'
import { createPeerSigner } from '../src/mesh/peer-key.js'
import { createWireCodec, networkIdOf } from '../src/mesh/wire-codec.js'
import { openNodeDatabase } from '../src/node/database.js'
import { NodeAgent } from '../src/node/node-agent.js'
import { Meshwork } from '../src/sdk/index.js'
import { buildChunkTree, verifyChunk } from '../src/storage/chunk-tree.js'
import { StorageService } from '../src/storage/holder.js'
import { STORAGE_MESSAGES } from '../src/storage/protocol.js'
import { syntheticNetworkFile } from '../test/helpers/synthetic-network.js'
import { report } from './report.js'

const BENCH = 'storage'
const NODES = 10
const FILE_MIB = 100
const RAW_PROTOCOL = '/meshwork-bench/raw/1'
const REGISTRY = '0x00000000000000000000000000000000000000b5'
const NET = networkIdOf({ chainId: 31337, contracts: { NodeRegistry: REGISTRY } })
const logger = createLogger({ level: 'silent' })
/**
 * The holders advertise as `meshwork node start` does by default (every 60 s, valid 300 s; they
 * repeat themselves 1, 3 and 7 s after start, and the client syncs the ads of its bootstrap peers
 * when it connects). Every 2 s, as before, ten nodes in one process spent a fifth to a third of
 * their CPU time on each other's ads during the transfers.
 */
const AD_REFRESH_MS = 60_000
/**
 * A node that starts announces itself again 1, 3 and 7 s later (the advertiser's warm-up). Ten nodes
 * doing so during a transfer had the holders' process spend about a tenth of its time on gossip
 * (their ads, each received, checked and forwarded by the other nine), which no holder does once it
 * has been up for a few seconds: the measurements start this long after the last holder started.
 */
const WARMUP_MS = 8_000
const mbps = (bytes: number, seconds: number) => Math.round((bytes / 1e6 / seconds) * 10) / 10

interface BenchNode {
  libp2p: MeshLibp2p
  stop(): Promise<void>
}

async function startNode(
  dir: string,
  cell: string,
  operator: number,
  bootstrap: string[],
): Promise<BenchNode> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await createMeshLibp2p({ privateKey: key, bootstrap, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const port = createLibp2pPort(libp2p)
  const db = openNodeDatabase(join(dir, 'node.db'))
  const signer = createPeerSigner(key)
  const storage = new StorageService(
    { network: NET, price: 0n, quotaBytes: 1024 * 2 ** 20, now: () => Date.now() },
    {
      signer,
      codec: createWireCodec({
        network: NET,
        signer,
        clock: systemClock,
        types: [...STORAGE_MESSAGES],
        nextSeq: (t) => db.nextSeq(t),
      }),
      logger,
    },
  )
  const agent = new NodeAgent(
    {
      network: NET,
      h3Cell: cell,
      tier: 'edge',
      version: 'bench',
      refreshMs: AD_REFRESH_MS,
      ttlMs: 300_000,
      dir,
    },
    {
      port,
      clock: systemClock,
      db,
      identity: {
        peerKey: key,
        peerId: libp2p.peerId.toString(),
        operatorAddress: `0x${operator.toString(16).padStart(40, '0')}`,
      },
      resources: { cores: 2, memoryMb: 4_096, diskFreeMb: 100_000, gpus: [] },
      logger,
      services: [storage],
      addresses: () => libp2p.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/[^/]+$/, '')),
    },
  )
  await agent.start()
  return {
    libp2p,
    stop: async () => {
      await agent.stop()
      await port.close()
      db.close()
    },
  }
}

/** 100 MiB of pseudo-random bytes on disk; returns its sha-256. */
function writeFile(path: string, bytes: number): string {
  const hash = createHash('sha256')
  const fd = openSync(path, 'w')
  let x = 1
  for (let at = 0; at < bytes; at += 1 << 20) {
    const block = Buffer.alloc(Math.min(1 << 20, bytes - at))
    for (let i = 0; i < block.length; i += 4) {
      x = (x * 1664525 + 1013904223) >>> 0
      block.writeUInt32LE(x, i)
    }
    writeSync(fd, block)
    hash.update(block)
  }
  closeSync(fd)
  return hash.digest('hex')
}

/** The baseline's receiving end: counts a stream's bytes and answers one byte once it has them all. */
async function sinkRaw(node: MeshLibp2p): Promise<void> {
  await node.handle(
    RAW_PROTOCOL,
    (stream) => {
      let received = 0
      let expected = -1
      stream.addEventListener('message', (event: StreamMessageEvent) => {
        const data = event.data.subarray()
        if (expected < 0) expected = new DataView(data.buffer, data.byteOffset, 8).getUint32(4)
        received += data.byteLength
        if (received >= expected + 8) {
          stream.send(Uint8Array.of(1))
          stream.close().catch(() => undefined)
        }
      })
    },
    { maxInboundStreams: 4 },
  )
}

/** Raw libp2p throughput: `bytes` down one stream to `addr` (64 KiB sends, waiting on drain), acknowledged. */
async function rawThroughput(from: MeshLibp2p, addr: string, bytes: number): Promise<number> {
  const connection = await from.dial(multiaddr(addr))
  const stream = await connection.newStream(RAW_PROTOCOL)
  const head = new Uint8Array(8)
  new DataView(head.buffer).setUint32(4, bytes)
  const chunk = new Uint8Array(64 * 1024).fill(7)
  const started = performance.now()
  const acked = new Promise<void>((resolve) =>
    stream.addEventListener('message', () => resolve(), { once: true }),
  )
  stream.send(head)
  for (let sent = 0; sent < bytes; sent += chunk.length) if (!stream.send(chunk)) await stream.onDrain()
  await acked
  const seconds = (performance.now() - started) / 1000
  await stream.close().catch(() => undefined)
  return seconds
}

const CHILD_FLAG = '--meshwork-storage-holders'

/**
 * With MESHWORK_BENCH_PROFILE=DIR, the CPU profile of each transfer, builder's and holders' apart
 * (`DIR/builder-put.cpuprofile`, `DIR/holders-get.cpuprofile`…), for Chrome's DevTools. Returns a
 * function that ends the phase being profiled (writing its profile) and starts the next (null: none).
 */
function phaseProfiler(): (phase: string | null) => Promise<void> {
  const dir = process.env.MESHWORK_BENCH_PROFILE
  if (dir === undefined || dir === '') return async () => {}
  const session = new Session()
  session.connect()
  let current: string | null = null
  return async (phase) => {
    if (current !== null) {
      const { profile } = await session.post('Profiler.stop')
      writeFileSync(join(dir, `${current}.cpuprofile`), JSON.stringify(profile))
    } else {
      await session.post('Profiler.enable')
    }
    current = phase
    if (phase !== null) await session.post('Profiler.start')
  }
}

/**
 * Child: the ten holders (and a raw-stream sink for the baseline), reporting their addresses over
 * IPC; they stop when the parent says so or its channel closes.
 */
async function holdersChild(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-bench-storage-'))
  const nodes: BenchNode[] = []
  const cells = gridDisk(latLngToCell(48.85, 2.35, 7), 2)
  for (let i = 0; i < NODES; i++) {
    const home = mkdtempSync(join(dir, `node-${i}-`))
    const bootstrap =
      nodes.length > 0 ? [(nodes[0] as BenchNode).libp2p.getMultiaddrs()[0]?.toString() as string] : []
    nodes.push(await startNode(home, cells[i] as string, 0xd0 + i, bootstrap))
  }
  await sinkRaw((nodes[1] as BenchNode).libp2p)
  const stop = async () => {
    for (const n of nodes.reverse()) await n.stop().catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  }
  const profiler = phaseProfiler()
  process.on('message', (m) => {
    if (m === 'stop') void stop()
    if (typeof m === 'object' && m !== null && 'profile' in m) {
      const phase = (m as { profile: string | null }).profile
      void profiler(phase === null ? null : `holders-${phase}`).then(() =>
        process.send?.({ profiled: phase }),
      )
    }
    // CPU time so far (user + system, µs), for the parent's CPU-seconds per transfer.
    if (m === 'cpu') {
      const { user, system } = process.cpuUsage()
      process.send?.({ cpu: user + system })
    }
  })
  process.on('disconnect', () => void stop())
  process.send?.({
    addrs: nodes.map((n) => n.libp2p.getMultiaddrs()[0]?.toString() as string),
    startedAt: Date.now(),
  })
}

async function transfer(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mw-bench-storage-'))
  // Holders in a child process (the other core), as they would be other machines; the builder here.
  const child = fork(fileURLToPath(import.meta.url), [CHILD_FLAG], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  let mw: Meshwork | undefined
  let raw: MeshLibp2p | undefined
  try {
    const { addrs, startedAt } = await new Promise<{ addrs: string[]; startedAt: number }>(
      (resolve, reject) => {
        child.once('message', (m) => resolve(m as { addrs: string[]; startedAt: number }))
        child.once('exit', (code) => reject(new Error(`the holders' process exited with ${code}`)))
      },
    )
    const networkPath = join(dir, 'network.json')
    writeFileSync(
      networkPath,
      JSON.stringify(
        syntheticNetworkFile({ name: 'bench-storage', registry: REGISTRY, bootstrap: addrs.slice(0, 3) }),
      ),
    )
    mw = await Meshwork.connect({ network: networkPath, connectTimeoutMs: 20_000 })
    const client = mw
    const deadline = Date.now() + 30_000
    while (client.ads().filter((a) => a.ad.services.some((s) => s.name === 'storage')).length < NODES) {
      if (Date.now() > deadline) throw new Error('the client did not hear every node')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const size = FILE_MIB * 2 ** 20
    const path = join(dir, 'file')
    const digest = writeFile(path, size)

    // CPU time (user + system) of this process and of the holders' during each transfer: the work
    // done, which other load on the machine does not change as it does throughput.
    const cpu = async () => {
      const holders = new Promise<number>((resolve) => {
        const on = (m: unknown) => {
          if (typeof m !== 'object' || m === null || !('cpu' in m)) return
          child.off('message', on)
          resolve((m as { cpu: number }).cpu)
        }
        child.on('message', on)
      })
      child.send('cpu')
      const { user, system } = process.cpuUsage()
      return { builder: user + system, holders: await holders }
    }
    const cpuSeconds = (from: { builder: number; holders: number }, to: typeof from) => ({
      builder: Math.round((to.builder - from.builder) / 1e4) / 100,
      holders: Math.round((to.holders - from.holders) / 1e4) / 100,
    })
    // Baseline: the same bytes down one raw libp2p stream from a node here to one of the holders.
    // Measured before the put and again after the get (the mean is the baseline, so that a change
    // in the machine's load during the run weighs on both sides of the ratio); the raw node is
    // stopped in between, so that it does no work of its own (peer discovery, DHT) during them.
    const rawCpu: ReturnType<typeof cpuSeconds>[] = []
    const measureRaw = async () => {
      raw = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [] })
      const c = await cpu()
      const seconds = await rawThroughput(raw, addrs[1] as string, size)
      rawCpu.push(cpuSeconds(c, await cpu()))
      await raw.stop()
      raw = undefined
      return mbps(size, seconds)
    }
    // The holders' start-up announcements over before anything is measured (see WARMUP_MS).
    const warm = startedAt + WARMUP_MS - Date.now()
    if (warm > 0) await new Promise((resolve) => setTimeout(resolve, warm))
    const before = await measureRaw()
    const profiler = phaseProfiler()
    const profile = async (phase: string | null) => {
      const holders = new Promise<void>((resolve) => {
        if (process.env.MESHWORK_BENCH_PROFILE === undefined) return resolve()
        const on = (m: unknown) => {
          if (typeof m !== 'object' || m === null || !('profiled' in m)) return
          child.off('message', on)
          resolve()
        }
        child.on('message', on)
        child.send({ profile: phase })
      })
      await Promise.all([profiler(phase === null ? null : `builder-${phase}`), holders])
    }
    await profile('put')
    const c0 = await cpu()
    let t = performance.now()
    const put = await client.storage.put(createReadStream(path, { highWaterMark: 1 << 20 }), { size })
    const putS = (performance.now() - t) / 1000
    const c1 = await cpu()
    await profile('get')
    const c1g = await cpu()
    t = performance.now()
    const hash = createHash('sha256')
    const got = await client.storage.get(put.id, put.key, { sink: (b) => void hash.update(b) })
    const getS = (performance.now() - t) / 1000
    const c2 = await cpu()
    await profile(null)
    if (got.bytes !== size || hash.digest('hex') !== digest) throw new Error('the file came back different')

    const after = await measureRaw()
    const baseline = Math.round(((before + after) / 2) * 10) / 10
    const put_ = mbps(size, putS)
    const get_ = mbps(size, getS)
    const common = {
      baseline,
      baselines: [before, after],
      baselineCpuSeconds: rawCpu,
      note: `${FILE_MIB} MiB file, 4-of-6 over ${NODES} nodes in a child process on loopback, the builder in this one (sealed, coded, chunk trees, receipts; get checks every segment); baseline: raw libp2p stream throughput from this process to one of the nodes, the mean of one measurement before the put and one after the get`,
    }
    report({
      bench: BENCH,
      metric: 'putMBps',
      value: put_,
      unit: 'MB/s',
      ...common,
      ratio: Math.round((put_ / baseline) * 1000) / 1000,
      target: 'ratio >= 0.3',
      cpuSeconds: cpuSeconds(c0, c1),
    })
    report({
      bench: BENCH,
      metric: 'getMBps',
      value: get_,
      unit: 'MB/s',
      ...common,
      ratio: Math.round((get_ / baseline) * 1000) / 1000,
      target: 'ratio >= 0.5',
      cpuSeconds: cpuSeconds(c1g, c2),
    })
  } finally {
    await mw?.close()
    await raw?.stop()
    child.send('stop')
    await new Promise((resolve) => child.once('exit', resolve))
    rmSync(dir, { recursive: true, force: true })
  }
}

function challenge(): void {
  const chunkBytes = 16 * 1024
  const shard = new Uint8Array(1_600 * chunkBytes)
  for (let i = 0; i < shard.length; i += 4096) shard[i] = i & 0xff
  const tree = buildChunkTree(shard, chunkBytes)
  const proofs = Array.from({ length: 2_000 }, (_, j) => {
    const index = (j * 7_919) % tree.count
    return {
      index,
      chunk: shard.subarray(index * chunkBytes, (index + 1) * chunkBytes),
      path: tree.path(index),
    }
  })
  const rounds: number[] = []
  for (let round = 0; round < 5; round++) {
    const t = performance.now()
    for (const p of proofs)
      if (!verifyChunk(tree.root, tree.count, p.index, p.chunk, p.path)) throw new Error('bad proof')
    rounds.push(proofs.length / ((performance.now() - t) / 1000))
  }
  const sorted = rounds.slice(1).sort((a, b) => a - b)
  report({
    bench: BENCH,
    metric: 'challengeVerify',
    value: Math.round(sorted[Math.floor(sorted.length / 2)] as number),
    unit: 'proofs/s',
    note: 'verifyChunk of a 16 KiB chunk and its 11-hash path (SHA-256) on one core; median of 4 rounds of 2,000',
  })
}

const PARTS = ['transfer', 'challenge'] as const

export async function run(args: string[] = []): Promise<void> {
  const unknown = args.filter((a) => !(PARTS as readonly string[]).includes(a))
  if (unknown.length > 0) throw new Error(`unknown part ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`)
  const wanted = (p: (typeof PARTS)[number]) => args.length === 0 || args.includes(p)
  if (wanted('challenge')) challenge()
  if (wanted('transfer')) await transfer()
}

if (process.argv.includes(CHILD_FLAG)) void holdersChild()
