import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { VirtualClock } from '../core/virtual-clock.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerSigner, createPeerVerifier, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { challengeUptime, serveUptimeChallenges, UPTIME_PROTOCOL, type UptimeResult } from './uptime.js'

const NET = '31337:0xregistry'

async function world() {
  const clock = new VirtualClock(0)
  const net = new SimNetwork({ seed: 3, clock, latency: () => ({ latencyMs: 20, jitterMs: 0, lossRate: 0 }) })
  const signers: PeerSigner[] = []
  for (let i = 0; i < 4; i++) signers.push(createPeerSigner(await generateKeyPair('Ed25519')))
  const [verifier, honest, other, cheat] = signers as [PeerSigner, PeerSigner, PeerSigner, PeerSigner]
  const ports = new Map<string, NetworkPort>(signers.map((s) => [s.peerId, net.createPort(s.peerId)]))
  const port = (s: PeerSigner) => ports.get(s.peerId) as NetworkPort
  const challenge = async (node: string, timeoutMs = 2_000): Promise<UptimeResult> => {
    let result: UptimeResult | undefined
    void challengeUptime(port(verifier), {
      network: NET,
      epoch: 7,
      node,
      timeoutMs,
      verifier: createPeerVerifier(),
      now: () => clock.now(),
    }).then((r) => {
      result = r
    })
    await clock.runUntil(() => result !== undefined, 60_000)
    return result as UptimeResult
  }
  return { clock, net, verifier, honest, other, cheat, port, challenge }
}

describe('uptime challenges (simulated network)', () => {
  it("counts an answer signed by the node's own key, with the round trip", async () => {
    const w = await world()
    serveUptimeChallenges(w.port(w.honest), { network: NET, signer: w.honest })
    expect(await w.challenge(w.honest.peerId)).toEqual({ answered: true, rttMs: 40 })
  })

  it('counts as missed: a node answering with another peer id’s key, and one relaying another node’s answer', async () => {
    const w = await world()
    // `cheat` holds `other`'s key and answers with it.
    serveUptimeChallenges(w.port(w.cheat), { network: NET, signer: w.other })
    expect(await w.challenge(w.cheat.peerId)).toEqual({ answered: false, missed: 'bad_signature' })

    // `other` relays every challenge to `honest` and returns its answer as its own.
    serveUptimeChallenges(w.port(w.honest), { network: NET, signer: w.honest })
    const relay = w.port(w.other)
    relay.handle(UPTIME_PROTOCOL, (request) => relay.request(w.honest.peerId, UPTIME_PROTOCOL, request))
    expect(await w.challenge(w.other.peerId)).toEqual({ answered: false, missed: 'bad_signature' })
  })

  it('counts as missed: an unreachable node, a silent one, and one that refuses', async () => {
    const w = await world()
    await w.port(w.other).close()
    expect((await w.challenge(w.other.peerId)).missed).toBe('unreachable')

    w.port(w.cheat).handle(UPTIME_PROTOCOL, () => new Promise<Uint8Array>(() => undefined))
    expect(await w.challenge(w.cheat.peerId, 500)).toEqual({ answered: false, missed: 'timeout' })

    // A node of another network refuses the challenge.
    serveUptimeChallenges(w.port(w.honest), { network: '1:0xother', signer: w.honest })
    expect(await w.challenge(w.honest.peerId)).toEqual({ answered: false, missed: 'refused' })
  })

  it('refuses what is not a challenge, and tells who sent it', async () => {
    const w = await world()
    const seen: [string, boolean][] = []
    serveUptimeChallenges(w.port(w.honest), {
      network: NET,
      signer: w.honest,
      onChallenge: (from, ok) => seen.push([from, ok]),
    })
    for (const junk of ['{}', 'not json', JSON.stringify({ v: 1, net: NET, epoch: 1, nonce: 'short' })]) {
      let code: string | undefined
      void w
        .port(w.verifier)
        .request(w.honest.peerId, UPTIME_PROTOCOL, new TextEncoder().encode(junk))
        .catch((err: { code?: string }) => {
          code = err.code
        })
      await w.clock.runUntil(() => code !== undefined, 60_000)
      expect(code).toBe('REMOTE_ERROR')
    }
    expect(seen).toEqual([
      [w.verifier.peerId, false],
      [w.verifier.peerId, false],
      [w.verifier.peerId, false],
    ])
  })
})
