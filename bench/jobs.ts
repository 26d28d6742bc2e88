/**
 * Jobs: `npm run bench -- jobs`. Ten nodes on loopback (real libp2p, in this process, each with its
 * compute service and a one-worker sandbox pool) and one client:
 *
 * - wasmP50 / wasmP99: submit to checked, signed result of a tiny WASM job (the module cached on the
 *   node after its first run), round robin over the nodes, one at a time; `baseline` = a bare
 *   request/response echo of the same size over the same ports, `ratio` = value / baseline.
 * - jsP50 / jsP99: the same for a tiny QuickJS job.
 * - localP50: the same WASM job through a local sandbox pool, without the network (reference).
 * - jobsPerSecond: 500 WASM jobs, 20 in flight, spread over the ten nodes.
 *
 * Placement runs once (quotes from every node) and is not in the round trip: a client places a
 * stream of jobs once and reuses the quotes while they are valid.
 */
import '../src/core/polyfill.js'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import wabt from 'wabt'
import { ComputeService, runJob } from '../src/compute/job-protocol.js'
import { type JobKind, type JobSpec, parseJobSpec } from '../src/compute/job-spec.js'
import { SandboxPool } from '../src/compute/sandbox-pool.js'
import { tinyClassifierModel } from '../src/compute/tiny-model.js'
import { systemClock } from '../src/core/clock.js'
import { createLogger } from '../src/core/logger.js'
import { createMeshLibp2p, type MeshLibp2p } from '../src/mesh/create-libp2p.js'
import { createLibp2pPort } from '../src/mesh/libp2p-port.js'
import type { NetworkPort } from '../src/mesh/network-port.js'
import { createPeerSigner, createPeerVerifier } from '../src/mesh/peer-key.js'
import { report } from './report.js'

const BENCH = 'jobs'
const NET = '31337:0x00000000000000000000000000000000000000b3'
const NODES = 10
const ROUNDS = 400
const BURST = 500
const IN_FLIGHT = 20
const ECHO = '/meshwork/bench-echo/1'

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits
function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN
}

/** A job that returns its input with every byte plus one (the job ABI of docs/protocol.md). */
async function incrementModule(): Promise<Uint8Array> {
  const w = await wabt()
  const parsed = w.parseWat(
    'increment.wat',
    `(module
  (import "env" "memory" (memory 1))
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "run") (param $in i32) (param $len i32) (result i32)
    (local $i i32) (local $out i32)
    (local.set $out (i32.add (local.get $in) (local.get $len)))
    (i32.store (local.get $out) (local.get $len))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (i32.store8 (i32.add (i32.add (local.get $out) (i32.const 4)) (local.get $i))
        (i32.add (i32.load8_u (i32.add (local.get $in) (local.get $i))) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (local.get $out)))`,
  )
  const { buffer } = parsed.toBinary({})
  parsed.destroy()
  return new Uint8Array(buffer)
}

function spec(kind: JobKind, code: Uint8Array, input: Uint8Array): JobSpec {
  return parseJobSpec({
    v: 1,
    id: randomBytes(16).toString('hex'),
    kind,
    code: { inline: Buffer.from(code).toString('base64') },
    input: { inline: Buffer.from(input).toString('base64') },
    limits: { timeMs: 1_000, memoryMb: 16 },
    deadline: Date.now() + 60_000,
    maxPrice: '1000',
  })
}

export async function run(_args: string[] = []): Promise<void> {
  const logger = createLogger({ level: 'silent' })
  const nodes: { libp2p: MeshLibp2p; port: NetworkPort; pool: SandboxPool }[] = []
  const stops: (() => Promise<void>)[] = []
  try {
    for (let i = 0; i < NODES; i++) {
      const key = await generateKeyPair('Ed25519')
      const libp2p = await createMeshLibp2p({
        privateKey: key,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: nodes[0] ? [nodes[0].libp2p.getMultiaddrs()[0]?.toString() as string] : [],
      })
      const port = createLibp2pPort(libp2p, { logger })
      const pool = new SandboxPool({ size: 1 })
      const service = new ComputeService(
        { network: NET, price: 10n, now: () => Date.now() },
        { pool, signer: createPeerSigner(key) },
      )
      await service.start({ port, clock: systemClock, logger, dir: '/tmp' })
      port.handle(ECHO, async (request) => request)
      nodes.push({ libp2p, port, pool })
      stops.push(async () => {
        await service.stop()
        await pool.close()
        await port.close()
      })
    }
    const clientLibp2p = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [] })
    const client = createLibp2pPort(clientLibp2p, { logger })
    stops.push(() => client.close())
    const peers = nodes.map((n) => n.libp2p.peerId.toString())
    for (const n of nodes) {
      // A loaded machine may reset a first dial: try again.
      for (let attempt = 0; ; attempt++) {
        try {
          await clientLibp2p.dial(n.libp2p.getMultiaddrs()[0] as never)
          break
        } catch (err) {
          if (attempt >= 4) throw err
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }
    }
    const options = { network: NET, verifier: createPeerVerifier() }

    const wasm = await incrementModule()
    const js = new TextEncoder().encode('(x) => x + 1')
    const wasmInput = new Uint8Array([1, 2, 3, 4])
    const jsInput = new TextEncoder().encode('41')
    const model = tinyClassifierModel()
    const feeds = new TextEncoder().encode(
      JSON.stringify({ x: { type: 'float32', dims: [1, 4], data: [0.5, -1, 2, 0.25] } }),
    )
    const onnx = nodes[0]?.pool.kinds.includes('onnx') ?? false
    // Warm-up: every node compiles the module and starts its worker and QuickJS.
    for (const peer of peers) {
      await runJob(client, peer, spec('wasm', wasm, wasmInput), options)
      await runJob(client, peer, spec('js', js, jsInput), options)
      if (onnx) await runJob(client, peer, spec('onnx', model, feeds), options)
    }
    const echoBytes = new TextEncoder().encode(JSON.stringify(spec('wasm', wasm, wasmInput)))
    const timed = async (kind: JobKind | 'echo'): Promise<number[]> => {
      const out: number[] = []
      for (let i = 0; i < ROUNDS; i++) {
        const peer = peers[i % peers.length] as string
        const job =
          kind === 'js'
            ? spec('js', js, jsInput)
            : kind === 'onnx'
              ? spec('onnx', model, feeds)
              : spec('wasm', wasm, wasmInput)
        const t = performance.now()
        if (kind === 'echo') await client.request(peer, ECHO, echoBytes)
        else await runJob(client, peer, job, options)
        out.push(performance.now() - t)
      }
      return out
    }
    const echo = await timed('echo')
    const wasmTimes = await timed('wasm')
    const jsTimes = await timed('js')
    const echoP50 = percentile(echo, 0.5)
    const echoP99 = percentile(echo, 0.99)
    const w50 = percentile(wasmTimes, 0.5)
    report({
      bench: BENCH,
      metric: 'wasmP50',
      value: round(w50),
      unit: 'ms',
      baseline: round(echoP50),
      ratio: round(w50 / echoP50),
      target: '<= 5 ms, ratio <= 3',
      note: `${ROUNDS} jobs round robin over ${NODES} nodes; baseline = bare request/response echo of the job spec's size`,
    })
    report({
      bench: BENCH,
      metric: 'wasmP99',
      value: round(percentile(wasmTimes, 0.99)),
      unit: 'ms',
      baseline: round(echoP99),
      ratio: round(percentile(wasmTimes, 0.99) / echoP99),
      target: '<= 20 ms',
    })
    const j50 = percentile(jsTimes, 0.5)
    report({
      bench: BENCH,
      metric: 'jsP50',
      value: round(j50),
      unit: 'ms',
      baseline: round(echoP50),
      ratio: round(j50 / echoP50),
    })
    report({ bench: BENCH, metric: 'jsP99', value: round(percentile(jsTimes, 0.99)), unit: 'ms' })
    if (onnx) {
      const onnxTimes = await timed('onnx')
      const o50 = percentile(onnxTimes, 0.5)
      report({
        bench: BENCH,
        metric: 'onnxP50',
        value: round(o50),
        unit: 'ms',
        baseline: round(echoP50),
        ratio: round(o50 / echoP50),
        note: 'a 4-8-3 classifier on onnxruntime-node (CPU, one thread), session cached on each node',
      })
      report({ bench: BENCH, metric: 'onnxP99', value: round(percentile(onnxTimes, 0.99)), unit: 'ms' })
    }

    // The same job without the network.
    const local = new SandboxPool({ size: 1 })
    stops.push(() => local.close())
    const limits = { timeMs: 1_000, memoryMb: 16, outputBytes: 1_024 }
    await local.run({ kind: 'wasm', code: wasm, input: wasmInput, limits })
    const localTimes: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      const t = performance.now()
      await local.run({ kind: 'wasm', code: wasm, input: wasmInput, limits })
      localTimes.push(performance.now() - t)
    }
    report({
      bench: BENCH,
      metric: 'localP50',
      value: round(percentile(localTimes, 0.5), 3),
      unit: 'ms',
      note: 'the WASM job through a local sandbox pool (worker thread), no network',
    })

    // Throughput: a burst spread over the nodes.
    let next = 0
    let done = 0
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < BURST) {
          const i = next++
          await runJob(client, peers[i % peers.length] as string, spec('wasm', wasm, wasmInput), options)
          done++
        }
      }),
    )
    const seconds = (performance.now() - t0) / 1000
    report({
      bench: BENCH,
      metric: 'jobsPerSecond',
      value: round(done / seconds, 1),
      unit: 'jobs/s',
      note: `${BURST} WASM jobs, ${IN_FLIGHT} in flight, ${NODES} nodes with one sandbox each, one 2-core machine`,
    })
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined)
  }
}
