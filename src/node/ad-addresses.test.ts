import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../core/clock.js'
import { createLogger } from '../core/logger.js'
import { createPeerSigner, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { followAdvertisedAddresses } from './ad-addresses.js'
import { ADVERTISEMENT, type Advertisement, adTopic } from './advertisement.js'

const NET = '31337:0xregistry'
const RELAY = '12D3KooWGzh3Qm4JmXkWp1aoM3Y6rVDn3ziqBbLCj6k2w5xRyWNL'

const codecOf = (signer: PeerSigner) => {
  let seq = 0
  return createWireCodec({
    network: NET,
    signer,
    clock: systemClock,
    types: [ADVERTISEMENT],
    nextSeq: () => ++seq,
  })
}

const ad = (addrs: string[]): Advertisement => ({
  operator: '0x000000000000000000000000000000000000dEaD',
  services: [{ name: 'storage', price: '0', unit: 'GiB-epoch' }],
  resources: { cores: 2, memoryMb: 4_096, diskFreeMb: 10_000, gpus: [] },
  h3Cell: '871f1d489ffffff',
  tier: 'edge',
  version: 'test',
  addrs,
})

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('Condition not met within 5 s')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('followAdvertisedAddresses', () => {
  it('keeps the addresses of checked advertisements only (a relayed one included), and forwards them', async () => {
    const net = new SimNetwork({
      seed: 9,
      clock: systemClock,
      latency: () => ({ latencyMs: 1, jitterMs: 0, lossRate: 0 }),
    })
    const follower = createPeerSigner(await generateKeyPair('Ed25519'))
    const kept: { peer: string; addrs: string[] }[] = []
    const verdicts: string[] = []
    const port = net.createPort(follower.peerId)
    const stop = followAdvertisedAddresses(
      { network: NET },
      {
        port: {
          subscribe: (topic, handler) =>
            port.subscribe(topic, async (m) => {
              const v = await handler(m)
              verdicts.push(v)
              return v
            }),
        },
        codec: codecOf(follower),
        peerStore: {
          merge: async (peer: PeerId, data: { multiaddrs?: Multiaddr[] }) => {
            kept.push({ peer: peer.toString(), addrs: (data.multiaddrs ?? []).map((a) => a.toString()) })
            return undefined as never
          },
        },
        logger: createLogger({ level: 'silent' }),
      },
    )
    const node = createPeerSigner(await generateKeyPair('Ed25519'))
    const nodePort = net.createPort(node.peerId)
    const circuit = `/ip4/203.0.113.7/tcp/4001/p2p/${RELAY}/p2p-circuit`
    await nodePort.publish(adTopic(NET), codecOf(node).encode(ADVERTISEMENT, ad([circuit])).bytes)
    await until(() => verdicts.length === 1)
    expect(kept).toEqual([{ peer: node.peerId, addrs: [circuit] }])

    // Published by another peer than its signer, or garbage: dropped, nothing kept.
    const other = createPeerSigner(await generateKeyPair('Ed25519'))
    const otherPort = net.createPort(other.peerId)
    await otherPort.publish(
      adTopic(NET),
      codecOf(node).encode(ADVERTISEMENT, ad(['/ip4/6.6.6.6/tcp/1'])).bytes,
    )
    await otherPort.publish(adTopic(NET), new TextEncoder().encode('{"not":"an ad"'))
    await until(() => verdicts.length === 3)
    expect(verdicts).toEqual(['accept', 'reject', 'reject'])
    expect(kept).toHaveLength(1)
    stop()
  })
})
