import { PassThrough, Readable } from 'node:stream'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { latLngToCell } from 'h3-js'
import { describe, expect, it } from 'vitest'
import { createPeerSigner, createPeerVerifier } from '../mesh/peer-key.js'
import { createWireCodec, type SignedEnvelope } from '../mesh/wire-codec.js'
import { DeviceSigner } from './device.js'
import { locationConfidence } from './location.js'
import { type ReceivedReading, scoreSensor } from './quality.js'
import {
  checkReading,
  SENSOR_DEVICE,
  SENSOR_READING,
  type SensorKind,
  type SensorReadingBody,
} from './reading.js'
import { jsonLinesSource, type Measurement, simulatedSource } from './sources.js'
import { readingChecker } from './subscriber.js'
import { simulatedWeather } from './weather.js'

const HOUR = 3_600_000
const T0 = Date.UTC(2026, 5, 1)

/** A day of readings every 10 minutes from a station, received 2 s after each. */
function day(read: (at: number) => number): ReceivedReading[] {
  return Array.from({ length: 144 }, (_, i) => {
    const at = T0 + i * 600_000
    return { at, value: read(at), receivedAt: at + 2_000 }
  })
}

describe('simulated weather station', () => {
  it('is deterministic from its seed and follows the sun: warmer in the afternoon than before dawn', () => {
    const berlin = simulatedWeather({ seed: 7, lat: 52.5, lon: 13.4 })
    const again = simulatedWeather({ seed: 7, lat: 52.5, lon: 13.4 })
    const other = simulatedWeather({ seed: 8, lat: 52.5, lon: 13.4 })
    const at = T0 + 14 * HOUR
    expect(berlin.read('temperature', at)).toBe(again.read('temperature', at))
    expect(berlin.read('temperature', at)).not.toBe(other.read('temperature', at))
    // Local solar time in Berlin is about UTC + 0:54.
    expect(berlin.read('temperature', T0 + 14 * HOUR)).toBeGreaterThan(
      berlin.read('temperature', T0 + 4 * HOUR) + 8,
    )
    expect(berlin.read('humidity', T0 + 14 * HOUR)).toBeLessThan(berlin.read('humidity', T0 + 4 * HOUR))
    const pressure = day((at) => berlin.read('pressure', at)).map((r) => r.value)
    expect(Math.min(...pressure)).toBeGreaterThan(990)
    expect(Math.max(...pressure)).toBeLessThan(1_035)
    // The tropics are warmer than the north on average over a day.
    const mean = (lat: number) => {
      const s = simulatedWeather({ seed: 1, lat, lon: 0 })
      const xs = day((at) => s.read('temperature', at)).map((r) => r.value)
      return xs.reduce((a, b) => a + b, 0) / xs.length
    }
    expect(mean(5)).toBeGreaterThan(mean(60) + 15)
  })
})

describe('sensor quality', () => {
  const station = (seed: number) => simulatedWeather({ seed, lat: 52.5, lon: 13.4 })
  const neighbours = [1, 2, 3, 4, 5].map((seed) => {
    const values = day((at) => station(seed).read('temperature', at)).map((r) => r.value)
    return [...values].sort((a, b) => a - b)[72] as number
  })

  it('scores a good station near 1, and a stuck, out-of-bounds, far-off or late one low, saying why', () => {
    const good = scoreSensor(
      'temperature',
      day((at) => station(9).read('temperature', at)),
      neighbours,
    )
    expect(good.score).toBeGreaterThan(0.95)
    expect(good.summary).toBe('good')
    const stuck = scoreSensor(
      'temperature',
      day(() => 21.5),
      neighbours,
    )
    expect(stuck.score).toBe(0)
    expect(stuck.summary).toMatch(/stuck/)
    const hot = scoreSensor(
      'temperature',
      day((at) => station(9).read('temperature', at) + 80),
      neighbours,
    )
    expect(hot.inBounds).toBeLessThan(0.5)
    expect(hot.score).toBeLessThan(0.2)
    // In bounds and plausible on its own, but 15 °C off what the cell's neighbours read.
    const off = scoreSensor(
      'temperature',
      day((at) => station(9).read('temperature', at) - 15),
      neighbours,
    )
    expect(off.agreement).toBe(0)
    expect(off.summary).toMatch(/neighbours/)
    const jumpy = scoreSensor(
      'temperature',
      day((at) => station(9).read('temperature', at) + ((at / 600_000) % 2 ? 30 : 0)),
      neighbours,
    )
    expect(jumpy.plausibleRates).toBeLessThan(0.1)
    const late = scoreSensor(
      'temperature',
      day((at) => station(9).read('temperature', at)).map((r) => ({ ...r, receivedAt: r.at + 10 * 60_000 })),
      neighbours,
    )
    expect(late.onTime).toBe(0)
    expect(scoreSensor('temperature', [], neighbours)).toMatchObject({ score: 0, summary: 'no readings' })
  })
})

describe('proof of location', () => {
  const frankfurt = { verifier: 'v-fra', lat: 50.11, lon: 8.68 }
  it('gives 0 to a cell 2,000 km from where the round trips place the node, and keeps an honest claim', () => {
    // The node claims Lisbon (about 1,900 km from Frankfurt) but answers Frankfurt in 4 ms (at most 400 km).
    const lisbon = latLngToCell(38.72, -9.14, 5)
    const lie = locationConfidence(lisbon, [{ ...frankfurt, rttMs: 4 }], 1)
    expect(lie.confidence).toBe(0)
    expect(lie.impossible[0]?.distanceKm).toBeGreaterThan(1_800)
    // Claiming a cell near Frankfurt with the same round trip is possible.
    const mainz = latLngToCell(50.0, 8.27, 5)
    expect(locationConfidence(mainz, [{ ...frankfurt, rttMs: 4 }], 0.9).confidence).toBe(0.9)
    // A long round trip proves nothing against a far claim; no probes at all: half the agreement.
    expect(locationConfidence(lisbon, [{ ...frankfurt, rttMs: 40 }], 1).confidence).toBe(1)
    expect(locationConfidence(lisbon, [], 1).confidence).toBe(0.5)
  })
})

describe('sensor readings on the wire', () => {
  async function device(kinds: SensorKind[] = ['temperature']) {
    const nodeSigner = createPeerSigner(await generateKeyPair('Ed25519'))
    let now = T0
    const clock = { now: () => now }
    let seq = 0
    const nodeCodec = createWireCodec({
      network: 'n',
      signer: nodeSigner,
      clock,
      types: [SENSOR_DEVICE],
      nextSeq: () => ++seq,
    })
    const key = await generateKeyPair('Ed25519')
    const signer = new DeviceSigner({ network: 'n', key, kinds, cell: CELL, nodeCodec, clock })
    // The receiving side: a codec of its own (replay protection), any signer.
    const receiver = createWireCodec({
      network: 'n',
      signer: createPeerSigner(await generateKeyPair('Ed25519')),
      clock,
      types: [SENSOR_READING],
      nextSeq: () => 1,
    })
    const check = (bytes: Uint8Array) => {
      const decoded = receiver.decode(bytes)
      if (!decoded.ok) return decoded.reason
      const checked = checkReading(decoded.envelope as SignedEnvelope<SensorReadingBody>, {
        network: 'n',
        verifier: createPeerVerifier(),
      })
      return checked.ok ? checked.node : checked.fault
    }
    return { nodeSigner, key, signer, check, advance: (ms: number) => (now += ms) }
  }
  const CELL = latLngToCell(52.5, 13.4, 5)

  it('are signed by the device key and carry the node certificate, checked on their own', async () => {
    const { nodeSigner, signer, check } = await device()
    const bytes = signer.sign({ kind: 'temperature', value: 21.5, at: T0 })
    expect(check(bytes)).toBe(nodeSigner.peerId)
    const envelope = JSON.parse(new TextDecoder().decode(bytes))
    expect(envelope.from).toBe(signer.device)
    expect(envelope.body).toMatchObject({ kind: 'temperature', value: 21.5, unit: '°C', cell: CELL })
    // Never a precise place: a cell finer than resolution 5 or a unit not the kind's is refused.
    const fine = { ...envelope.body, cell: latLngToCell(52.5, 13.4, 9) }
    expect(SENSOR_READING.schema.safeParse(fine).success).toBe(false)
    expect(SENSOR_READING.schema.safeParse({ ...envelope.body, unit: '%' }).success).toBe(false)
    expect(() => signer.sign({ kind: 'humidity', value: 50, at: T0 })).toThrow(/not certified/)
  })

  it('flags a value held over 10 readings and 10 minutes as stuck for subscribers, not a slow one held for 20 s', async () => {
    const { signer, advance } = await device()
    let now = T0
    const checker = readingChecker({
      codec: createWireCodec({
        network: 'n',
        signer: createPeerSigner(await generateKeyPair('Ed25519')),
        clock: { now: () => now },
        types: [SENSOR_READING],
        nextSeq: () => 1,
      }),
      verifier: createPeerVerifier(),
      network: 'n',
      now: () => now,
    })
    const flagsAfter = (count: number, everyMs: number) => {
      let reasons: string[] = []
      for (let i = 0; i < count; i++) {
        now = advance(everyMs)
        reasons = checker.check(signer.sign({ kind: 'temperature', value: 21.5, at: now })).reading?.quality
          .reasons as string[]
      }
      return reasons
    }
    // A devnet station every 2 s: ten equal rounded values in 20 s are not a stuck sensor.
    expect(flagsAfter(12, 2_000)).toEqual([])
    // The same value for 12 more minutes is.
    expect(flagsAfter(12, 60_000)).toEqual(['stuck'])
  })

  it('takes a late reading once and refuses a replayed one, a forged value, a forged certificate and one past its certificate', async () => {
    const { signer, check, advance } = await device()
    const first = signer.sign({ kind: 'temperature', value: 20, at: T0 })
    expect(check(first)).not.toMatch(/_/)
    expect(check(first)).toBe('duplicate')
    const older = signer.sign({ kind: 'temperature', value: 20.1, at: T0 })
    const newer = signer.sign({ kind: 'temperature', value: 20.2, at: T0 })
    expect(check(newer)).not.toMatch(/_/)
    // Signed first, heard last (gossip does not keep order): taken, and only once.
    expect(check(older)).not.toMatch(/_/)
    expect(check(older)).toBe('duplicate')
    // The value changed after signing: the device's signature no longer holds.
    const forged = JSON.parse(
      new TextDecoder().decode(signer.sign({ kind: 'temperature', value: 20.3, at: T0 })),
    )
    forged.body.value = 35
    expect(check(new TextEncoder().encode(JSON.stringify(forged)))).toBe('bad_signature')
    // A device that forges its own certificate (more kinds) is caught by the node's signature.
    const own = signer.sign({ kind: 'temperature', value: 20.4, at: T0 })
    const cert = JSON.parse(new TextDecoder().decode(own)).body.device
    cert.body.kinds = ['temperature', 'humidity']
    const stranger = await device()
    // Re-signed by another device key with the tampered certificate inside.
    const tampered = JSON.parse(
      new TextDecoder().decode(stranger.signer.sign({ kind: 'temperature', value: 1, at: T0 })),
    )
    tampered.body.device = cert
    expect(stranger.check(new TextEncoder().encode(JSON.stringify(tampered)))).toBe('bad_signature')
    // Another node's certificate of this device inside the stranger's reading: not its device.
    const foreignCert = JSON.parse(new TextDecoder().decode(own)).body.device
    const strangerCodec = createWireCodec({
      network: 'n',
      signer: createPeerSigner(stranger.key),
      clock: { now: () => T0 },
      types: [SENSOR_READING],
      nextSeq: () => T0 + 99,
    })
    const mismatch = strangerCodec.encode(SENSOR_READING, {
      kind: 'temperature',
      value: 2,
      unit: '°C',
      at: T0,
      cell: CELL,
      device: foreignCert,
    }).bytes
    expect(stranger.check(mismatch)).toBe('certificate_mismatch')
    // The certificate is renewed before it runs out: a reading an hour on still checks.
    advance(59 * 60_000)
    expect(check(signer.sign({ kind: 'temperature', value: 20.5, at: T0 + 59 * 60_000 }))).not.toMatch(/_/)
  })
})

describe('sensor sources', () => {
  it('reads JSON lines, defaulting the time and skipping malformed, oversized and mismatched lines', async () => {
    const lines = [
      '{"sensor":"porch","kind":"temperature","value":21.4,"at":1764000000000}',
      '',
      'not json',
      '{"sensor":"porch","kind":"humidity","value":55}',
      '{"sensor":"porch","kind":"humidity","value":55,"unit":"°C"}',
      '{"sensor":"porch","kind":"radiation","value":1}',
      `{"sensor":"porch","kind":"pressure","value":1000,"pad":"${'x'.repeat(5_000)}"}`,
      '{"sensor":"roof","kind":"pressure","value":1012.5,"unit":"hPa","at":1764000060000}',
    ]
    const source = jsonLinesSource(Readable.from([lines.join('\n')]), { now: () => 42 })
    const got: unknown[] = []
    for await (const m of source.measurements()) got.push(m)
    expect(got).toEqual([
      { sensor: 'porch', kind: 'temperature', value: 21.4, at: 1764000000000 },
      { sensor: 'porch', kind: 'humidity', value: 55, at: 42 },
      { sensor: 'roof', kind: 'pressure', value: 1012.5, at: 1764000060000 },
    ])
    expect(source.refused).toBe(4)
  })

  it('runs a simulated station as a source, deterministic from its seed', async () => {
    const read = async () => {
      const out: Measurement[] = []
      const source = simulatedSource({
        sensor: 's1',
        seed: 3,
        lat: 48.8,
        lon: 2.3,
        startMs: T0,
        count: 5,
        sleep: async () => undefined,
      })
      for await (const m of source.measurements()) out.push(m)
      return out
    }
    const a = await read()
    expect(a).toHaveLength(15)
    expect(a.filter((m) => m.kind === 'pressure').map((m) => m.at)).toEqual(
      [0, 1, 2, 3, 4].map((i) => T0 + i * 60_000),
    )
    expect(await read()).toEqual(a)
  })
})

describe('sensor sources stop', () => {
  it('a JSON-lines source waiting on a quiet input ends as soon as it is aborted', async () => {
    const quiet = new PassThrough()
    quiet.write('{"sensor":"a","kind":"temperature","value":1,"at":5}\n')
    const stop = new AbortController()
    const got: Measurement[] = []
    const done = (async () => {
      for await (const m of jsonLinesSource(quiet).measurements(stop.signal)) {
        got.push(m)
        setTimeout(() => stop.abort(), 10)
      }
    })()
    await done
    expect(got).toHaveLength(1)
  })
})
