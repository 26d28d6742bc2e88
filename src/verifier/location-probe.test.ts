import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { cellToParent, greatCircleDistance, latLngToCell } from 'h3-js'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../core/logger.js'
import { VirtualClock } from '../core/virtual-clock.js'
import { createPeerSigner, createPeerVerifier } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { challengeUptime, serveUptimeChallenges } from '../node/uptime.js'
import { computeEpochRewards, DEFAULT_REWARD_PARAMS, type RewardInput } from '../rewards/reward-function.js'
import { DeviceSigner } from '../sensors/device.js'
import { SENSOR_DEVICE, SENSOR_READING } from '../sensors/reading.js'
import { simulatedWeather } from '../sensors/weather.js'
import type { RegistrySnapshot } from './chain-port.js'
import { SensorJudge } from './sensor-judge.js'
import { openVerifierStore, type VerifierStore } from './store.js'

/**
 * Proof of location on the simulated network: each link's delay is what light in fibre needs for
 * the great-circle distance between the peers' true places (plus a millisecond of switching), so
 * round trips measured by the real challenge code bound where a node can be. Verifiers in Berlin,
 * Paris and Warsaw probe two nodes that are both really in Berlin: one says so, the other claims
 * Lisbon, about 2,300 km away, and gets location confidence 0.
 */

type Place = { lat: number; lon: number }
const BERLIN: Place = { lat: 52.52, lon: 13.4 }
const PARIS: Place = { lat: 48.86, lon: 2.35 }
const WARSAW: Place = { lat: 52.23, lon: 21.01 }
const LISBON: Place = { lat: 38.72, lon: -9.14 }
const NET = 'sim-net'

const stores: VerifierStore[] = []
const dirs: string[] = []
afterEach(() => {
  for (const s of stores.splice(0)) s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const km = (a: Place, b: Place) => greatCircleDistance([a.lat, a.lon], [b.lat, b.lon], 'km')

describe('proof of location on the simulated network', () => {
  it('gives 0 to a node claiming a cell 2,000 km and more from where the round trips place it', async () => {
    const clock = new VirtualClock()
    const truth = new Map<string, Place>()
    // One way: 1 ms of switching plus the distance at 200 km per ms (light in fibre).
    const net = new SimNetwork({
      seed: 7,
      clock,
      latency: (from, to) => ({
        latencyMs: 1 + km(truth.get(from) as Place, truth.get(to) as Place) / 200,
        jitterMs: 0.5,
      }),
    })
    const peer = async (place: Place) => {
      const key = await generateKeyPair('Ed25519')
      const signer = createPeerSigner(key)
      truth.set(signer.peerId, place)
      return { key, signer, port: net.createPort(signer.peerId) }
    }
    const honest = await peer(BERLIN)
    const spoofer = await peer(BERLIN)
    for (const n of [honest, spoofer]) serveUptimeChallenges(n.port, { network: NET, signer: n.signer })
    const claims = new Map([
      [honest.signer.peerId, BERLIN],
      [spoofer.signer.peerId, LISBON],
    ])
    const registry: RegistrySnapshot = {
      nodes: [...claims].map(([peerId, c], i) => ({
        peerId,
        operator: `0x${(i + 1).toString(16).padStart(40, '0')}` as `0x${string}`,
        stake: 1n,
        registeredAt: 0,
        h3Cell: latLngToCell(c.lat, c.lon, 7),
      })),
      verifiers: [],
    }
    // Each node's station, certified for its claimed cell.
    let seq = 0
    const stations = await Promise.all(
      [honest, spoofer].map(async (n) => {
        const c = claims.get(n.signer.peerId) as Place
        return new DeviceSigner({
          network: NET,
          key: await generateKeyPair('Ed25519'),
          kinds: ['temperature'],
          cell: cellToParent(latLngToCell(c.lat, c.lon, 7), 5),
          nodeCodec: createWireCodec({
            network: NET,
            signer: n.signer,
            clock,
            types: [SENSOR_DEVICE],
            nextSeq: () => ++seq,
          }),
          clock,
        })
      }),
    )
    const weather = simulatedWeather({ seed: 3, lat: BERLIN.lat, lon: BERLIN.lon })

    const observations: NonNullable<RewardInput['sensor']>[number][] = []
    for (const [name, place] of [
      ['berlin', BERLIN],
      ['paris', PARIS],
      ['warsaw', WARSAW],
    ] as const) {
      const v = await peer(place)
      const dir = mkdtempSync(join(tmpdir(), 'location-'))
      dirs.push(dir)
      const store = openVerifierStore(join(dir, 'v.db'))
      stores.push(store)
      // The real challenge: a signed nonce over the simulated link, timed on the virtual clock.
      for (const node of [honest, spoofer]) {
        for (let slot = 0; slot < 3; slot++) {
          let result: Awaited<ReturnType<typeof challengeUptime>> | undefined
          void challengeUptime(v.port, {
            network: NET,
            epoch: 1,
            node: node.signer.peerId,
            timeoutMs: 2_000,
            verifier: createPeerVerifier(),
            now: () => clock.now(),
          }).then((r) => {
            result = r
          })
          await clock.runUntil(() => result !== undefined, 5_000)
          expect(result?.answered).toBe(true)
          store.recordChallenge({
            epoch: 1,
            node: node.signer.peerId,
            slot,
            at: clock.now(),
            outcome: 'answered',
            rttMs: Math.round(result?.rttMs as number),
          })
        }
      }
      const judge = new SensorJudge(
        { network: NET, place },
        {
          port: { subscribe: () => () => undefined },
          clock,
          store,
          codec: createWireCodec({
            network: NET,
            signer: v.signer,
            clock,
            types: [SENSOR_READING],
            nextSeq: () => 1,
          }),
          verifier: createPeerVerifier(),
          logger: createLogger({ level: 'silent' }),
          epochAt: () => 1,
          registryAt: () => registry,
        },
      )
      for (let m = 0; m < 12; m++)
        for (const s of stations) {
          const at = clock.now() + m * 1_000
          expect(
            judge.take(s.sign({ kind: 'temperature', value: weather.read('temperature', at), at })),
          ).toBe('accept')
        }
      for (const o of judge.observations(1)) observations.push({ verifier: name, ...o })
    }
    const out = computeEpochRewards(
      {
        epoch: 1,
        emission: 1_000_000n,
        nodes: registry.nodes.map((n) => ({
          peerId: n.peerId,
          operator: n.operator,
          stake: 1n,
          registeredEpoch: 0,
        })),
        verifiers: ['berlin', 'paris', 'warsaw'],
        uptime: [],
        sensor: observations,
      },
      // Sensors without a maker's certificate: paid as in sets made before certified hardware.
      (({ hardware: _, ...uncertified }) => uncertified)(DEFAULT_REWARD_PARAMS),
    )
    const byNode = new Map(out.sensor.map((e) => [e.peerId, e]))
    const lying = byNode.get(spoofer.signer.peerId)
    // Berlin's round trip of about 2 ms allows 200 km, and Lisbon is 2,300 km off; Warsaw's (about
    // 12 ms) allows 1,200 km of its 2,800; Paris's (about 11 ms, 880 km away) 1,100 of its 1,450.
    expect(lying?.impossible.map((x) => x.verifier).sort()).toEqual(['berlin', 'paris', 'warsaw'])
    for (const x of lying?.impossible ?? []) expect(x.distanceKm).toBeGreaterThan(x.maxKm)
    expect(lying?.sensors[0]).toMatchObject({ locationPpm: 0, paid: false })
    const honestOne = byNode.get(honest.signer.peerId)
    expect(honestOne?.impossible).toEqual([])
    expect(honestOne?.probes).toBe(3)
    expect(honestOne?.sensors[0]?.paid).toBe(true)
    expect(out.payouts.get(registry.nodes[0]?.operator as string)).toBe(1_000_000n)
  })
})
