import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { latLngToCell } from 'h3-js'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerSigner, createPeerVerifier } from '../../src/mesh/peer-key.js'
import { challengeUptime, serveUptimeChallenges } from '../../src/node/uptime.js'
import { FIBRE_KM_PER_RTT_MS } from '../../src/rewards/reward-function.js'
import { locationConfidence } from '../../src/sensors/location.js'
import { startDelayRelay } from '../helpers/delay-relay.js'
import { startMeshPort } from '../helpers/live-node.js'

/**
 * Proof of location over real sockets: a node on loopback is reached through a relay that adds a
 * set delay each way, as distance would. The verifier's real uptime challenges over libp2p measure
 * the round trip; a claim farther than light in fibre covers in that time is impossible. With a
 * millisecond each way the node cannot be in Sydney (16,000 km from the verifier in Berlin); with
 * 100 ms each way it can.
 */

const NET = 'delay-net'
const BERLIN = { lat: 52.52, lon: 13.4 }
const SYDNEY_CELL = latLngToCell(-33.87, 151.21, 5)

const stops: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop()
})

/** The fastest of five challenges from a verifier to a node reached through a relay adding `delayMs` each way. */
async function fastestRtt(delayMs: number): Promise<number> {
  const nodeKey = await generateKeyPair('Ed25519')
  const node = await startMeshPort(nodeKey, [])
  stops.push(() => node.libp2p.stop())
  serveUptimeChallenges(node.port, { network: NET, signer: createPeerSigner(nodeKey) })
  const tcp = node.libp2p
    .getMultiaddrs()
    .find((a) => !a.toString().includes('/ws'))
    ?.toString() as string
  const port = Number(/\/tcp\/(\d+)/.exec(tcp)?.[1])
  const relay = await startDelayRelay({ host: '127.0.0.1', port }, delayMs)
  stops.push(() => relay.stop())
  const verifier = await startMeshPort(await generateKeyPair('Ed25519'), [])
  stops.push(() => verifier.libp2p.stop())
  // The verifier knows the node only through the relay.
  await verifier.libp2p.dial(multiaddr(`/ip4/127.0.0.1/tcp/${relay.port}/p2p/${node.port.peerId}`))
  const rtts: number[] = []
  for (let i = 0; i < 5; i++) {
    const r = await challengeUptime(verifier.port, {
      network: NET,
      epoch: 1,
      node: node.port.peerId,
      timeoutMs: 5_000,
      verifier: createPeerVerifier(),
      now: () => performance.now(),
    })
    expect(r.answered).toBe(true)
    rtts.push(r.rttMs as number)
  }
  return Math.min(...rtts)
}

describe('proof of location over real sockets', () => {
  it('rules a far claim out on a short round trip and allows it on a long one', async ({ annotate }) => {
    const near = await fastestRtt(1)
    const far = await fastestRtt(100)
    expect(far).toBeGreaterThanOrEqual(200)
    const probe = (rttMs: number) => [{ verifier: 'berlin', ...BERLIN, rttMs: Math.ceil(rttMs) }]
    const impossible = locationConfidence(SYDNEY_CELL, probe(near), 1)
    expect(impossible.confidence).toBe(0)
    expect(impossible.impossible[0]?.distanceKm).toBeGreaterThan(FIBRE_KM_PER_RTT_MS * Math.ceil(near))
    expect(locationConfidence(SYDNEY_CELL, probe(far), 1)).toEqual({ confidence: 1, impossible: [] })
    await annotate(
      `round trip ${near.toFixed(1)} ms with 1 ms added each way (Sydney impossible: ≤ ${FIBRE_KM_PER_RTT_MS * Math.ceil(near)} km), ${far.toFixed(1)} ms with 100 ms (possible)`,
    )
  })
})
