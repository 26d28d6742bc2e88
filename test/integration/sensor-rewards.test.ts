import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { latLngToCell } from 'h3-js'
import { afterAll, describe, expect, it } from 'vitest'
import { registerNode, servicesMask } from '../../src/chain/index.js'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import { createPeerSigner, createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { createWireCodec } from '../../src/mesh/wire-codec.js'
import { loadDeviceKey, sensorCellOf } from '../../src/sensors/device.js'
import { signMakerCertificate } from '../../src/sensors/maker.js'
import { SENSOR_DEVICE } from '../../src/sensors/reading.js'
import { SensorService } from '../../src/sensors/sensor-service.js'
import { simulatedSource } from '../../src/sensors/sources.js'
import { bundleCid, checkBundle, settleBundle } from '../../src/verifier/bundle.js'
import { createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { startInProcessVerifiers } from '../helpers/in-process-verifiers.js'
import { LIVE_NET, type LiveNode, LiveNodes, tcpAddr, until } from '../helpers/live-node.js'

/**
 * Sensor rewards end to end on the embedded chain and real libp2p: four registered nodes each run a
 * simulated weather station, certified by a maker the deploy approved (only certified hardware is
 * paid); three verifiers (quorum 2) in Berlin follow their cells, judge every
 * station each epoch and the posted epoch's bundle pays the sensor pool. Three stations are in
 * Berlin and say so; the fourth machine is in Berlin too (a loopback round trip away) but claims
 * Sydney, 16,000 km off: light in fibre cannot make that trip in the time, so it earns nothing from
 * the sensor pool. (The unit tests of the sensor judge put the claim 2,000 km off, with set round
 * trips.)
 */

const EPOCH_S = 8
const BERLIN = { lat: 52.52, lon: 13.4 }
// Far enough that even a loaded machine's loopback round trip (well under 160 ms) rules it out.
const SYDNEY = { lat: -33.87, lon: 151.21 }
const logger = createLogger({ level: process.env.MESHWORK_TEST_LOG ?? 'silent' })

describe('sensor rewards', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-sensor-rewards-'))
  const stops: (() => Promise<unknown> | unknown)[] = []
  let f: ChainFixture | undefined
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await nodes.stopAll()
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('pays stations for good data from where they claim, and a station claiming a cell 16,000 km away nothing', async ({
    annotate,
  }) => {
    const maker = createPeerSigner(await generateKeyPair('Ed25519'))
    f = await startChainFixture(
      { quorum: 2, disputeWindow: 1, epochDuration: EPOCH_S },
      { makers: [maker.peerId] },
    )
    const fixture = f
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      1_000,
    )
    stops.push(() => clearInterval(miner))

    const stations: { node: LiveNode; service: SensorService; operator: string; claims: string }[] = []
    const claims = [BERLIN, { lat: 52.49, lon: 13.45 }, { lat: 52.55, lon: 13.35 }, SYDNEY]
    for (const [i, claim] of claims.entries()) {
      const h3Cell = latLngToCell(claim.lat, claim.lon, 7)
      const operator = f.account(4 + i).address.toLowerCase()
      let service: SensorService | undefined
      // The station's device key, made before the node starts so that the maker can certify it.
      const dir = nodes.tempDir()
      const device = createPeerSigner(await loadDeviceKey(join(dir, 'sensors'), 'station')).peerId
      const node = await nodes.start({
        operator: operator as `0x${string}`,
        cell: h3Cell,
        dir,
        ...(stations[0] ? { bootstrap: [tcpAddr(stations[0].node.libp2p)] } : {}),
        services: (db, key) => {
          service = new SensorService(
            {
              network: LIVE_NET,
              cell: sensorCellOf(h3Cell),
              sensors: [
                {
                  name: 'station',
                  kinds: ['temperature', 'humidity', 'pressure'],
                  maker: signMakerCertificate(maker, device, 'WS-2000'),
                },
              ],
              // Every station really measures Berlin's weather (the one claiming Sydney included).
              sources: [
                simulatedSource({
                  sensor: 'station',
                  seed: 10 + i,
                  lat: BERLIN.lat,
                  lon: BERLIN.lon,
                  startMs: Date.now(),
                  everyMs: 400,
                }),
              ],
            },
            {
              codec: createWireCodec({
                network: LIVE_NET,
                signer: createPeerSigner(key),
                clock: systemClock,
                types: [SENSOR_DEVICE],
                nextSeq: (t) => db.nextSeq(t),
              }),
            },
          )
          return [service]
        },
      })
      await f.fund(4 + i, 10_000n * MESH)
      await registerNode(f.client(4 + i), {
        peerId: peerIdBytes(node.peerId),
        services: servicesMask(['sensor']),
        h3Cell: BigInt(`0x${h3Cell}`),
        stake: 1_000n * MESH,
      })
      stations.push({ node, service: service as SensorService, operator, claims: sensorCellOf(h3Cell) })
    }
    const { verifiers, stop } = await startInProcessVerifiers(f, {
      accounts: [1, 2, 3],
      network: LIVE_NET,
      epochDuration: EPOCH_S,
      bootstrap: [tcpAddr((stations[0] as (typeof stations)[number]).node.libp2p)],
      dir,
      logger,
      places: [BERLIN, BERLIN, BERLIN],
    })
    stops.push(stop)

    const reader = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    const genesis = f.network.parameters.genesisTime
    const epochNow = async () => Math.floor(((await reader.head()).timestamp - genesis) / EPOCH_S)
    // The first whole epoch after the verifiers started (they follow the cells once it is planned).
    const measured = (await epochNow()) + 2
    await until(async () => (await reader.postedRoots()).has(measured), 120_000, 500)
    const posted = (await reader.postedRoots()).get(measured)
    const bytes = verifiers
      .map((v) => v.store.bundle(bundleCid(posted?.digest as `0x${string}`)))
      .find(Boolean)?.bytes
    expect(bytes).toBeDefined()
    const checked = checkBundle(bytes as Uint8Array, {
      network: LIVE_NET,
      verifier: createPeerVerifier(),
      previousRoot: (await reader.postedRoots()).get(measured - 1)?.root ?? null,
    })
    if (!checked.ok) throw new Error(checked.fault)
    const { rewards } = settleBundle(checked.bundle)
    expect(checked.bundle.params.sensor.cellCapacity).toBe(5)
    expect(
      rewards.pools.sensor,
      JSON.stringify(verifiers.map((v) => ({ cells: v.agent.sensors.cells, ...v.agent.sensors.counts }))),
    ).toBeGreaterThan(0n)
    const sensor = new Map(rewards.sensor.map((s) => [s.peerId, s]))
    for (const [i, s] of stations.entries()) {
      const e = sensor.get(s.node.peerId)
      expect(e?.cell).toBe(s.claims)
      expect(e?.probes).toBeGreaterThanOrEqual(2)
      if (i === 3) {
        // The verifiers' round trips rule Sydney out.
        expect(e?.impossible.length).toBeGreaterThanOrEqual(2)
        expect(e?.weight).toBe(0n)
        expect(e?.sensors[0]?.reason).toMatch(/location impossible/)
        // The same round trips void its uptime: the node registered the Sydney cell too.
        expect(rewards.uptime.explain(s.node.peerId)).toMatchObject({ ruledOut: true, weight: 0n })
      } else {
        // Its certified station places it: the capped part of its stake counts in the uptime pool.
        expect(rewards.uptime.explain(s.node.peerId)).toMatchObject({
          ruledOut: false,
          eligible: true,
          hardware: { maker: maker.peerId },
        })
        expect(e?.sensors[0]).toMatchObject({ paid: true, maker: maker.peerId, certified: true })
        expect(e?.sensors[0]?.qualityPpm).toBeGreaterThan(800_000)
        expect(e?.reward).toBeGreaterThan(0n)
      }
    }
    await annotate(
      `epoch ${measured}: sensor pool ${rewards.pools.sensor / MESH} MESH over ${
        rewards.sensor.filter((s) => s.weight > 0n).length
      } stations; the Sydney claim ruled out by round trips of ${sensor
        .get(stations[3]?.node.peerId as string)
        ?.impossible.map((x) => `${x.rttMs} ms (≤ ${x.maxKm} km, ${x.distanceKm} km claimed)`)
        .join(', ')}`,
    )
  })
})
