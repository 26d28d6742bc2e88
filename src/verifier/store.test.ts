import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import type { SignedEnvelope } from '../mesh/wire-codec.js'
import { migrate } from '../node/database.js'
import type { UptimeObservationBody } from './observation.js'
import {
  MAX_READINGS_PER_SENSOR_EPOCH,
  openVerifierStore,
  READING_BATCH,
  type ReadingRefusal,
  type SensorDeviceRecord,
  VERIFIER_MIGRATIONS,
  type VerifierStore,
  type VerifierStoreInit,
} from './store.js'

const dirs: string[] = []
const opened: VerifierStore[] = []
function open(path?: string, init: VerifierStoreInit = {}): { store: VerifierStore; path: string } {
  const p = path ?? join(mkdtempSync(join(tmpdir(), 'mw-verifier-store-')), 'verifier.db')
  if (path === undefined) dirs.push(p)
  const store = openVerifierStore(p, init)
  opened.push(store)
  return { store, path: p }
}
afterEach(() => {
  for (const s of opened.splice(0)) s.close()
  for (const d of dirs.splice(0)) rmSync(join(d, '..'), { recursive: true, force: true })
})

const obs = (
  from: string,
  node: string,
  seq: number,
  answered: number,
): SignedEnvelope<UptimeObservationBody> => ({
  v: 1,
  net: 'n',
  type: 'observation/uptime',
  from,
  seq,
  ts: 1,
  exp: 2,
  body: { epoch: 5, node, challenges: 10, answered },
  sig: 'A'.repeat(86),
})

describe('verifier store', () => {
  it('counts challenges per node, and a replayed step changes nothing', () => {
    const { store } = open()
    store.recordChallenge({ epoch: 5, node: 'a', slot: 0, at: 1, outcome: 'answered', rttMs: 12 })
    store.recordChallenge({ epoch: 5, node: 'a', slot: 1, at: 2, outcome: 'timeout' })
    store.recordChallenge({ epoch: 5, node: 'a', slot: 1, at: 3, outcome: 'answered' }) // replayed slot
    store.recordChallenge({ epoch: 5, node: 'b', slot: 0, at: 1, outcome: 'bad_signature' })
    store.recordChallenge({ epoch: 6, node: 'a', slot: 0, at: 9, outcome: 'answered' })
    expect(store.challengeCounts(5)).toEqual(
      new Map([
        ['a', { challenges: 2, answered: 1 }],
        ['b', { challenges: 1, answered: 0 }],
      ]),
    )
    expect(store.challengedSlots(5, 'a')).toEqual(new Set([0, 1]))
  })

  it('keeps the newest observation per verifier and node', () => {
    const { store } = open()
    expect(store.saveObservation(obs('v1', 'a', 3, 5))).toBe(true)
    expect(store.saveObservation(obs('v1', 'a', 2, 9))).toBe(false) // older: a replay
    expect(store.saveObservation(obs('v1', 'a', 4, 7))).toBe(true)
    expect(store.saveObservation(obs('v2', 'a', 1, 1))).toBe(true)
    expect(store.observations(5).map((o) => [o.from, o.seq, o.body.answered])).toEqual([
      ['v1', 4, 7],
      ['v2', 1, 1],
    ])
  })

  it('keeps bundles, attestations, roots and sequence numbers across a reopen', () => {
    const { store, path } = open()
    const digest = `0x${'1'.repeat(64)}` as const
    store.saveBundle({
      cid: 'bafy',
      epoch: 5,
      digest,
      root: digest,
      totalCumulative: 10n ** 24n,
      bytes: new Uint8Array([1, 2]),
    })
    store.saveAttestation({ epoch: 5, cid: 'bafy', signer: '0xAB', signature: '0x01' })
    store.saveAttestation({ epoch: 5, cid: 'bafy', signer: '0xab', signature: '0x02' }) // the same signer again: the newer one
    store.recordRoot({ epoch: 5, root: digest, totalCumulative: 7n, digest, block: 40 })
    const seq = store.nextSeq('observation/uptime')
    store.close()
    opened.splice(opened.indexOf(store), 1)
    const again = open(path).store
    expect(again.bundle('bafy')).toEqual({
      cid: 'bafy',
      epoch: 5,
      digest,
      root: digest,
      totalCumulative: 10n ** 24n,
      bytes: new Uint8Array([1, 2]),
    })
    expect(again.attestations(5, 'bafy')).toEqual([{ signer: '0xab', signature: '0x02' }])
    again.saveAttestation({ epoch: 5, cid: 'bafy', signer: '0xcd', signature: '0x03' })
    expect(again.attestations(5, 'bafy')).toEqual([
      { signer: '0xab', signature: '0x02' },
      { signer: '0xcd', signature: '0x03' },
    ])
    expect(again.attestations(6, 'bafy')).toEqual([])
    expect(again.latestRoot()).toEqual({ epoch: 5, root: digest, totalCumulative: 7n, digest, block: 40 })
    expect(again.nextSeq('observation/uptime')).toBeGreaterThan(seq)
    again.forgetRootsFrom(5)
    expect(again.latestRoot()).toBeUndefined()
  })
})

type Reading = Parameters<VerifierStore['recordReading']>[0]

/**
 * The sensor rules as one transaction a reading would apply them (the store before readings were
 * batched): the first node to certify a device keeps it, a node keeps at most `maxSensors` devices,
 * a device at most MAX_READINGS_PER_SENSOR_EPOCH readings an epoch.
 */
class ReadingModel {
  readonly devices = new Map<string, SensorDeviceRecord>()
  rows: Reading[] = []

  record(r: Reading, maxSensors: number): { ok: true } | { ok: false; refusal: ReadingRefusal } {
    const held = this.devices.get(r.device)
    if (held === undefined) {
      if ([...this.devices.values()].filter((d) => d.node === r.node).length >= maxSensors)
        return { ok: false, refusal: 'too_many_sensors' }
      this.devices.set(r.device, {
        device: r.device,
        node: r.node,
        cell: r.cell,
        kinds: r.kinds,
        ...(r.maker === undefined ? {} : { maker: r.maker }),
        since: r.epoch,
      })
    } else if (held.node !== r.node) {
      return { ok: false, refusal: 'device_taken' }
    } else {
      held.cell = r.cell
      held.kinds = r.kinds
      // The maker of the latest reading's certificate.
      if (r.maker === undefined) delete held.maker
      else held.maker = r.maker
    }
    if (
      this.rows.filter((x) => x.epoch === r.epoch && x.device === r.device).length >=
      MAX_READINGS_PER_SENSOR_EPOCH
    )
      return { ok: false, refusal: 'too_many_readings' }
    this.rows.push(r)
    return { ok: true }
  }

  readingsOf(epoch: number): ReturnType<VerifierStore['readingsOf']> {
    const out: ReturnType<VerifierStore['readingsOf']> = new Map()
    const rows = this.rows.filter((r) => r.epoch === epoch)
    rows.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : a.at - b.at))
    for (const r of rows) {
      const held = out.get(r.device) ?? {
        device: { ...(this.devices.get(r.device) as SensorDeviceRecord) },
        readings: [],
      }
      held.readings.push({ kind: r.kind, at: r.at, value: r.value, receivedAt: r.receivedAt })
      out.set(r.device, held)
    }
    return out
  }

  prune(epoch: number): void {
    this.rows = this.rows.filter((r) => r.epoch >= epoch)
  }
}

describe('verifier store: sensor readings', () => {
  const reading = (i: number, over: Partial<Reading> = {}): Reading => ({
    epoch: 5,
    device: 'dev-a',
    node: 'node-a',
    cell: '851f1d4bfffffff',
    kinds: ['temperature'],
    kind: 'temperature',
    at: 1_000 + i,
    value: 10 + i / 100,
    receivedAt: 2_000 + i,
    ...over,
  })
  /** Readings committed to the file, as another process (or the next start) would see them. */
  const committed = (path: string): number => {
    const db = new Database(path, { readonly: true })
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM sensor_readings').get() as { n: number }).n
    } finally {
      db.close()
    }
  }

  it('gives the verdicts and readings of one transaction a reading, however the batches fall', () => {
    const op = fc.oneof(
      {
        weight: 8,
        arbitrary: fc.record({
          op: fc.constant('record' as const),
          device: fc.integer({ min: 0, max: 5 }),
          node: fc.integer({ min: 0, max: 3 }),
          epoch: fc.integer({ min: 1, max: 4 }),
          cell: fc.constantFrom('851f1d4bfffffff', '851f1d4ffffffff'),
          kinds: fc.subarray(['temperature', 'humidity', 'pressure'], { minLength: 1 }),
          maker: fc.constantFrom(undefined, 'maker-0', 'maker-1'),
        }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('flush' as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
      {
        weight: 1,
        arbitrary: fc.record({ op: fc.constant('prune' as const), epoch: fc.integer({ min: 1, max: 4 }) }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ op: fc.constant('read' as const), epoch: fc.integer({ min: 1, max: 4 }) }),
      },
    )
    fc.assert(
      // Two devices held in memory at most, or many: a full cache is written and read back.
      fc.property(fc.array(op, { maxLength: 60 }), fc.constantFrom(2, 1_000), (ops, cachedDevices) => {
        let { store, path } = open(undefined, { cachedDevices })
        const model = new ReadingModel()
        let at = 0
        for (const o of ops) {
          if (o.op === 'record') {
            at++
            const r = reading(at, {
              epoch: o.epoch,
              device: `dev-${o.device}`,
              node: `node-${o.node}`,
              cell: o.cell,
              kinds: o.kinds,
              ...(o.maker === undefined ? {} : { maker: o.maker }),
              kind: o.kinds[0] as string,
            })
            expect(store.recordReading(r, 2)).toEqual(model.record(r, 2))
          } else if (o.op === 'flush') {
            store.flushReadings()
          } else if (o.op === 'reopen') {
            store.close()
            opened.splice(opened.indexOf(store), 1)
            store = open(path, { cachedDevices }).store
          } else if (o.op === 'prune') {
            store.pruneReadings(o.epoch)
            model.prune(o.epoch)
          } else {
            expect(store.readingsOf(o.epoch)).toEqual(model.readingsOf(o.epoch))
          }
        }
        for (const epoch of [1, 2, 3, 4]) expect(store.readingsOf(epoch)).toEqual(model.readingsOf(epoch))
      }),
      { numRuns: 60 },
    )
  })

  it("keeps each device's maker, and opens a store from before makers with none", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-verifier-store-'))
    const path = join(dir, 'verifier.db')
    dirs.push(path)
    // A store as it was before makers (schema 5), holding a device and a reading.
    const old = new Database(path)
    migrate(
      old,
      VERIFIER_MIGRATIONS.filter((m) => m.version <= 5),
    )
    old
      .prepare('INSERT INTO sensor_devices (device, node, cell, kinds, since) VALUES (?, ?, ?, ?, ?)')
      .run('dev-a', 'node-a', '851f1d4bfffffff', '["temperature"]', 5)
    old
      .prepare(
        'INSERT INTO sensor_readings (epoch, device, kind, at, value, received_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(5, 'dev-a', 'temperature', 1_000, 10, 2_000)
    old.close()
    const { store } = open(path)
    expect(store.readingsOf(5).get('dev-a')?.device).toEqual({
      device: 'dev-a',
      node: 'node-a',
      cell: '851f1d4bfffffff',
      kinds: ['temperature'],
      since: 5,
    })
    // Its next reading names its maker; the maker is kept across a restart.
    expect(store.recordReading(reading(1, { maker: 'maker-x' }), 16)).toEqual({ ok: true })
    store.close()
    opened.splice(opened.indexOf(store), 1)
    const again = open(path).store
    expect(again.readingsOf(5).get('dev-a')?.device).toMatchObject({ maker: 'maker-x', since: 5 })
  })

  it('writes readings a batch at a time: a kill loses at most the batch pending', () => {
    const { store, path } = open()
    for (let i = 0; i < READING_BATCH - 1; i++) expect(store.recordReading(reading(i), 16).ok).toBe(true)
    // Nothing is written yet: a verifier killed now loses these readings (nobody was told of them).
    expect(committed(path)).toBe(0)
    store.recordReading(reading(READING_BATCH), 16)
    expect(committed(path)).toBe(READING_BATCH)
    store.recordReading(reading(READING_BATCH + 1), 16)
    expect(committed(path)).toBe(READING_BATCH)
    // Reading them writes them first.
    expect(store.readingsOf(5).get('dev-a')?.readings).toHaveLength(READING_BATCH + 1)
    expect(committed(path)).toBe(READING_BATCH + 1)
    store.recordReading(reading(READING_BATCH + 2), 16)
    store.flushReadings()
    expect(committed(path)).toBe(READING_BATCH + 2)
    store.recordReading(reading(READING_BATCH + 3), 16)
    store.close()
    opened.splice(opened.indexOf(store), 1)
    expect(committed(path)).toBe(READING_BATCH + 3)
  })

  it("caps a sensor's readings in an epoch across batches and a restart", () => {
    const { store, path } = open()
    for (let i = 0; i < MAX_READINGS_PER_SENSOR_EPOCH; i++)
      expect(store.recordReading(reading(i), 16).ok).toBe(true)
    expect(store.recordReading(reading(-1), 16)).toEqual({ ok: false, refusal: 'too_many_readings' })
    // Another epoch counts anew.
    expect(store.recordReading(reading(-1, { epoch: 6 }), 16)).toEqual({ ok: true })
    store.close()
    opened.splice(opened.indexOf(store), 1)
    const again = open(path).store
    expect(again.recordReading(reading(-2), 16)).toEqual({ ok: false, refusal: 'too_many_readings' })
    expect(again.recordReading(reading(-2, { device: 'dev-b' }), 16)).toEqual({ ok: true })
    expect(again.recordReading(reading(-3, { node: 'node-b' }), 16)).toEqual({
      ok: false,
      refusal: 'device_taken',
    })
  })
})
