import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../core/clock.js'
import { createLogger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerSigner, type PeerSigner } from '../mesh/peer-key.js'
import { SimNetwork } from '../mesh/sim-network.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { storageTopic } from './challenge.js'
import { getFile, putFile } from './client.js'
import { StorageService } from './holder.js'
import {
  BANDWIDTH_RECEIPT,
  type BandwidthReceiptBody,
  RELAY_RECEIPT_PROTOCOL,
  STORAGE_MESSAGES,
  STORAGE_RESPONSE,
  unframe,
} from './protocol.js'
import { ReceiptTally } from './receipt-tally.js'
import { byteReceiptsOwed } from './receipts-owed.js'
import { RelayService } from './relay-service.js'

const NET = '31337:0xregistry'
const logger = createLogger({ level: 'silent' })
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

function codecOf(signer: PeerSigner) {
  let seq = 0
  return createWireCodec({
    network: NET,
    signer,
    clock: systemClock,
    types: [...STORAGE_MESSAGES],
    nextSeq: () => ++seq,
  })
}

const SESSION = 'ab'.repeat(16)
const CID = `b${'a'.repeat(58)}`

/** A relay service on a simulated network, a downloader, and a listener on the storage topic. */
async function relayMesh() {
  const net = new SimNetwork({
    seed: 5,
    clock: systemClock,
    latency: () => ({ latencyMs: 1, jitterMs: 0, lossRate: 0 }),
  })
  const relaySigner = createPeerSigner(await generateKeyPair('Ed25519'))
  const relayPort = net.createPort(relaySigner.peerId)
  const relay = new RelayService(
    { network: NET, maxSessions: 4 },
    { codec: codecOf(relaySigner), logger, reservations: () => 3 },
  )
  await relay.start({ port: relayPort, clock: systemClock, logger, dir: tmpdir() })
  cleanups.push(() => relay.stop())
  const heard: { from: string; body: BandwidthReceiptBody }[] = []
  const listenerSigner = createPeerSigner(await generateKeyPair('Ed25519'))
  const listenerCodec = codecOf(listenerSigner)
  net.createPort(listenerSigner.peerId).subscribe(storageTopic(NET), (m) => {
    const decoded = listenerCodec.decode(m.data)
    if (decoded.ok && decoded.envelope.type === BANDWIDTH_RECEIPT.type)
      heard.push({ from: decoded.envelope.from, body: decoded.envelope.body as BandwidthReceiptBody })
    return 'accept'
  })
  const downloader = createPeerSigner(await generateKeyPair('Ed25519'))
  return {
    net,
    relay,
    relayId: relaySigner.peerId,
    heard,
    downloader,
    port: net.createPort(downloader.peerId),
  }
}

/** Hands `receipt` to the relay; resolves with its answer's header. */
async function hand(port: NetworkPort, relay: string, receipt: Uint8Array) {
  return unframe(await port.request(relay, RELAY_RECEIPT_PROTOCOL, receipt), STORAGE_RESPONSE).header
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('relayed bytes: what is owed and what is counted', () => {
  it('owes each holder what it served and each relay what it carried, nothing to a node that served changed bytes', () => {
    const owed = byteReceiptsOwed(
      new Map([
        ['h1', 100],
        ['h2', 50],
        ['bad', 70],
        ['zero', 0],
      ]),
      new Map([
        ['r', 120],
        ['h2', 30],
        ['bad', 5],
      ]),
      new Set(['bad']),
    )
    expect([...owed]).toEqual([
      ['h1', { served: 100, relayed: 0 }],
      ['h2', { served: 50, relayed: 30 }],
      ['r', { served: 0, relayed: 120 }],
    ])
    expect(byteReceiptsOwed(new Map(), new Map([['r', Number.NaN]]), new Set()).size).toBe(0)
  })

  it('tallies cumulative receipts once per session, a replay or an older one adding nothing', () => {
    const tally = new ReceiptTally(2)
    expect(tally.add('d', 's1', 100)).toBe(100)
    expect(tally.add('d', 's1', 100)).toBe(0)
    expect(tally.add('d', 's1', 40)).toBe(0)
    expect(tally.add('d', 's1', 150)).toBe(50)
    expect(tally.add('e', 's1', 10)).toBe(10)
    expect(tally.bytes).toBe(160)
    // A third session forgets the oldest (d/s1 was touched before e/s1).
    expect(tally.add('f', 's2', 1)).toBe(1)
    expect(tally.add('d', 's1', 150)).toBe(150)
    expect(tally.bytes).toBe(311)
  })
})

describe('RelayService', () => {
  it('takes a downloader’s signed receipt naming it, counts it and gossips it as is', async () => {
    const { relay, relayId, heard, downloader, port } = await relayMesh()
    const codec = codecOf(downloader)
    const receipt = codec.encode(BANDWIDTH_RECEIPT, {
      holder: relayId,
      session: SESSION,
      cid: CID,
      bytes: 5_000,
    })
    expect(await hand(port, relayId, receipt.bytes)).toEqual({ ok: true })
    // The next cumulative receipt of the session adds only the difference.
    const more = codec.encode(BANDWIDTH_RECEIPT, {
      holder: relayId,
      session: SESSION,
      cid: CID,
      bytes: 7_000,
    })
    expect(await hand(port, relayId, more.bytes)).toEqual({ ok: true })
    await until(() => heard.length === 2)
    expect(heard.map((h) => [h.from, h.body.holder, h.body.bytes])).toEqual([
      [downloader.peerId, relayId, 5_000],
      [downloader.peerId, relayId, 7_000],
    ])
    expect(relay.counts).toEqual({ receipts: 2, bytes: 7_000, refused: 0, reservations: 3 })
    expect(relay.advertise()).toMatchObject({ name: 'relay', price: '0', params: { reservations: 3 } })
  })

  it('drops and counts malformed, forged, replayed and misaddressed receipts, and keeps serving', async () => {
    const { relay, relayId, heard, downloader, port, net } = await relayMesh()
    const codec = codecOf(downloader)
    const body = { holder: relayId, session: SESSION, cid: CID, bytes: 1_000 }
    const refusals: unknown[] = []
    // Not a message at all.
    refusals.push(await hand(port, relayId, new TextEncoder().encode('{"not":"an envelope"')))
    refusals.push(await hand(port, relayId, new Uint8Array(0)))
    // Signed by someone else than the peer handing it over (a relay cannot receipt itself).
    const other = createPeerSigner(await generateKeyPair('Ed25519'))
    const forged = codecOf(other).encode(BANDWIDTH_RECEIPT, body).bytes
    refusals.push(await hand(port, relayId, forged))
    // A byte changed after signing.
    const good = codec.encode(BANDWIDTH_RECEIPT, { ...body, bytes: 2_000 }).bytes
    const tampered = new TextDecoder().decode(good).replace('"bytes":2000', '"bytes":9000')
    refusals.push(await hand(port, relayId, new TextEncoder().encode(tampered)))
    // The good one passes, then its replay is refused.
    expect(await hand(port, relayId, good)).toEqual({ ok: true })
    refusals.push(await hand(port, relayId, good))
    // Naming another node.
    refusals.push(
      await hand(port, relayId, codec.encode(BANDWIDTH_RECEIPT, { ...body, holder: other.peerId }).bytes),
    )
    expect(refusals).toHaveLength(6)
    for (const r of refusals) expect(r).toMatchObject({ ok: false, code: 'STORAGE_REQUEST_INVALID' })
    expect(relay.counts).toMatchObject({ receipts: 1, bytes: 2_000, refused: 6 })
    // An oversized request never reaches the service.
    await expect(port.request(relayId, RELAY_RECEIPT_PROTOCOL, new Uint8Array(4_096))).rejects.toMatchObject({
      code: 'REQUEST_TOO_LARGE',
    })
    await until(() => heard.length === 1)
    expect(heard[0]?.body.bytes).toBe(2_000)
    expect(net.stats().delivered).toBeGreaterThan(0)
  })

  it('is receipted by the holder and the downloader its pieces came through, each for exactly the bytes it carried', async () => {
    const { relay, relayId, heard, downloader, port, net } = await relayMesh()
    // A holder on the same simulated network, reached "through" the relay: the downloader's port
    // reports the relay for each storage request, and the holder's names it in each request's
    // context, as the libp2p port does on a circuit connection.
    const holderSigner = createPeerSigner(await generateKeyPair('Ed25519'))
    const holderPort = net.createPort(holderSigner.peerId)
    const dir = mkdtempSync(join(tmpdir(), 'mw-relay-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const holder = new StorageService(
      { network: NET, price: 0n, quotaBytes: 2 ** 24, now: () => Date.now() },
      { signer: holderSigner, codec: codecOf(holderSigner), logger },
    )
    const relayedHolderPort: NetworkPort = {
      ...holderPort,
      handle: (protocol, handler, options) =>
        holderPort.handle(
          protocol,
          (request, context) => handler(request, { ...context, relay: relayId }),
          options,
        ),
    }
    await holder.start({ port: relayedHolderPort, clock: systemClock, logger, dir })
    cleanups.push(() => holder.stop())
    const relayedPort: Pick<NetworkPort, 'peerId' | 'request'> = {
      peerId: port.peerId,
      request: (peer, protocol, data, options = {}) => {
        if (peer === holderSigner.peerId) options.onRelay?.(relayId)
        return port.request(peer, protocol, data, options)
      },
    }
    const client = { port: relayedPort, codec: codecOf(downloader), logger }
    const file = new Uint8Array(150_000).map((_, i) => (i * 31) & 0xff)
    const options = { k: 1, n: 1, segmentBytes: 64 * 1024, chunkBytes: 4_096 }
    const put = await putFile(client, [holderSigner.peerId], [file], file.length, options)
    const parts: Uint8Array[] = []
    await getFile(client, [holderSigner.peerId], put.cid, put.key, (b) => void parts.push(b.slice()))
    expect(Buffer.concat(parts).equals(Buffer.from(file))).toBe(true)
    // Every piece came through the relay, up and down: the relay is receipted for the whole shard by
    // each receiver (the holder at the seal, the downloader at the end of the get), and the holder
    // by the downloader for serving it.
    const shardBytes = put.manifest.shards[0]?.bytes as number
    await until(() => relay.counts.receipts === 2 && heard.length >= 2)
    expect(relay.counts.bytes).toBe(2 * shardBytes)
    expect(
      heard
        .filter((h) => h.body.holder === relayId)
        .map((h) => [h.from, h.body.cid, h.body.bytes])
        .sort(),
    ).toEqual(
      [
        [holderSigner.peerId, put.cid, shardBytes],
        [downloader.peerId, put.cid, shardBytes],
      ].sort(),
    )
    expect(holder.counts).toMatchObject({ receiptsServed: 1, relayReceipts: 1 })
  })
})
