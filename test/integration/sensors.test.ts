import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { latLngToCell } from 'h3-js'
import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import type { MeshLibp2p } from '../../src/mesh/create-libp2p.js'
import { createPeerSigner, createPeerVerifier } from '../../src/mesh/peer-key.js'
import { createWireCodec } from '../../src/mesh/wire-codec.js'
import { sensorCellOf } from '../../src/sensors/device.js'
import { SENSOR_DEVICE, SENSOR_READING } from '../../src/sensors/reading.js'
import { SensorService } from '../../src/sensors/sensor-service.js'
import { mqttSource } from '../../src/sensors/sources.js'
import { type SubscribedReading, subscribeSensors } from '../../src/sensors/subscriber.js'
import type { RegistrySnapshot } from '../../src/verifier/chain-port.js'
import { SensorJudge } from '../../src/verifier/sensor-judge.js'
import { openVerifierStore } from '../../src/verifier/store.js'
import { startMeshPort } from '../helpers/live-node.js'
import { type Broker, startMosquitto } from '../helpers/mosquitto.js'

const NET = '31337:0x00000000000000000000000000000000000000a1'
const BERLIN = { lat: 52.52, lon: 13.4 }
const logger = createLogger({ level: 'silent' })

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function until(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const tcp = (l: MeshLibp2p) =>
  (l.getMultiaddrs().find((a) => !a.toString().includes('/ws')) as object).toString()

describe('sensor network over MQTT, libp2p and gossip', () => {
  it('carries an MQTT reading from the broker through a node to a subscriber and a verifier, checked and flagged', async () => {
    const broker: Broker = await startMosquitto()
    cleanups.push(() => broker.stop())
    const dir = mkdtempSync(join(tmpdir(), 'sensors-it-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))

    // The node: a real libp2p peer running the sensor plugin fed by the broker.
    const nodeKey = await generateKeyPair('Ed25519')
    const node = await startMeshPort(nodeKey, [])
    cleanups.push(() => node.libp2p.stop())
    const h3Cell = latLngToCell(BERLIN.lat, BERLIN.lon, 7)
    const cell = sensorCellOf(h3Cell)
    let seq = 0
    const service = new SensorService(
      {
        network: NET,
        cell,
        sensors: [{ name: 'porch', kinds: ['temperature', 'humidity'] }],
        sources: [mqttSource({ url: broker.url })],
      },
      {
        codec: createWireCodec({
          network: NET,
          signer: createPeerSigner(nodeKey),
          clock: systemClock,
          types: [SENSOR_DEVICE],
          nextSeq: () => ++seq,
        }),
      },
    )
    await service.start({ port: node.port, clock: systemClock, logger, dir })
    cleanups.push(() => service.stop())

    // A builder's subscriber and a verifier, each its own libp2p peer, dialling the node.
    const builder = await startMeshPort(await generateKeyPair('Ed25519'), [tcp(node.libp2p)])
    cleanups.push(() => builder.libp2p.stop())
    const received: SubscribedReading[] = []
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
      { near: { lat: 52.5, lon: 13.45 }, radiusKm: 20 },
      (r) => received.push(r),
    )
    cleanups.push(() => sub.unsubscribe())
    expect(sub.cells).toContain(cell)

    const verifierKey = await generateKeyPair('Ed25519')
    const verifier = await startMeshPort(verifierKey, [tcp(node.libp2p)])
    cleanups.push(() => verifier.libp2p.stop())
    const store = openVerifierStore(join(dir, 'verifier.db'))
    cleanups.push(() => store.close())
    const registry: RegistrySnapshot = {
      nodes: [
        {
          peerId: node.port.peerId,
          operator: `0x${'1'.padStart(40, '0')}`,
          stake: 1n,
          registeredAt: 0,
          h3Cell,
        },
      ],
      verifiers: [],
    }
    const judge = new SensorJudge(
      { network: NET },
      {
        port: verifier.port,
        clock: systemClock,
        store,
        codec: createWireCodec({
          network: NET,
          signer: createPeerSigner(verifierKey),
          clock: systemClock,
          types: [SENSOR_READING],
          nextSeq: () => 1,
        }),
        verifier: createPeerVerifier(),
        logger,
        epochAt: () => 7,
        registryAt: () => registry,
      },
    )
    judge.follow(registry)
    cleanups.push(() => judge.stop())
    await until(() => node.port.topicPeers(`meshwork/${NET}/sensors/${cell}/1`).length >= 2)

    // The operator's device publishes to its local broker: two good readings, one out of bounds,
    // one malformed and one from a sensor the node does not know.
    const { connectAsync } = await import('mqtt')
    const device = await connectAsync(broker.url)
    cleanups.push(() => device.endAsync())
    const now = Date.now()
    await device.publishAsync(
      'meshwork/sensors/porch',
      JSON.stringify({ kind: 'temperature', value: 21.5, at: now }),
    )
    await device.publishAsync(
      'meshwork/sensors/porch',
      JSON.stringify({ kind: 'humidity', value: 48, at: now }),
    )
    await device.publishAsync(
      'meshwork/sensors/porch',
      JSON.stringify({ kind: 'temperature', value: 180, at: now + 1 }),
    )
    await device.publishAsync('meshwork/sensors/porch', '{"kind":"temperature","value":"warm"}')
    await device.publishAsync('meshwork/sensors/shed', JSON.stringify({ kind: 'temperature', value: 9 }))

    await until(() => received.length >= 3 && judge.counts.kept >= 3)
    const devices = service.devices()
    expect(received.map((r) => [r.kind, r.value, r.quality.flag])).toEqual([
      ['temperature', 21.5, 'ok'],
      ['humidity', 48, 'ok'],
      ['temperature', 180, 'suspect'],
    ])
    expect(received[2]?.quality.reasons).toContain('out_of_bounds')
    for (const r of received) {
      expect(r).toMatchObject({ sensor: devices.get('porch'), node: node.port.peerId, cell })
      expect(r.distanceKm).toBeLessThan(30)
    }
    expect(service.counts).toMatchObject({ published: 3, refused: 2 })
    expect(sub.dropped()).toBe(0)
    // The verifier kept them and judges the sensor: a jump to 180 °C in a millisecond scores 0.
    const [observation] = judge.observations(7)
    expect(observation).toMatchObject({ node: node.port.peerId, cell, probe: null })
    expect(observation?.sensors[0]).toMatchObject({
      device: devices.get('porch'),
      readings: 3,
      qualityPpm: 0,
    })
    expect(observation?.sensors[0]?.summary).toMatch(/^temperature: (impossible jumps|values out of bounds)/)
  })
})
