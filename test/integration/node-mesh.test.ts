import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { MeshLibp2p } from '../../src/mesh/create-libp2p.js'
import { createPeerSigner, createPeerVerifier } from '../../src/mesh/peer-key.js'
import { createWireCodec, SEQ_WINDOW } from '../../src/mesh/wire-codec.js'
import { ADVERTISEMENT, type Advertisement } from '../../src/node/advertisement.js'
import { challengeUptime, UPTIME_PROTOCOL } from '../../src/node/uptime.js'
import {
  LIVE_CELL as CELL,
  GRAYLIST_THRESHOLD,
  LiveNodes,
  LIVE_NET as NET,
  LIVE_OPERATOR as OPERATOR,
  rejectedCount,
  LIVE_RESOURCES as resources,
  startMeshPort,
  LIVE_TOPIC as TOPIC,
  LIVE_TTL_MS as TTL_MS,
  tcpAddr,
  until,
} from '../helpers/live-node.js'

/**
 * The scenarios of src/node/node-agent.test.ts, on real libp2p nodes on 127.0.0.1 with the
 * production wiring of `meshwork node start`: one libp2p node and one SQLite database per agent,
 * the advertisement topic scored by gossipsub, the wall clock.
 */

const nodes = new LiveNodes()
const startAgent = (options?: Parameters<LiveNodes['start']>[0]) => nodes.start(options)

afterEach(() => nodes.stopAll())
afterAll(() => nodes.cleanUp())

describe('node agents on real libp2p (127.0.0.1)', () => {
  it('5 nodes started from one bootstrap node each see the other 4 advertisements within 10 s', async ({
    annotate,
  }) => {
    const t0 = Date.now()
    const first = await startAgent()
    const rest = await Promise.all([1, 2, 3, 4].map(() => startAgent({ bootstrap: [tcpAddr(first.libp2p)] })))
    const nodes = [first, ...rest]
    await until(() => nodes.every((n) => n.agent.table.size === 4), 10_000)
    const elapsed = Date.now() - t0
    expect(elapsed).toBeLessThanOrEqual(10_000)
    await annotate(`all 5 tables full ${elapsed} ms after the first node started`)

    for (const n of nodes) {
      const others = nodes.filter((o) => o !== n).map((o) => o.peerId)
      expect(
        n.agent.table
          .list()
          .map((a) => a.peerId)
          .sort(),
      ).toEqual(others.sort())
    }
    const seen = first.agent.table.get(rest[0]?.peerId as string)
    expect(seen?.ad).toMatchObject({ operator: OPERATOR, h3Cell: CELL, tier: 'edge', resources })
    // Each advertisement carries where to dial its node, and it is a real listening address.
    expect(seen?.ad.addrs).toContain(tcpAddr(rest[0]?.libp2p as MeshLibp2p).replace(/\/p2p\/[^/]+$/, ''))
  })

  it('rejects forged, replayed, expired and oversized advertisements from a peer in the mesh, and keeps its valid one', async () => {
    const first = await startAgent()
    const rest = await Promise.all([1, 2, 3, 4].map(() => startAgent({ bootstrap: [tcpAddr(first.libp2p)] })))
    const victims = [first, ...rest]

    // The attacker: a libp2p node of its own, connected to every victim, with its own wire codec.
    const key = await generateKeyPair('Ed25519')
    const attacker = await startMeshPort(
      key,
      victims.map((v) => tcpAddr(v.libp2p)),
    )
    nodes.track({ stop: () => attacker.port.close() })
    const attackerId = attacker.libp2p.peerId.toString()
    await until(() => victims.every((v) => attacker.port.topicPeers(TOPIC).includes(v.peerId)))

    let seq = 2_000
    let offset = 0
    const codec = createWireCodec({
      network: NET,
      signer: createPeerSigner(key),
      clock: { now: () => Date.now() + offset },
      types: [ADVERTISEMENT],
      nextSeq: () => seq,
    })
    const ad: Advertisement = { ...first.agent.advertisement(), addrs: [] }
    const publish = (bytes: Uint8Array) => attacker.port.publish(TOPIC, bytes)

    // A valid advertisement first: every victim takes it, so that one a whole window lower
    // (SEQ_WINDOW) is a replay.
    await publish(codec.encode(ADVERTISEMENT, ad, { ttlMs: TTL_MS }).bytes)
    await until(() => victims.every((v) => v.agent.table.get(attackerId)?.seq === 2_000))

    // Forged: the body changed after signing.
    seq = 2_001
    const honest = JSON.parse(new TextDecoder().decode(codec.encode(ADVERTISEMENT, ad).bytes))
    await publish(
      new TextEncoder().encode(JSON.stringify({ ...honest, body: { ...honest.body, tier: 'cloud' } })),
    )
    // Replayed: further below the sequence number the victims hold than the window reaches.
    seq = 2_000 - SEQ_WINDOW
    await publish(codec.encode(ADVERTISEMENT, ad).bytes)
    // Expired: signed two minutes ago with a one-minute validity.
    seq = 2_002
    offset = -120_000
    await publish(codec.encode(ADVERTISEMENT, ad, { ttlMs: TTL_MS }).bytes)
    offset = 0
    // Oversized: above the advertisement's 8 KiB cap.
    await publish(new Uint8Array(9_000))

    const reasons = ['bad_signature', 'replay', 'expired', 'too_large']
    await until(async () => {
      for (const v of victims) {
        for (const reason of reasons) if ((await rejectedCount(v.agent, reason)) < 1) return false
      }
      return true
    })
    for (const v of victims) {
      for (const reason of reasons) expect(await rejectedCount(v.agent, reason)).toBe(1)
      // The valid advertisement stays, with its sequence number and the body that was signed.
      const held = v.agent.table.get(attackerId)
      expect(held?.seq).toBe(2_000)
      expect(held?.ad).toEqual(ad)
      expect(held?.ad.tier).toBe('edge')
      // A rejected message is not relayed, and each costs its sender: four rejections take the
      // attacker below gossipsub's graylist threshold, where its RPCs are ignored.
      await until(() => v.libp2p.services.pubsub.getScore(attackerId) < GRAYLIST_THRESHOLD)
    }
  })

  it('keeps its peer id and continues its advertisement sequence across a restart', async () => {
    const b = await startAgent()
    const a = await startAgent({ bootstrap: [tcpAddr(b.libp2p)] })
    await until(() => b.agent.table.get(a.peerId) !== undefined)
    const before = b.agent.table.get(a.peerId)?.seq as number

    await a.stop()
    await until(() => !b.port.peers().includes(a.peerId))
    // The same key and database, as after a process restart.
    const again = await startAgent({ key: a.key, dbPath: a.dbPath, bootstrap: [tcpAddr(b.libp2p)] })
    expect(again.peerId).toBe(a.peerId)
    await until(() => (b.agent.table.get(a.peerId)?.seq ?? 0) > before)
    expect(b.agent.table.get(a.peerId)?.seq).toBeGreaterThan(before)
  })

  it("answers a verifier's uptime challenge with its own key, and a relayed answer does not count", async () => {
    const node = await startAgent()
    const relayNode = await startAgent({ bootstrap: [tcpAddr(node.libp2p)] })
    const verifierKey = await generateKeyPair('Ed25519')
    const verifier = await startMeshPort(verifierKey, [tcpAddr(node.libp2p), tcpAddr(relayNode.libp2p)])
    nodes.track({ stop: () => verifier.port.close() })
    const challenge = (peer: string) =>
      challengeUptime(verifier.port, {
        network: NET,
        epoch: 3,
        node: peer,
        timeoutMs: 5_000,
        verifier: createPeerVerifier(),
        now: () => Date.now(),
      })
    const answered = await challenge(node.peerId)
    expect(answered.answered).toBe(true)
    expect(answered.rttMs).toBeLessThan(5_000)

    // The relay forwards challenges to `node` and returns its answers as its own.
    relayNode.port.unhandle(UPTIME_PROTOCOL)
    relayNode.port.handle(UPTIME_PROTOCOL, (request) =>
      relayNode.port.request(node.peerId, UPTIME_PROTOCOL, request),
    )
    expect(await challenge(relayNode.peerId)).toEqual({ answered: false, missed: 'bad_signature' })
  })
})
