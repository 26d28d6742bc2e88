import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { cellToChildren, cellToParent, latLngToCell } from 'h3-js'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../core/logger.js'
import { createPeerSigner, createPeerVerifier } from '../mesh/peer-key.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import {
  computeEpochRewards,
  DEFAULT_REWARD_PARAMS,
  type RewardInput,
  type RewardParams,
} from '../rewards/reward-function.js'
import { DeviceSigner } from '../sensors/device.js'
import { type MakerCertificate, signMakerCertificate } from '../sensors/maker.js'
import { SENSOR_DEVICE, SENSOR_READING } from '../sensors/reading.js'
import { simulatedWeather } from '../sensors/weather.js'
import { buildBundle, checkBundle } from './bundle.js'
import type { RegistrySnapshot } from './chain-port.js'
import { MAX_SENSORS_PER_NODE, SENSOR_OBSERVATION } from './observation.js'
import { SensorJudge } from './sensor-judge.js'
import { openVerifierStore, type VerifierStore } from './store.js'

const T0 = Date.UTC(2026, 5, 1, 12)
const BERLIN = { lat: 52.52, lon: 13.4 }
const LISBON = { lat: 38.72, lon: -9.14 }
const NET = 'test-net'
const MESH = 10n ** 18n
const op = (i: number) => `0x${(i + 1).toString(16).padStart(40, '0')}` as `0x${string}`

const dirs: string[] = []
const stores: VerifierStore[] = []
afterEach(() => {
  for (const s of stores.splice(0)) s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A verifier's sensor judge on a real store, and nodes with certified sensors that it hears. */
async function setup(options: { place?: { lat: number; lon: number } } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sensor-judge-'))
  dirs.push(dir)
  const path = join(dir, 'verifier.db')
  const store = openVerifierStore(path)
  stores.push(store)
  let now = T0
  const clock = { now: () => now }
  const registry: RegistrySnapshot = { nodes: [], verifiers: [] }
  const codec = createWireCodec({
    network: NET,
    signer: createPeerSigner(await generateKeyPair('Ed25519')),
    clock,
    types: [SENSOR_READING],
    nextSeq: () => 1,
  })
  // The hardware maker that governance approves in these tests: it certifies every station's device.
  const maker = createPeerSigner(await generateKeyPair('Ed25519'))
  const subscribed: string[] = []
  const judge = new SensorJudge(
    { network: NET, ...(options.place ? { place: options.place } : {}) },
    {
      port: {
        subscribe: (topic) => {
          subscribed.push(topic)
          return () => undefined
        },
      },
      clock,
      store,
      codec,
      verifier: createPeerVerifier(),
      logger: createLogger({ level: 'silent' }),
      epochAt: () => 5,
      // A new snapshot each time (as epochs bring): the test changes the registry as it goes.
      registryAt: () => ({ ...registry, nodes: [...registry.nodes] }),
    },
  )
  /**
   * A node at `place` (registered at `claim`, by default the same) with one station, its device
   * certified by the approved maker unless `certify` says otherwise (undefined: no certificate).
   */
  async function station(
    place: { lat: number; lon: number },
    opts: {
      claim?: { lat: number; lon: number }
      certify?: (device: string) => MakerCertificate | undefined
    } = {},
  ) {
    const nodeSigner = createPeerSigner(await generateKeyPair('Ed25519'))
    const claim = opts.claim ?? place
    const i = registry.nodes.length
    registry.nodes.push({
      peerId: nodeSigner.peerId,
      operator: op(i),
      stake: 1_000n * MESH,
      registeredAt: 0,
      h3Cell: latLngToCell(claim.lat, claim.lon, 7),
    })
    let seq = 0
    const key = await generateKeyPair('Ed25519')
    const id = createPeerSigner(key).peerId
    const certificate =
      opts.certify === undefined ? signMakerCertificate(maker, id, 'WS-2000') : opts.certify(id)
    const device = new DeviceSigner({
      network: NET,
      key,
      ...(certificate === undefined ? {} : { maker: certificate }),
      kinds: ['temperature', 'humidity', 'pressure'],
      cell: cellToParent(latLngToCell(claim.lat, claim.lon, 7), 5),
      nodeCodec: createWireCodec({
        network: NET,
        signer: nodeSigner,
        clock,
        types: [SENSOR_DEVICE],
        nextSeq: () => ++seq,
      }),
      clock,
    })
    return {
      peerId: nodeSigner.peerId,
      nodeSigner,
      key,
      operator: op(i),
      device,
      weather: simulatedWeather({ seed: i + 1, lat: place.lat, lon: place.lon }),
    }
  }
  type Station = Awaited<ReturnType<typeof station>>
  /**
   * `minutes` of readings from every station, one a minute, each received right away; `tamper`
   * changes what a station reports.
   */
  function run(
    stations: Station[],
    minutes: number,
    tamper: (s: Station, kind: string, value: number, minute: number) => number = (_s, _k, v) => v,
  ) {
    for (let m = 0; m < minutes; m++) {
      now = T0 + m * 60_000
      for (const s of stations)
        for (const kind of ['temperature', 'humidity', 'pressure'] as const) {
          const value = tamper(s, kind, s.weather.read(kind, now), m)
          const verdict = judge.take(s.device.sign({ kind, value, at: now }))
          expect(verdict, JSON.stringify(judge.counts.dropped)).toBe('accept')
        }
    }
  }
  /** The sensor pool's payouts from this judge's observations of epoch 5. */
  function rewards(params: Partial<RewardParams['sensor']> = {}) {
    judge.follow(registry)
    const observations = judge.observations(5)
    const input: RewardInput = {
      epoch: 5,
      emission: 1_000n * MESH,
      nodes: registry.nodes.map((n) => ({
        peerId: n.peerId,
        operator: n.operator,
        stake: n.stake,
        registeredEpoch: 0,
      })),
      verifiers: ['verifier-1'],
      uptime: [],
      sensor: observations.map((o) => ({ verifier: 'verifier-1', ...o })),
    }
    const out = computeEpochRewards(input, {
      ...DEFAULT_REWARD_PARAMS,
      sensor: { ...DEFAULT_REWARD_PARAMS.sensor, ...params },
      hardware: { makers: [maker.peerId], linearBps: 5_000 },
    })
    return { out, observations, pay: (operator: string) => out.payouts.get(operator) ?? 0n }
  }
  return {
    judge,
    maker,
    store,
    path,
    registry,
    station,
    run,
    rewards,
    subscribed,
    setNow: (ms: number) => (now = ms),
  }
}

describe('sensor judge', () => {
  it('scores honest stations high and a stuck, out-of-bounds or far-off one low, and pays them so', async () => {
    const t = await setup()
    const honest = await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) => t.station({ lat: BERLIN.lat + i * 0.01, lon: BERLIN.lon })),
    )
    const stuck = await t.station(BERLIN)
    const wild = await t.station(BERLIN)
    const far = await t.station(BERLIN)
    t.run([...honest, stuck, wild, far], 30, (s, kind, v, m) => {
      if (s === stuck && kind === 'temperature') return 12
      if (s === wild && kind === 'temperature') return m % 2 === 0 ? 75 : -95
      if (s === far && kind === 'temperature') return v + 25
      return v
    })
    const { out, observations, pay } = t.rewards({ cellCapacity: 20 })
    const score = (peerId: string) => observations.find((o) => o.node === peerId)?.sensors[0]
    for (const h of honest) expect(score(h.peerId)?.qualityPpm).toBeGreaterThan(900_000)
    expect(score(stuck.peerId)).toMatchObject({
      qualityPpm: 0,
      summary: expect.stringMatching(/temperature: stuck/),
    })
    expect(score(wild.peerId)?.qualityPpm).toBe(0)
    expect(score(far.peerId)).toMatchObject({
      summary: expect.stringMatching(/temperature: far from its neighbours/),
    })
    expect(score(far.peerId)?.qualityPpm).toBeLessThan(100_000)
    const good = pay(honest[0]?.operator as string)
    expect(good).toBeGreaterThan(0n)
    for (const bad of [stuck, wild, far]) expect(pay(bad.operator) * 10n).toBeLessThan(good)
    // Honest stations are paid alike (their scores differ a little), and all of the pool is paid out.
    for (const h of honest) expect(pay(h.operator) * 10n).toBeGreaterThan(good * 9n)
    expect(out.pools.sensor).toBe(1_000n * MESH)
    expect(out.sensor.find((s) => s.peerId === stuck.peerId)?.sensors[0]?.reason).toBe('no usable data')
  })

  it('gives location confidence 0 to a node claiming a cell 2,000 km from where its round trips place it', async () => {
    const t = await setup({ place: BERLIN })
    const honest = await Promise.all(
      [0, 1, 2].map((i) => t.station({ lat: BERLIN.lat, lon: BERLIN.lon + i * 0.02 })),
    )
    // Really in Berlin (2 ms from the verifier), claiming Lisbon, about 2,300 km away.
    const spoofer = await t.station(BERLIN, { claim: LISBON })
    // An honest node in Lisbon, 30 ms away: consistent.
    const lisbon = await t.station(LISBON)
    const rtt = new Map([
      ...honest.map((h) => [h.peerId, 2] as const),
      [spoofer.peerId, 2],
      [lisbon.peerId, 30],
    ])
    for (const [node, rttMs] of rtt)
      t.store.recordChallenge({ epoch: 5, node, slot: 0, at: T0, outcome: 'answered', rttMs })
    t.run([...honest, spoofer, lisbon], 20)
    const { out, observations, pay } = t.rewards()
    const probe = observations.find((o) => o.node === spoofer.peerId)?.probe
    expect(probe?.rttMs).toBe(2)
    expect(probe?.distanceKm).toBeGreaterThan(2_000)
    const explained = out.sensor.find((s) => s.peerId === spoofer.peerId)
    expect(explained?.impossible).toEqual([
      { verifier: 'verifier-1', rttMs: 2, distanceKm: probe?.distanceKm, maxKm: 200 },
    ])
    expect(explained?.sensors[0]).toMatchObject({ locationPpm: 0, scorePpm: 0, paid: false })
    expect(pay(spoofer.operator)).toBe(0n)
    // The honest ones are probed and possible: location confidence is their agreement.
    for (const h of [...honest, lisbon]) {
      const e = out.sensor.find((s) => s.peerId === h.peerId)
      expect(e?.impossible).toEqual([])
      expect(e?.sensors[0]?.locationPpm).toBeGreaterThan(0)
      expect(e?.sensors[0]?.locationPpm).toBe(e?.sensors[0]?.agreementPpm)
      expect(pay(h.operator)).toBeGreaterThan(0n)
    }
  })

  it('pays only the best 10 of 20 sensors in a cell with capacity 10, the rest told why', async () => {
    const t = await setup()
    const stations = await Promise.all(Array.from({ length: 20 }, () => t.station(BERLIN)))
    t.run(stations, 15)
    const { out } = t.rewards({ cellCapacity: 10 })
    const sensors = out.sensor.flatMap((e) => e.sensors)
    expect(sensors).toHaveLength(20)
    expect(sensors.filter((s) => s.paid)).toHaveLength(10)
    expect(out.payouts.size).toBe(10)
    const unpaid = sensors.filter((s) => !s.paid)
    for (const s of unpaid) expect(s.reason).toMatch(/over the cell's capacity: rank (1[1-9]|20) of 20/)
    // Ranked by score: no unpaid sensor scores above a paid one.
    const lowestPaid = Math.min(...sensors.filter((s) => s.paid).map((s) => s.scorePpm))
    for (const s of unpaid) expect(s.scorePpm).toBeLessThanOrEqual(lowestPaid)
  })

  it('never throws on hostile readings and keeps none that was tampered with (property)', async () => {
    const t = await setup()
    const a = await t.station(BERLIN)
    const fields = [
      'kind',
      'value',
      'unit',
      'at',
      'cell',
      'device',
      'from',
      'seq',
      'ts',
      'exp',
      'sig',
      'net',
      'type',
    ]
    const junk = fc.oneof(
      fc.constant(null),
      fc.string({ maxLength: 40 }),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.array(fc.integer(), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 8 }), fc.integer(), { maxKeys: 3 }),
    )
    let minute = 0
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        junk,
        fc.uint8Array({ maxLength: 64 }),
        (field, value, bytes) => {
          minute++
          const envelope = JSON.parse(
            new TextDecoder().decode(a.device.sign({ kind: 'temperature', value: 20, at: T0 + minute })),
          )
          if (field in envelope) envelope[field] = value
          else if (field === 'device') envelope.body.device = value
          else envelope.body[field] = value
          expect(['accept', 'ignore', 'reject']).toContain(
            t.judge.take(new TextEncoder().encode(JSON.stringify(envelope))),
          )
          expect(['ignore', 'reject']).toContain(t.judge.take(bytes))
        },
      ),
      { numRuns: 300 },
    )
    const kept = t.judge.counts.kept
    // Every kept reading is one the device really signed: the store holds only value 20.
    const held = t.store.readingsOf(5).get(a.device.device)?.readings ?? []
    expect(held.length).toBe(kept)
    for (const r of held) expect(r.value).toBe(20)
  })

  it('drops replayed, unregistered and misplaced readings, and counts them', async () => {
    const t = await setup()
    const [a] = await Promise.all([t.station(BERLIN)])
    const reading = a?.device.sign({ kind: 'temperature', value: 20, at: T0 }) as Uint8Array
    expect(t.judge.take(reading)).toBe('accept')
    expect(t.judge.take(reading)).toBe('ignore')
    expect(t.judge.counts.dropped.undecodable).toBe(1)
    // A node that left the registry.
    const gone = await t.station(BERLIN)
    t.registry.nodes.pop()
    expect(t.judge.take(gone.device.sign({ kind: 'temperature', value: 20, at: T0 }))).toBe('reject')
    expect(t.judge.counts.dropped.unregistered_node).toBe(1)
    // A node registered in Berlin whose certificate claims Lisbon.
    const liar = await t.station(BERLIN, { claim: LISBON })
    const node = t.registry.nodes.at(-1)
    if (node) node.h3Cell = latLngToCell(BERLIN.lat, BERLIN.lon, 7)
    expect(t.judge.take(liar.device.sign({ kind: 'temperature', value: 20, at: T0 }))).toBe('reject')
    expect(t.judge.counts.dropped.cell_mismatch).toBe(1)
    // Garbage never throws.
    expect(t.judge.take(new TextEncoder().encode('{"v":1}'))).toBe('reject')
    expect(t.judge.counts.kept).toBe(1)
    // It follows the coarse cells of registered nodes.
    t.judge.follow(t.registry)
    const coarse = cellToParent(latLngToCell(BERLIN.lat, BERLIN.lon, 7), 5)
    expect(t.subscribed).toEqual([`meshwork/${NET}/sensors/${coarse}/1`])
    expect(cellToChildren(coarse, 7)).toContain(t.registry.nodes[0]?.h3Cell)
  })

  it('writes the readings it keeps once the event loop turns, and when it stops', async () => {
    const t = await setup()
    const a = await t.station(BERLIN)
    /** Readings in the file, as the next start would find them. */
    const written = () => {
      const db = new Database(t.path, { readonly: true })
      try {
        return (db.prepare('SELECT COUNT(*) AS n FROM sensor_readings').get() as { n: number }).n
      } finally {
        db.close()
      }
    }
    expect(t.judge.take(a.device.sign({ kind: 'temperature', value: 20, at: T0 }))).toBe('accept')
    expect(t.judge.take(a.device.sign({ kind: 'humidity', value: 50, at: T0 }))).toBe('accept')
    expect(written()).toBe(0)
    await new Promise<void>((resolve) => setImmediate(resolve))
    expect(written()).toBe(2)
    expect(t.judge.take(a.device.sign({ kind: 'pressure', value: 1_000, at: T0 }))).toBe('accept')
    t.judge.stop()
    expect(written()).toBe(3)
  })
  it('reports per sensor the maker whose certificate it checked, and none for an uncertified one', async () => {
    const t = await setup()
    const certified = await t.station(BERLIN)
    const bare = await t.station(BERLIN, { certify: () => undefined })
    t.run([certified, bare], 3)
    const observations = t.judge.observations(5)
    const sensorOf = (node: string) => observations.find((o) => o.node === node)?.sensors[0]
    expect(sensorOf(certified.peerId)).toMatchObject({
      device: certified.device.device,
      maker: t.maker.peerId,
    })
    expect(sensorOf(bare.peerId)).not.toHaveProperty('maker')
    // Signed, carried in an epoch bundle and checked there: the reward function gets the maker.
    const verifier = createPeerSigner(await generateKeyPair('Ed25519'))
    let seq = 0
    const codec = createWireCodec({
      network: NET,
      signer: verifier,
      clock: { now: () => T0 },
      types: [SENSOR_OBSERVATION],
      nextSeq: () => ++seq,
    })
    const signed = observations.map((o) =>
      JSON.parse(new TextDecoder().decode(codec.encode(SENSOR_OBSERVATION, o).bytes)),
    )
    const built = buildBundle({
      net: NET,
      epoch: 5,
      seed: `0x${'ab'.repeat(32)}`,
      emission: 1_000n * MESH,
      params: DEFAULT_REWARD_PARAMS,
      nodes: t.registry.nodes.map((n) => ({ ...n, registeredEpoch: 0 })),
      verifiers: [{ peerId: verifier.peerId, address: op(99) }],
      observations: signed,
      carried: { root: null, entries: [] },
    })
    const checked = checkBundle(built.bytes, {
      network: NET,
      verifier: createPeerVerifier(),
      previousRoot: null,
    })
    if (!checked.ok) throw new Error(checked.fault)
    const inBundle = (node: string) => checked.bundle.input.sensor?.find((o) => o.node === node)?.sensors[0]
    expect(inBundle(certified.peerId)?.maker).toBe(t.maker.peerId)
    expect(inBundle(bare.peerId)).not.toHaveProperty('maker')
  })

  it('refuses and counts readings whose maker certificate is forged or for another device', async () => {
    const t = await setup()
    const someone = createPeerSigner(await generateKeyPair('Ed25519')).peerId
    const forged = await t.station(BERLIN, {
      certify: (device) => ({ ...signMakerCertificate(t.maker, device, 'WS-2000'), model: 'WS-9000' }),
    })
    expect(t.judge.take(forged.device.sign({ kind: 'temperature', value: 20, at: T0 }))).toBe('reject')
    expect(t.judge.counts.dropped.bad_maker_certificate).toBe(1)
    // A node that puts another device's (good) certificate in its certificate of this one.
    const borrower = await t.station(BERLIN)
    const clock = { now: () => T0 }
    const nodeCodec = createWireCodec({
      network: NET,
      signer: borrower.nodeSigner,
      clock,
      types: [SENSOR_DEVICE],
      nextSeq: () => 1_000,
    })
    const { bytes } = nodeCodec.encode(SENSOR_DEVICE, {
      ...borrower.device.certificate().body,
      maker: signMakerCertificate(t.maker, someone, 'WS-2000'),
    })
    const deviceCodec = createWireCodec({
      network: NET,
      signer: createPeerSigner(borrower.key),
      clock,
      types: [SENSOR_READING],
      nextSeq: () => T0 - 1,
    })
    const reading = deviceCodec.encode(SENSOR_READING, {
      kind: 'temperature',
      value: 20,
      unit: '°C',
      at: T0,
      cell: borrower.device.cell,
      device: JSON.parse(new TextDecoder().decode(bytes)),
    }).bytes
    expect(t.judge.take(reading)).toBe('reject')
    expect(t.judge.counts.dropped.maker_certificate_mismatch).toBe(1)
    // The same device with its own certificate is kept.
    expect(t.judge.take(borrower.device.sign({ kind: 'temperature', value: 20, at: T0 + 1 }))).toBe('accept')
    expect(t.judge.counts.kept).toBe(1)
  })

  it('fits an observation of the most sensors, each with its maker, in the observation cap', async () => {
    const peer = async () => createPeerSigner(await generateKeyPair('Ed25519')).peerId
    const codec = createWireCodec({
      network: 'x'.repeat(128),
      signer: createPeerSigner(await generateKeyPair('Ed25519')),
      clock: { now: () => T0 },
      types: [SENSOR_OBSERVATION],
      nextSeq: () => Number.MAX_SAFE_INTEGER,
    })
    const sensors = []
    for (let i = 0; i < MAX_SENSORS_PER_NODE; i++)
      sensors.push({
        device: await peer(),
        maker: await peer(),
        since: Number.MAX_SAFE_INTEGER,
        readings: 1_000_000,
        qualityPpm: 1_000_000,
        agreementPpm: 1_000_000,
        summary: 'x'.repeat(120),
      })
    const body = {
      epoch: Number.MAX_SAFE_INTEGER,
      node: await peer(),
      cell: '851f1d4bfffffff',
      probe: { rttMs: 1, distanceKm: 20_100 },
      sensors,
    }
    expect(codec.encode(SENSOR_OBSERVATION, body).bytes.length).toBeLessThanOrEqual(
      SENSOR_OBSERVATION.maxBytes,
    )
  })
})
