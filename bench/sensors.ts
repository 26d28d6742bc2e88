/**
 * Sensor benchmarks: how fast a verifier takes in readings (decode, the device key's signature, the
 * node certificate, the registry and cell checks, a SQLite insert), against the bare Ed25519
 * verification every reading needs; how long judging an epoch of many sensors takes; and the sensor
 * pool of the reward function at scale. `npm run bench -- sensors`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { cellToParent, gridDisk, latLngToCell } from 'h3-js'
import { createLogger } from '../src/core/logger.js'
import { createPeerSigner, createPeerVerifier } from '../src/mesh/peer-key.js'
import { createWireCodec } from '../src/mesh/wire-codec.js'
import {
  computeEpochRewards,
  DEFAULT_REWARD_PARAMS,
  type RewardInput,
  type SensorObservation,
} from '../src/rewards/reward-function.js'
import { DeviceSigner } from '../src/sensors/device.js'
import { SENSOR_DEVICE, SENSOR_READING } from '../src/sensors/reading.js'
import { simulatedWeather } from '../src/sensors/weather.js'
import type { RegistrySnapshot } from '../src/verifier/chain-port.js'
import { SensorJudge } from '../src/verifier/sensor-judge.js'
import { openVerifierStore } from '../src/verifier/store.js'
import { report } from './report.js'

const BENCH = 'sensors'
const NET = 'bench-net'
const ROUNDS = 3
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number

export async function run(): Promise<void> {
  const T0 = Date.UTC(2026, 5, 1, 12)
  let now = T0
  const clock = { now: () => now }
  // 200 nodes with one station each, in the cells around Berlin.
  const registry: RegistrySnapshot = { nodes: [], verifiers: [] }
  const home = latLngToCell(52.52, 13.4, 7)
  const places = gridDisk(home, 12).slice(0, 200)
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
        kinds: ['temperature', 'humidity', 'pressure'],
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
  // An hour of readings a minute from each: 36,000 signed readings.
  const readings: Uint8Array[] = []
  for (let m = 0; m < 60; m++) {
    now = T0 + m * 60_000
    for (const s of stations) {
      const w = simulatedWeather({ seed: s.seed, lat: 52.5, lon: 13.4 })
      for (const kind of ['temperature', 'humidity', 'pressure'] as const)
        readings.push(s.device.sign({ kind, value: w.read(kind, now), at: now }))
    }
  }

  let received = T0
  const arrival = { now: () => received }
  const takeRates: number[] = []
  const judgeTimes: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-sensors-'))
    const store = openVerifierStore(join(dir, 'v.db'))
    const judge = new SensorJudge(
      { network: NET, place: { lat: 52.52, lon: 13.4 } },
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
        logger: createLogger({ level: 'silent' }),
        epochAt: () => 1,
        registryAt: () => registry,
      },
    )
    let t = performance.now()
    const perMinute = stations.length * 3
    for (const [i, r] of readings.entries()) {
      // Each reading arrives a second after it was measured.
      received = T0 + Math.floor(i / perMinute) * 60_000 + 1_000
      judge.take(r)
    }
    takeRates.push(readings.length / ((performance.now() - t) / 1000))
    if (judge.counts.kept !== readings.length)
      throw new Error(`kept ${judge.counts.kept} of ${readings.length}`)
    t = performance.now()
    const observations = judge.observations(1)
    judgeTimes.push(performance.now() - t)
    if (observations.length !== stations.length) throw new Error('a station was not judged')
    store.close()
    rmSync(dir, { recursive: true, force: true })
  }

  // Baseline: the bare Ed25519 check of a reading's device signature, as the codec makes it.
  const verifier = createPeerVerifier()
  const probe = JSON.parse(new TextDecoder().decode(readings[0]))
  const signer = createPeerSigner(await generateKeyPair('Ed25519'))
  const message = new TextEncoder().encode(JSON.stringify(probe.body))
  const sig = signer.sign(message)
  const verifyRates: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const t = performance.now()
    for (let i = 0; i < readings.length; i++) verifier.verify(signer.peerId, message, sig)
    verifyRates.push(readings.length / ((performance.now() - t) / 1000))
  }
  const take = median(takeRates)
  const baseline = median(verifyRates)
  report({
    bench: BENCH,
    metric: 'readingsTaken',
    value: Math.round(take),
    unit: 'readings/s',
    baseline: Math.round(baseline),
    ratio: Math.round((take / baseline) * 100) / 100,
    note: `a verifier's intake of ${readings.length} signed readings (decode, device signature, cached certificate, registry and cell, SQLite insert) vs one bare Ed25519 verify each; median of ${ROUNDS}`,
  })
  report({
    bench: BENCH,
    metric: 'judgeEpoch',
    value: Math.round(median(judgeTimes)),
    unit: 'ms',
    note: `scoring ${stations.length} stations × 180 readings (quality, neighbours in adjacent cells, probes) into observations; median of ${ROUNDS}`,
  })

  // The reward function's sensor pool: 100,000 sensors over 2,000 cells, three verifiers.
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
  for (let round = 0; round < ROUNDS; round++) {
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
    note: `computeEpochRewards with ${N} sensors in ${cells.length} cells (capacity ${DEFAULT_REWARD_PARAMS.sensor.cellCapacity}), 3 verifiers; median of ${ROUNDS}`,
  })
}
