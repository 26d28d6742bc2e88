/**
 * Sensor benchmarks: `npm run bench -- sensors`, or one part: `npm run bench -- sensors ingest`
 * (or `latency`, `pool`).
 *
 * - ingest: readings checked and scored per second by one verifier on one core: an hour of 36,000
 *   signed readings from 200 stations taken in (`SensorJudge.take`: decode, the device key's
 *   signature, the cached node certificate, registry and cell, a SQLite insert, written in batches
 *   of up to `READING_BATCH`), then the epoch judged (`SensorJudge.observations`, which writes the
 *   last batch first), both timed, per reading. `baseline` = raw node:crypto
 *   Ed25519 verifies per second (`crypto.verify(null, msg, key, sig)`) of a message of a reading's
 *   size, run in slices between the judge's work so that both see the same load; `ratio` =
 *   value / baseline, medians of 5 rounds. Also reports the intake alone (`readingsTaken`) and the
 *   scoring alone (`judgeEpoch`).
 * - latency (`readingP50` / `readingP99`): 10 libp2p nodes on 127.0.0.1 in this process: 6 run the
 *   node's sensor plugin (`SensorService`, the device key signing each reading), 3 verifiers follow
 *   the cells (`SensorJudge`), and a builder subscribes around Berlin (`subscribeSensors`, as
 *   `mw.sensors.subscribe` does). One reading at a time, from the moment the measurement is handed
 *   to the service until the builder's callback has it (checked and flagged), timed with
 *   `performance.now()` kept beside each reading's identity.
 * - pool (`sensorPool100k`): the sensor pool of the reward function with 100,000 sensors.
 */
import '../src/core/polyfill.js'
import { createPublicKey, verify } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { cellToParent, gridDisk, latLngToCell } from 'h3-js'
import { systemClock } from '../src/core/clock.js'
import { createLogger } from '../src/core/logger.js'
import type { NetworkPort } from '../src/mesh/network-port.js'
import { createPeerSigner, createPeerVerifier } from '../src/mesh/peer-key.js'
import { createWireCodec } from '../src/mesh/wire-codec.js'
import {
  computeEpochRewards,
  DEFAULT_REWARD_PARAMS,
  type RewardInput,
  type SensorObservation,
} from '../src/rewards/reward-function.js'
import { DeviceSigner, sensorCellOf } from '../src/sensors/device.js'
import { SENSOR_DEVICE, SENSOR_READING, type SensorKind, sensorTopic } from '../src/sensors/reading.js'
import { SensorService } from '../src/sensors/sensor-service.js'
import type { Measurement, SensorSource } from '../src/sensors/sources.js'
import { subscribeSensors } from '../src/sensors/subscriber.js'
import { simulatedWeather } from '../src/sensors/weather.js'
import type { RegistrySnapshot } from '../src/verifier/chain-port.js'
import { SensorJudge } from '../src/verifier/sensor-judge.js'
import { openVerifierStore, READING_BATCH, type VerifierStore } from '../src/verifier/store.js'
import { startMeshPort, tcpAddr, until } from '../test/helpers/live-node.js'
import { report } from './report.js'

const BENCH = 'sensors'
const NET = 'bench-net'
const ROUNDS = 5
const KINDS = ['temperature', 'humidity', 'pressure'] as const satisfies readonly SensorKind[]
const BERLIN = { lat: 52.52, lon: 13.4 }
const logger = createLogger({ level: 'silent' })

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN
}

// Ingest: one verifier's intake and scoring of an hour of readings

/** 200 registered nodes with one station each in the cells around Berlin, and an hour of their readings. */
async function signedHour(t0: number) {
  let now = t0
  const clock = { now: () => now }
  const registry: RegistrySnapshot = { nodes: [], verifiers: [] }
  const places = gridDisk(latLngToCell(BERLIN.lat, BERLIN.lon, 7), 12).slice(0, 200)
  const stations: { device: DeviceSigner; seed: number }[] = []
  for (const [i, cell] of places.entries()) {
    const nodeSigner = createPeerSigner(await generateKeyPair('Ed25519'))
    registry.nodes.push({
      peerId: nodeSigner.peerId,
      operator: `0x${(i + 1).toString(16).padStart(40, '0')}`,
      stake: 1n,
      registeredAt: 0,
      h3Cell: cell,
    })
    let seq = 0
    stations.push({
      seed: i,
      device: new DeviceSigner({
        network: NET,
        key: await generateKeyPair('Ed25519'),
        kinds: KINDS,
        cell: cellToParent(cell, 5),
        nodeCodec: createWireCodec({
          network: NET,
          signer: nodeSigner,
          clock,
          types: [SENSOR_DEVICE],
          nextSeq: () => ++seq,
        }),
        clock,
      }),
    })
  }
  // A reading a minute of each kind from each station: 36,000 signed readings.
  const readings: Uint8Array[] = []
  for (let m = 0; m < 60; m++) {
    now = t0 + m * 60_000
    for (const s of stations) {
      const w = simulatedWeather({ seed: s.seed, lat: BERLIN.lat, lon: BERLIN.lon })
      for (const kind of KINDS) readings.push(s.device.sign({ kind, value: w.read(kind, now), at: now }))
    }
  }
  return { registry, stations, readings, perMinute: stations.length * KINDS.length }
}

/** Readings taken between two slices of the baseline. */
const SLICE = 1_000

/**
 * Raw node:crypto Ed25519 (`crypto.verify(null, msg, key, sig)`) on `message`: `slice(n)` times `n`
 * verifies of it.
 */
async function rawVerifier(message: Uint8Array): Promise<{ slice(n: number): number }> {
  const key = await generateKeyPair('Ed25519')
  const publicKey = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), key.publicKey.raw]),
    format: 'der',
    type: 'spki',
  })
  const sig = createPeerSigner(key).sign(message)
  if (!verify(null, message, publicKey, sig)) throw new Error('the baseline key does not verify')
  return {
    slice(n) {
      const t = performance.now()
      for (let i = 0; i < n; i++) verify(null, message, publicKey, sig)
      return performance.now() - t
    },
  }
}

/**
 * One verifier with a fresh store takes every reading in, then judges the epoch. The baseline's
 * verifies run in slices between the judge's work (as many verifies after every {@link SLICE}
 * readings taken; after the judging, as many as fit in its time), so that both see the same load
 * on a shared machine. Times in ms; `verifyMs` is the baseline's time for one verify a reading.
 */
async function ingestRound(
  t0: number,
  hour: Awaited<ReturnType<typeof signedHour>>,
  baseline: { slice(n: number): number },
): Promise<{ takeMs: number; judgeMs: number; verifyMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sensors-'))
  const store = openVerifierStore(join(dir, 'v.db'))
  try {
    let received = t0
    const arrival = { now: () => received }
    const judge = new SensorJudge(
      { network: NET, place: BERLIN },
      {
        port: { subscribe: () => () => undefined },
        clock: arrival,
        store,
        codec: createWireCodec({
          network: NET,
          signer: createPeerSigner(await generateKeyPair('Ed25519')),
          clock: arrival,
          types: [SENSOR_READING],
          nextSeq: () => 1,
        }),
        verifier: createPeerVerifier(),
        logger,
        epochAt: () => 1,
        registryAt: () => hour.registry,
      },
    )
    const { readings, perMinute } = hour
    let takeMs = 0
    let verifyMs = 0
    for (let from = 0; from < readings.length; from += SLICE) {
      const to = Math.min(from + SLICE, readings.length)
      const t = performance.now()
      for (let i = from; i < to; i++) {
        // Each reading arrives a second after it was measured.
        received = t0 + Math.floor(i / perMinute) * 60_000 + 1_000
        judge.take(readings[i] as Uint8Array)
      }
      takeMs += performance.now() - t
      verifyMs += baseline.slice(to - from)
    }
    if (judge.counts.kept !== readings.length)
      throw new Error(`kept ${judge.counts.kept} of ${readings.length}`)
    const t = performance.now()
    const observations = judge.observations(1)
    const judgeMs = performance.now() - t
    if (observations.length !== hour.stations.length) throw new Error('a station was not judged')
    const extra = Math.round((judgeMs / verifyMs) * readings.length)
    const extraMs = baseline.slice(extra)
    return { takeMs, judgeMs, verifyMs: ((verifyMs + extraMs) * readings.length) / (readings.length + extra) }
  } finally {
    store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function ingestBench(): Promise<void> {
  const t0 = Date.UTC(2026, 5, 1, 12)
  const hour = await signedHour(t0)
  const n = hour.readings.length
  // The baseline's message: as long as a signed reading on the wire.
  const message = hour.readings[0] as Uint8Array
  const baseline = await rawVerifier(message)
  const rounds: { takeMs: number; judgeMs: number; verifyMs: number }[] = []
  for (let r = 0; r < ROUNDS; r++) rounds.push(await ingestRound(t0, hour, baseline))
  const perSecond = (ms: number) => n / (ms / 1000)
  const ingest = median(rounds.map((r) => perSecond(r.takeMs + r.judgeMs)))
  const taken = median(rounds.map((r) => perSecond(r.takeMs)))
  const verifies = median(rounds.map((r) => perSecond(r.verifyMs)))
  const roundRatios = rounds.map((r) => round(r.verifyMs / (r.takeMs + r.judgeMs)))
  const medianMs = (pick: (r: (typeof rounds)[number]) => number) => median(rounds.map(pick))
  report({
    bench: BENCH,
    metric: 'ingest',
    value: Math.round(ingest),
    unit: 'readings/s',
    baseline: Math.round(verifies),
    ratio: round(ingest / verifies),
    target: 'ratio >= 0.5',
    roundRatios,
    takeUsPerReading: round((medianMs((r) => r.takeMs) * 1000) / n, 1),
    judgeUsPerReading: round((medianMs((r) => r.judgeMs) * 1000) / n, 1),
    note: `one verifier on one core: ${n} signed readings (${hour.stations.length} stations, an hour) taken in (decode, device signature, cached certificate, registry and cell, SQLite insert batched by ${READING_BATCH}) and the epoch judged, per reading; baseline: raw node:crypto Ed25519 verifies of a ${message.byteLength}-byte message, run in slices between every ${SLICE} readings taken; medians of ${ROUNDS} rounds (roundRatios: each round's own ratio)`,
  })
  report({
    bench: BENCH,
    metric: 'readingsTaken',
    value: Math.round(taken),
    unit: 'readings/s',
    baseline: Math.round(verifies),
    ratio: round(taken / verifies),
    note: `the intake alone (SensorJudge.take), same rounds and baseline; median of ${ROUNDS}`,
  })
  report({
    bench: BENCH,
    metric: 'judgeEpoch',
    value: Math.round(medianMs((r) => r.judgeMs)),
    unit: 'ms',
    note: `scoring ${hour.stations.length} stations × ${n / hour.stations.length} readings (quality, neighbours in adjacent cells, probes) into observations; median of ${ROUNDS}`,
  })
}

// Latency: publish to a subscriber's callback on a 10-node loopback mesh

const PUBLISHERS = 6
const VERIFIERS = 3
const NODES = 1 + VERIFIERS + PUBLISHERS
const WARMUP_READINGS = 30
const READINGS = 300
const READING_TIMEOUT_MS = 2_000
const SETUP_TIMEOUT_MS = 30_000
const MEASURE_TIMEOUT_MS = 90_000
/** Where the publishing nodes are: around Berlin, within the builder's 25 km. */
const PUBLISHER_PLACES = [
  { lat: 52.52, lon: 13.4 },
  { lat: 52.45, lon: 13.3 },
  { lat: 52.56, lon: 13.55 },
  { lat: 52.42, lon: 13.5 },
  { lat: 52.6, lon: 13.26 },
  { lat: 52.5, lon: 13.62 },
] as const

/** A source the benchmark feeds by hand: each pushed measurement goes to the service at once. */
class PushSource implements SensorSource {
  readonly name = 'bench'
  readonly refused = 0
  readonly #queue: Measurement[] = []
  #wake: (() => void) | undefined

  push(m: Measurement): void {
    this.#queue.push(m)
    this.#wake?.()
  }

  async *measurements(signal?: AbortSignal): AsyncIterable<Measurement> {
    const onAbort = () => this.#wake?.()
    signal?.addEventListener('abort', onAbort)
    try {
      while (signal?.aborted !== true) {
        const m = this.#queue.shift()
        if (m !== undefined) {
          yield m
          continue
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve
        })
        this.#wake = undefined
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }
}

interface Publisher {
  port: NetworkPort
  cell: string
  topic: string
  device: string
  source: PushSource
  weather: ReturnType<typeof simulatedWeather>
  lastAt: number
}

async function latencyBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sensors-mesh-'))
  // Undone in reverse order at the end, whatever happens.
  const undo: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })]
  const started = performance.now()
  try {
    // The verifiers first: the others bootstrap from them, as from a network file's seeds.
    const verifierNodes: NetworkPort[] = []
    const seeds: string[] = []
    for (let i = 0; i < VERIFIERS; i++) {
      const node = await startMeshPort(await generateKeyPair('Ed25519'), [...seeds])
      undo.push(() => node.port.close())
      verifierNodes.push(node.port)
      seeds.push(tcpAddr(node.libp2p))
    }
    const builder = await startMeshPort(await generateKeyPair('Ed25519'), seeds)
    undo.push(() => builder.port.close())

    const registry: RegistrySnapshot = { nodes: [], verifiers: [] }
    const publishers: Publisher[] = []
    for (const [i, place] of PUBLISHER_PLACES.entries()) {
      const key = await generateKeyPair('Ed25519')
      const node = await startMeshPort(key, seeds)
      undo.push(() => node.port.close())
      const h3Cell = latLngToCell(place.lat, place.lon, 7)
      const cell = sensorCellOf(h3Cell)
      const source = new PushSource()
      let seq = 0
      const service = new SensorService(
        { network: NET, cell, sensors: [{ name: 'station', kinds: KINDS }], sources: [source] },
        {
          codec: createWireCodec({
            network: NET,
            signer: createPeerSigner(key),
            clock: systemClock,
            types: [SENSOR_DEVICE],
            nextSeq: () => ++seq,
          }),
        },
      )
      await service.start({ port: node.port, clock: systemClock, logger, dir: join(dir, `node-${i}`) })
      undo.push(() => service.stop())
      registry.nodes.push({
        peerId: node.port.peerId,
        operator: `0x${(i + 1).toString(16).padStart(40, '0')}`,
        stake: 1n,
        registeredAt: 0,
        h3Cell,
      })
      publishers.push({
        port: node.port,
        cell,
        topic: sensorTopic(NET, cell),
        device: service.devices().get('station') as string,
        source,
        weather: simulatedWeather({ seed: i, lat: place.lat, lon: place.lon }),
        lastAt: 0,
      })
    }

    const judges: SensorJudge[] = []
    for (const [i, port] of verifierNodes.entries()) {
      const store: VerifierStore = openVerifierStore(join(dir, `verifier-${i}.db`))
      undo.push(() => store.close())
      const judge = new SensorJudge(
        { network: NET, place: BERLIN },
        {
          port,
          clock: systemClock,
          store,
          codec: createWireCodec({
            network: NET,
            signer: createPeerSigner(await generateKeyPair('Ed25519')),
            clock: systemClock,
            types: [SENSOR_READING],
            nextSeq: () => 1,
          }),
          verifier: createPeerVerifier(),
          logger,
          epochAt: () => 1,
          registryAt: () => registry,
        },
      )
      judge.follow(registry)
      judges.push(judge)
      undo.push(() => judge.stop())
    }

    // The builder's subscription; latencies keyed by the reading's identity (device, kind, time).
    const sentAt = new Map<string, number>()
    let arrived: { key: string; resolve: (ms: number) => void } | undefined
    const identity = (device: string, kind: SensorKind, at: number) => `${device}|${kind}|${at}`
    const sub = subscribeSensors(
      {
        port: builder.port,
        codec: createWireCodec({
          network: NET,
          signer: createPeerSigner(await generateKeyPair('Ed25519')),
          clock: systemClock,
          types: [SENSOR_READING],
          nextSeq: () => 1,
        }),
        verifier: createPeerVerifier(),
        network: NET,
        now: () => Date.now(),
      },
      { near: BERLIN, radiusKm: 25 },
      (r) => {
        const now = performance.now()
        const key = identity(r.sensor, r.kind, r.at)
        const sent = sentAt.get(key)
        if (sent === undefined) return
        sentAt.delete(key)
        if (arrived?.key === key) arrived.resolve(now - sent)
      },
    )
    undo.push(() => sub.unsubscribe())
    for (const p of publishers)
      if (!sub.cells.includes(p.cell)) throw new Error(`the builder does not subscribe to ${p.topic}`)

    // The mesh is formed once every publisher has an open gossip stream to the builder and to
    // every verifier on its cell's topic.
    const followers = [builder.port.peerId, ...verifierNodes.map((v) => v.peerId)]
    await until(
      () =>
        publishers.every((p) => {
          const peers = p.port.topicPeers(p.topic)
          return followers.every((f) => peers.includes(f))
        }),
      SETUP_TIMEOUT_MS,
      100,
    )
    const setupMs = performance.now() - started

    /** Publishes one reading; resolves with its latency in ms, or undefined when it did not arrive. */
    const publishOne = async (k: number): Promise<number | undefined> => {
      const p = publishers[k % publishers.length] as Publisher
      const kind = KINDS[Math.floor(k / publishers.length) % KINDS.length] as (typeof KINDS)[number]
      p.lastAt = Math.max(p.lastAt + 1, Date.now())
      const key = identity(p.device, kind, p.lastAt)
      const latency = new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), READING_TIMEOUT_MS)
        arrived = {
          key,
          resolve: (ms) => {
            clearTimeout(timer)
            resolve(ms)
          },
        }
      })
      sentAt.set(key, performance.now())
      p.source.push({ sensor: 'station', kind, value: p.weather.read(kind, p.lastAt), at: p.lastAt })
      const ms = await latency
      arrived = undefined
      sentAt.delete(key)
      return ms
    }

    for (let k = 0; k < WARMUP_READINGS; k++) {
      await publishOne(k)
      await sleep(5)
    }
    const latencies: number[] = []
    let lost = 0
    const deadline = performance.now() + MEASURE_TIMEOUT_MS
    for (let k = 0; k < READINGS && performance.now() < deadline; k++) {
      const ms = await publishOne(WARMUP_READINGS + k)
      if (ms === undefined) lost++
      else latencies.push(ms)
      await sleep(5)
    }
    if (latencies.length === 0) throw new Error('no reading reached the builder')
    const common = {
      unit: 'ms',
      nodes: NODES,
      publishers: PUBLISHERS,
      verifiers: VERIFIERS,
      readings: latencies.length + lost,
      lost,
      dropped: sub.dropped(),
      /** Readings the verifier that kept the fewest kept (warm-up included): the gossip reached them too. */
      verifierKeptMin: Math.min(...judges.map((j) => j.counts.kept)),
      setupS: round(setupMs / 1000, 1),
    }
    const note = `${NODES} libp2p nodes on 127.0.0.1 in this process (one event loop): ${PUBLISHERS} with the sensor plugin, ${VERIFIERS} verifiers following the cells, one builder subscribed within 25 km; one reading at a time, from the measurement handed to SensorService (signed by its device key, gossiped) to the builder's subscribeSensors callback (checked, flagged), after ${WARMUP_READINGS} warm-up readings`
    report({
      bench: BENCH,
      metric: 'readingP50',
      value: round(percentile(latencies, 0.5)),
      ...common,
      note,
    })
    report({
      bench: BENCH,
      metric: 'readingP99',
      value: round(percentile(latencies, 0.99)),
      max: round(Math.max(...latencies)),
      target: '<= 50',
      ...common,
    })
  } finally {
    for (const step of undo.reverse()) {
      try {
        await step()
      } catch (err) {
        console.error('failed to clean up the sensor mesh:', err)
      }
    }
  }
}

// Pool: the reward function's sensor pool at scale

async function poolBench(): Promise<void> {
  // 100,000 sensors over 2,000 cells, three verifiers.
  const N = 100_000
  const cells = gridDisk(latLngToCell(48, 10, 5), 25).slice(0, 2_000)
  const nodes: RewardInput['nodes'][number][] = []
  const sensor: SensorObservation[] = []
  for (let i = 0; i < N; i++) {
    const peerId = `node-${String(i).padStart(6, '0')}`
    nodes.push({
      peerId,
      operator: `0x${(i + 1).toString(16).padStart(40, '0')}`,
      stake: 1n,
      registeredEpoch: 0,
    })
    for (const verifier of ['v-a', 'v-b', 'v-c'])
      sensor.push({
        verifier,
        node: peerId,
        cell: cells[i % cells.length] as string,
        probe: { rttMs: 5, distanceKm: 100 },
        sensors: [
          {
            device: `d-${i}`,
            since: i % 7,
            readings: 60,
            qualityPpm: 500_000 + ((i * 7919) % 500_000),
            agreementPpm: 1_000_000,
          },
        ],
      })
  }
  const poolTimes: number[] = []
  for (let r = 0; r < 3; r++) {
    const t = performance.now()
    const out = computeEpochRewards(
      { epoch: 10, emission: 10n ** 24n, nodes, verifiers: ['v-a', 'v-b', 'v-c'], uptime: [], sensor },
      DEFAULT_REWARD_PARAMS,
    )
    poolTimes.push(performance.now() - t)
    if (out.payouts.size !== cells.length * DEFAULT_REWARD_PARAMS.sensor.cellCapacity)
      throw new Error('capacity not applied')
  }
  report({
    bench: BENCH,
    metric: 'sensorPool100k',
    value: Math.round(median(poolTimes)),
    unit: 'ms',
    note: `computeEpochRewards with ${N} sensors in ${cells.length} cells (capacity ${DEFAULT_REWARD_PARAMS.sensor.cellCapacity}), 3 verifiers; median of 3`,
  })
}

/** The parts of this benchmark, in the order they run; `npm run bench -- sensors PART…` runs some. */
const PARTS = ['ingest', 'latency', 'pool'] as const

export async function run(args: string[] = []): Promise<void> {
  const unknown = args.filter((a) => !(PARTS as readonly string[]).includes(a))
  if (unknown.length > 0) throw new Error(`unknown part ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`)
  const wanted = (part: (typeof PARTS)[number]) => args.length === 0 || args.includes(part)
  if (wanted('ingest')) await ingestBench()
  if (wanted('latency')) await latencyBench()
  if (wanted('pool')) await poolBench()
}
