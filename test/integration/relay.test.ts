import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { gridDisk, latLngToCell } from 'h3-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import type { MeshLibp2p } from '../../src/mesh/create-libp2p.js'
import type { NetworkPort } from '../../src/mesh/network-port.js'
import { createPeerSigner, createPeerVerifier } from '../../src/mesh/peer-key.js'
import { DEFAULT_RELAY_LIMITS } from '../../src/mesh/relay.js'
import { createWireCodec, networkIdOf } from '../../src/mesh/wire-codec.js'
import { followAdvertisedAddresses } from '../../src/node/ad-addresses.js'
import { ADVERTISEMENT } from '../../src/node/advertisement.js'
import type { NodeDatabase } from '../../src/node/database.js'
import { challengeUptime } from '../../src/node/uptime.js'
import { Meshwork } from '../../src/sdk/index.js'
import { storageTopic } from '../../src/storage/challenge.js'
import { getFile, putFile } from '../../src/storage/client.js'
import { StorageService } from '../../src/storage/holder.js'
import {
  BANDWIDTH_RECEIPT,
  RELAY_RECEIPT_PROTOCOL,
  STORAGE_MESSAGES,
  STORAGE_RECEIPT,
  STORAGE_RESPONSE,
  unframe,
} from '../../src/storage/protocol.js'
import { registerRelayMetrics } from '../../src/storage/relay-metrics.js'
import { RelayService } from '../../src/storage/relay-service.js'
import { BANDWIDTH_OBSERVATION } from '../../src/verifier/observation.js'
import { openVerifierStore, type VerifierStore } from '../../src/verifier/store.js'
import { VerifierAgent } from '../../src/verifier/verifier-agent.js'
import { type LiveNode, LiveNodes, startMeshPort, tcpAddr, until } from '../helpers/live-node.js'
import { syntheticNetworkFile } from '../helpers/synthetic-network.js'

/**
 * Circuit relay v2 on real libp2p over loopback: a relay node (relay server and relay service, no
 * storage), a holder that listens only through a reservation on it (no address of its own, as
 * behind NAT), and a builder's SDK client. A file put on the holder and got back comes through the
 * relay byte for byte, and the relay ends up with the signed receipts of those that received the
 * relayed bytes (the holder for the upload, the downloader for the download), gossiped on the
 * storage topic, where a verifier counts them as the relay's bandwidth.
 */

const CELLS = gridDisk(latLngToCell(48.85, 2.35, 7), 1)
const REGISTRY = '0x00000000000000000000000000000000000000c7'
const NET = networkIdOf({ chainId: 31337, contracts: { NodeRegistry: REGISTRY } })
const silent = createLogger({ level: 'silent' })

function codecFor(db: NodeDatabase, signer: ReturnType<typeof createPeerSigner>) {
  return createWireCodec({
    network: NET,
    signer,
    clock: systemClock,
    types: [...STORAGE_MESSAGES],
    nextSeq: (t) => db.nextSeq(t),
  })
}

describe('storage through a circuit relay', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-relay-it-'))
  let relayNode: LiveNode
  let relay: RelayService
  let holderNode: LiveNode
  let holder: StorageService
  let verifierPort: NetworkPort
  let verifierPeerStore: MeshLibp2p['peerStore']
  let verifierStore: VerifierStore
  let verifier: VerifierAgent
  let mw: Meshwork

  beforeAll(async () => {
    let relayLibp2p: MeshLibp2p | undefined
    relayNode = await nodes.start({
      network: NET,
      cell: CELLS[0] as string,
      operator: '0x00000000000000000000000000000000000000a1',
      mesh: { relay: { server: { ...DEFAULT_RELAY_LIMITS, maxReservations: 4 } } },
      services: (db, key) => {
        relay = new RelayService(
          { network: NET, forwardStorageTopic: true },
          {
            codec: codecFor(db, createPeerSigner(key)),
            logger: silent,
            reservations: () => relayLibp2p?.services.relay?.reservations.size ?? 0,
          },
        )
        return [relay]
      },
    })
    relayLibp2p = relayNode.libp2p
    registerRelayMetrics(relayNode.agent.metrics.registry, () => relay.counts)
    const relayAddr = tcpAddr(relayNode.libp2p)

    // A verifier's intake of the storage topic (its chain never seeds an epoch here, so it never
    // challenges; it counts delivery bandwidth as every verifier does).
    const verifierKey = await generateKeyPair('Ed25519')
    // No listen address: the holder cannot dial it, so what reaches the holder goes through the relay.
    const mesh = await startMeshPort(verifierKey, [relayAddr], undefined, { listen: [] })
    verifierPort = mesh.port
    verifierPeerStore = mesh.libp2p.peerStore
    nodes.track({ stop: () => mesh.port.close() })
    verifierStore = openVerifierStore(join(dir, 'verifier.db'))
    const verifierCodec = createWireCodec({
      network: NET,
      signer: createPeerSigner(verifierKey),
      clock: systemClock,
      types: [BANDWIDTH_RECEIPT, STORAGE_RECEIPT, BANDWIDTH_OBSERVATION, ADVERTISEMENT],
      nextSeq: (t) => verifierStore.nextSeq(t),
    })
    verifier = new VerifierAgent(
      {
        network: NET,
        schedule: { genesisTime: 0, epochDuration: 3_600 },
        challengesPerEpoch: 1,
        challengeTimeoutMs: 1_000,
      },
      {
        port: mesh.port,
        clock: systemClock,
        chain: {
          head: async () => ({ number: 0n, timestamp: Math.floor(Date.now() / 1000) }),
          firstBlockAtOrAfter: async () => undefined,
          registry: async () => {
            throw new Error('no registry in this test')
          },
        },
        store: verifierStore,
        codec: verifierCodec,
        verifier: createPeerVerifier(),
        logger: silent,
      },
    )
    verifier.start()
    // As the verifier service does: nodes are challenged where their advertisements say they are.
    const stopAds = followAdvertisedAddresses(
      { network: NET },
      { port: mesh.port, codec: verifierCodec, peerStore: mesh.libp2p.peerStore, logger: silent },
    )
    nodes.track({ stop: async () => stopAds() })

    // Behind "NAT": no listen address of its own, reachable only through its reservation.
    holderNode = await nodes.start({
      network: NET,
      cell: CELLS[1] as string,
      operator: '0x00000000000000000000000000000000000000b2',
      bootstrap: [relayAddr],
      mesh: { listen: [], relay: { via: [relayAddr] } },
      services: (db, key) => {
        const signer = createPeerSigner(key)
        holder = new StorageService(
          { network: NET, price: 0n, quotaBytes: 64 * 2 ** 20, now: () => Date.now() },
          { signer, codec: codecFor(db, signer), logger: silent },
        )
        return [holder]
      },
    })
    await until(() => holderNode.libp2p.getMultiaddrs().length > 0, 15_000)
    expect(relay.counts.reservations).toBe(1)

    const networkPath = join(dir, 'network.json')
    writeFileSync(
      networkPath,
      JSON.stringify(syntheticNetworkFile({ name: 'relay-it', registry: REGISTRY, bootstrap: [relayAddr] })),
    )
    mw = await Meshwork.connect({ network: networkPath, chain: false })
    // The holder's advertisement (with its circuit address) reaches the client through the relay.
    await until(
      () =>
        mw
          .ads()
          .some(
            (a) =>
              a.peerId === holderNode.peerId &&
              a.ad.addrs.some((addr) => addr.includes(`/p2p/${relayNode.peerId}/p2p-circuit`)),
          ),
      20_000,
      100,
    )
    await until(() => relayNode.port.topicPeers(storageTopic(NET)).includes(verifierPort.peerId), 15_000, 50)
  }, 60_000)

  afterAll(async () => {
    await verifier?.stop()
    verifierStore?.close()
    await mw?.close()
    await nodes.stopAll()
    nodes.cleanUp()
    rmSync(dir, { recursive: true, force: true })
  })

  it('serves a file put and got through the relay, identical, and the relay is receipted for the bytes it carried', async ({
    annotate,
  }) => {
    // Every address the holder has goes through the relay: nothing reaches it directly.
    const addrs = holderNode.libp2p.getMultiaddrs().map((a) => a.toString())
    expect(addrs.length).toBeGreaterThan(0)
    for (const a of addrs) expect(a).toContain(`/p2p/${relayNode.peerId}/p2p-circuit`)

    // A verifier that knows it by its peer id (from the registry) and its advertisement challenges
    // it through the relay.
    await until(
      async () =>
        (await verifierPeerStore.get(holderNode.libp2p.peerId).catch(() => undefined))?.addresses.some((a) =>
          a.multiaddr.toString().includes('/p2p-circuit'),
        ) === true,
      15_000,
      50,
    )
    const challenged = await challengeUptime(verifierPort, {
      network: NET,
      epoch: 1,
      node: holderNode.peerId,
      timeoutMs: 10_000,
      verifier: createPeerVerifier(),
      now: () => Date.now(),
    })
    expect(challenged).toMatchObject({ answered: true })

    // 5 MiB at K = N = 1: one shard of two pieces, the first a whole 4 MiB segment.
    const file = new Uint8Array(5 * 2 ** 20 + 123).map((_, i) => (i * 2_654_435_761) >>> 24)
    const put = await mw.storage.put(file, { k: 1, n: 1 })
    expect(put.holders).toEqual([holderNode.peerId])
    const t = performance.now()
    const back = await mw.storage.get(put.id, put.key)
    const getMs = performance.now() - t
    expect(Buffer.from(back.data as Uint8Array).equals(Buffer.from(file))).toBe(true)
    await annotate(`5 MiB through the relay: get in ${getMs.toFixed(0)} ms`)

    // Every piece went through the relay twice, up and down. The holder signed the relay a receipt
    // for the shard it received (at the seal), the downloader one for the shard it got back; the
    // relay took both and gossiped them, and the verifier counts them as the relay's bandwidth this
    // epoch, from two receivers (as it counts the holder's own, whose receipt the holder took).
    const shardBytes = put.manifest.shards[0]?.bytes as number
    const epoch = verifier.epochAtLocal(Date.now())
    await until(() => verifierStore.servedOf(epoch).get(relayNode.peerId)?.downloaders === 2, 10_000, 50)
    expect(relay.counts).toMatchObject({ receipts: 2, bytes: 2 * shardBytes, refused: 0 })
    expect(holder.counts.relayReceipts).toBe(1)
    expect(verifierStore.servedOf(epoch).get(relayNode.peerId)).toEqual({
      bytes: 2 * shardBytes,
      downloaders: 2,
    })
    await until(() => holder.counts.receiptsServed === 1, 10_000, 50)
    expect(verifierStore.servedOf(epoch).get(holderNode.peerId)).toEqual({
      bytes: shardBytes,
      downloaders: 1,
    })

    // The relay node's Prometheus metrics.
    const metrics = await relayNode.agent.metrics.registry.metrics()
    expect(metrics).toContain(`meshwork_node_relay_bytes_total ${2 * shardBytes}`)
    expect(metrics).toContain('meshwork_node_relay_receipts_total 2')
    expect(metrics).toContain('meshwork_node_relay_receipts_refused_total 0')
    expect(metrics).toContain('meshwork_node_relay_reservations 1')

    // Garbage, and a receipt signed by another key than the peer handing it over, are refused and
    // counted; the relay keeps serving.
    const forger = createWireCodec({
      network: NET,
      signer: createPeerSigner(await generateKeyPair('Ed25519')),
      clock: systemClock,
      types: [...STORAGE_MESSAGES],
      nextSeq: () => 1,
    })
    const forged = forger.encode(BANDWIDTH_RECEIPT, {
      holder: relayNode.peerId,
      session: 'cd'.repeat(16),
      cid: put.id,
      bytes: 2 ** 40,
    }).bytes
    for (const bad of [forged, new TextEncoder().encode('{"type":"storage/served"')]) {
      const answer = unframe(
        await verifierPort.request(relayNode.peerId, RELAY_RECEIPT_PROTOCOL, bad),
        STORAGE_RESPONSE,
      ).header
      expect(answer).toMatchObject({ ok: false, code: 'STORAGE_REQUEST_INVALID' })
    }
    expect(relay.counts).toMatchObject({ receipts: 2, bytes: 2 * shardBytes, refused: 2 })
    expect(verifierStore.servedOf(epoch).get(relayNode.peerId)?.bytes).toBe(2 * shardBytes)
  }, 90_000)
})

describe('a transfer larger than one relayed connection may carry', () => {
  const nodes = new LiveNodes()

  afterAll(async () => {
    await nodes.stopAll()
    nodes.cleanUp()
  })

  it('goes over new circuits as each one fills, instead of being cut off by the relay', async ({
    annotate,
  }) => {
    let relay: RelayService | undefined
    // Room for one 4 MiB piece upload (or two downloads) a circuit.
    const relayNode = await nodes.start({
      network: NET,
      cell: CELLS[2] as string,
      operator: '0x00000000000000000000000000000000000000a3',
      mesh: { relay: { server: { maxReservations: 2, dataBytes: 10 * 2 ** 20, durationMs: 120_000 } } },
      services: (db, key) => {
        relay = new RelayService(
          { network: NET },
          { codec: codecFor(db, createPeerSigner(key)), logger: silent, reservations: () => 0 },
        )
        return [relay]
      },
    })
    const relayAddr = tcpAddr(relayNode.libp2p)
    const holderNode = await nodes.start({
      network: NET,
      cell: CELLS[3] as string,
      operator: '0x00000000000000000000000000000000000000b4',
      bootstrap: [relayAddr],
      mesh: { listen: [], relay: { via: [relayAddr] } },
      services: (db, key) => {
        const signer = createPeerSigner(key)
        return [
          new StorageService(
            { network: NET, price: 0n, quotaBytes: 64 * 2 ** 20, now: () => Date.now() },
            { signer, codec: codecFor(db, signer), logger: silent },
          ),
        ]
      },
    })
    await until(() => holderNode.libp2p.getMultiaddrs().length > 0, 15_000)

    const clientKey = await generateKeyPair('Ed25519')
    // No listen address (as a builder's client): the holder cannot dial it directly either.
    const client = await startMeshPort(clientKey, [relayAddr], undefined, { listen: [] })
    nodes.track({ stop: () => client.port.close() })
    await client.libp2p.peerStore.merge(holderNode.libp2p.peerId, {
      multiaddrs: holderNode.libp2p
        .getMultiaddrs()
        .map((a) => multiaddr(a.toString().replace(/\/p2p\/[^/]+$/, ''))),
    })
    let circuits = 0
    client.libp2p.addEventListener('connection:open', (event) => {
      if (event.detail.remotePeer.equals(holderNode.libp2p.peerId) && event.detail.limits !== undefined)
        circuits++
    })
    let seq = 0
    const storage = {
      port: client.port,
      codec: createWireCodec({
        network: NET,
        signer: createPeerSigner(clientKey),
        clock: systemClock,
        types: [...STORAGE_MESSAGES],
        nextSeq: () => ++seq,
      }),
      logger: silent,
    }
    // 13 MiB at K = N = 1: four pieces, three of them a whole 4 MiB segment.
    const file = new Uint8Array(13 * 2 ** 20).map((_, i) => (i * 40_503) >>> 8)
    const put = await putFile(storage, [holderNode.peerId], [file], file.length, { k: 1, n: 1 })
    const parts: Uint8Array[] = []
    await getFile(storage, [holderNode.peerId], put.cid, put.key, (b) => void parts.push(b.slice()))
    expect(Buffer.concat(parts).equals(Buffer.from(file))).toBe(true)
    await annotate(`13 MiB up and down through a relay allowing 10 MiB a connection: ${circuits} circuits`)
    // 26 MiB went up and down, so at least three circuits of 10 MiB carried them, and the relay
    // cut none of them short (every request of the put and the get succeeded).
    expect(circuits).toBeGreaterThanOrEqual(Math.ceil((2 * file.length) / (10 * 2 ** 20)))
    const shardBytes = put.manifest.shards[0]?.bytes as number
    // Receipted by the holder for the upload and by the downloader for the download.
    await until(() => relay?.counts.receipts === 2, 10_000, 50)
    expect(relay?.counts.bytes).toBe(2 * shardBytes)
  }, 90_000)
})

describe('a node behind NAT keeps its reservation', () => {
  const nodes = new LiveNodes()

  afterAll(async () => {
    await nodes.stopAll()
    nodes.cleanUp()
  })

  it('starts while its relay is down, reserves once it is up, and again after it restarts', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer()
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo
        server.close(() => resolve(port))
      })
    })
    const relayKey = await generateKeyPair('Ed25519')
    const relayId = peerIdFromPrivateKey(relayKey).toString()
    const relayAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${relayId}`
    const startRelay = () =>
      nodes.start({
        key: relayKey,
        network: NET,
        cell: CELLS[4] as string,
        operator: '0x00000000000000000000000000000000000000a5',
        mesh: { listen: [`/ip4/127.0.0.1/tcp/${port}`], relay: { server: DEFAULT_RELAY_LIMITS } },
      })
    const through = (node: LiveNode) =>
      node.libp2p.getMultiaddrs().some((a) => a.toString().includes(`/p2p/${relayId}/p2p-circuit`))

    // Nothing listens at the relay's address yet: the node starts anyway, with no circuit address.
    const natted = await nodes.start({
      network: NET,
      cell: CELLS[5] as string,
      operator: '0x00000000000000000000000000000000000000b6',
      mesh: { listen: [], relay: { via: [relayAddr] } },
    })
    expect(through(natted)).toBe(false)

    let relayNode = await startRelay()
    await until(() => through(natted), 20_000, 50)
    expect(relayNode.libp2p.services.relay?.reservations.has(natted.libp2p.peerId)).toBe(true)

    // The relay restarts (same key and port): the reservation is gone, then made again.
    await relayNode.stop()
    await until(() => !through(natted), 20_000, 50)
    relayNode = await startRelay()
    await until(() => through(natted), 40_000, 50)
    expect(relayNode.libp2p.services.relay?.reservations.has(natted.libp2p.peerId)).toBe(true)
  }, 90_000)
})
