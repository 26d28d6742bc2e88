import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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
import { challengedChunk, challengeShard } from './challenge.js'
import { verifyChunk } from './chunk-tree.js'
import { getFile, putFile, repairFile, type StorageClientComponents } from './client.js'
import { FileEncoder, manifestCid } from './file-codec.js'
import { StorageService } from './holder.js'
import {
  frame,
  frameInRoom,
  STORAGE_MESSAGES,
  STORAGE_PROTOCOL,
  STORAGE_RESPONSE,
  unframe,
} from './protocol.js'
import { newContentKey } from './sealed.js'

const NET = '31337:0xregistry'
const logger = createLogger({ level: 'silent' })
const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

const CANARY = new TextEncoder().encode('MESHWORK-STORAGE-CANARY-PLAINTEXT')

function fileOf(size: number): Uint8Array {
  const out = new Uint8Array(size)
  let x = 12345
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  for (let at = 0; at + CANARY.length <= size; at += 1_000) out.set(CANARY, at)
  return out
}

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

/** `count` holders on a simulated network (real clock, 1 ms links; the first with room for 1,000 bytes only if `tinyFirst`) and a client. */
async function mesh(count: number, options: { tinyFirst?: boolean } = {}) {
  const quotaBytes = 64 * 2 ** 20
  const net = new SimNetwork({
    seed: 3,
    clock: systemClock,
    latency: () => ({ latencyMs: 1, jitterMs: 0, lossRate: 0 }),
  })
  const dir = mkdtempSync(join(tmpdir(), 'mw-storage-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const holders: { peerId: string; service: StorageService; port: NetworkPort; dir: string }[] = []
  for (let i = 0; i < count; i++) {
    const signer = createPeerSigner(await generateKeyPair('Ed25519'))
    const port = net.createPort(signer.peerId)
    const service = new StorageService(
      {
        network: NET,
        price: 0n,
        quotaBytes: i === 0 && options.tinyFirst ? 1_000 : quotaBytes,
        now: () => Date.now(),
      },
      { signer, codec: codecOf(signer), logger },
    )
    const home = join(dir, `holder-${i}`)
    await service.start({ port, clock: systemClock, logger, dir: home })
    cleanups.push(() => service.stop())
    holders.push({ peerId: signer.peerId, service, port, dir: home })
  }
  const me = createPeerSigner(await generateKeyPair('Ed25519'))
  const client: StorageClientComponents = { port: net.createPort(me.peerId), codec: codecOf(me), logger }
  return { holders, client, peers: holders.map((h) => h.peerId) }
}

async function collect(run: (sink: (b: Uint8Array) => void) => Promise<unknown>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  await run((b) => {
    parts.push(b.slice())
  })
  return Buffer.concat(parts)
}

const OPTIONS = { k: 3, n: 5, segmentBytes: 64 * 1024, chunkBytes: 4_096 }

describe('storage protocol framing', () => {
  it('frames a body in the room before it, the bytes of frame() without copying the body', () => {
    const header = { op: 'piece', upload: 'ab'.repeat(16), shard: 3, segment: 17 }
    const backing = new Uint8Array(256 + 1_000).fill(9)
    const body = backing.subarray(256)
    body.fill(7)
    const message = frameInRoom(header, body, 256)
    expect(message).toEqual(frame(header, body))
    expect(message.buffer).toBe(backing.buffer)
    expect(message.byteOffset + message.length).toBe(backing.length)
    // Without the room (or with too little of it), a copy as frame() makes.
    for (const [b, room] of [
      [body, 8],
      [new Uint8Array(1_000).fill(7), 256],
    ] as const) {
      const copied = frameInRoom(header, b, room)
      expect(copied).toEqual(frame(header, b))
      expect(copied.buffer).not.toBe(b.buffer)
    }
  })
})

describe('storage: holders and client on a simulated mesh', () => {
  it('stores a file on N holders (skipping one without room) and gets it back byte for byte, also with N - K holders gone', async () => {
    const { holders, client, peers } = await mesh(7, { tinyFirst: true })
    const file = fileOf(300_000)
    const slices = [file.subarray(0, 100_000), file.subarray(100_000, 250_001), file.subarray(250_001)]
    const seen: number[] = []
    const put = await putFile(client, peers, slices, file.length, {
      ...OPTIONS,
      onProgress: (d) => seen.push(d),
    })
    // Holder 0 has a 1,000-byte quota: the shards went to the next five. The offers go out at once,
    // so the shard it refused went to the next candidate in line, the sixth.
    expect(put.holders).toEqual([peers[5], ...peers.slice(1, 5)])
    expect(seen.at(-1)).toBe(file.length)
    expect(put.receipts.map((r) => [r.from, r.body.shard, r.body.root])).toEqual(
      put.holders.map((h, s) => [h, s, put.manifest.shards[s]?.root]),
    )
    expect(holders[1]?.service.held(put.cid)).toHaveLength(1)

    const back = await collect((sink) => getFile(client, peers, put.cid, put.key, sink))
    expect(back.equals(Buffer.from(file))).toBe(true)
    // The holders that served pieces got the downloader's signed byte receipt (and gossiped it).
    const receipted = holders.filter((h) => h.service.counts.receiptsServed > 0).map((h) => h.peerId)
    expect(receipted.length).toBeGreaterThanOrEqual(OPTIONS.k)
    expect(receipted.every((p) => put.holders.includes(p))).toBe(true)

    // Two holders stop (one data shard, one parity): any 3 of 5 still give the file.
    await holders[1]?.service.stop()
    await holders[5]?.port.close()
    const again = await collect((sink) => getFile(client, peers, put.cid, put.key, sink))
    expect(again.equals(Buffer.from(file))).toBe(true)
  })

  it('finds a holder that serves changed bytes, and still returns the file identical', async () => {
    const { holders, client, peers } = await mesh(5)
    const file = fileOf(200_000)
    const put = await putFile(client, peers, [file], file.length, OPTIONS)
    // Holder of shard 1 (a data shard) flips a byte on its disk.
    const victim = holders[1] as (typeof holders)[number]
    const path = victim.service.held(put.cid)[0]?.path as string
    const bytes = readFileSync(path)
    bytes[10] = (bytes[10] as number) ^ 0xff
    writeFileSync(path, bytes)
    let faulty: string[] = []
    const back = await collect(async (sink) => {
      faulty = (await getFile(client, peers, put.cid, put.key, sink)).faulty
    })
    expect(back.equals(Buffer.from(file))).toBe(true)
    expect(faulty).toEqual([victim.peerId])
  })

  it('never gives a holder plaintext, and answers chunk challenges that prove against the receipt root', async () => {
    const { holders, client, peers } = await mesh(5)
    const file = fileOf(150_000)
    const put = await putFile(client, peers, [file], file.length, OPTIONS)
    for (const h of holders) {
      for (const name of readdirSync(join(h.dir, 'storage', 'shards', put.cid))) {
        const held = readFileSync(join(h.dir, 'storage', 'shards', put.cid, name))
        expect(held.indexOf(Buffer.from(CANARY))).toBe(-1)
      }
    }
    const receipt = put.receipts[2]?.body as (typeof put.receipts)[number]['body']
    const response = await client.port.request(
      put.holders[2] as string,
      STORAGE_PROTOCOL,
      frame({ op: 'prove', cid: put.cid, shard: 2, chunk: 3 }),
    )
    const { header, body } = unframe(response, STORAGE_RESPONSE)
    expect(header.ok).toBe(true)
    const path = ((header as { path?: string[] }).path ?? []).map((h) => Buffer.from(h, 'hex'))
    const count = Math.ceil(receipt.bytes / OPTIONS.chunkBytes)
    expect(verifyChunk(Buffer.from(receipt.root, 'hex'), count, 3, body, path)).toBe(true)
  })

  it('refuses malformed and out-of-order requests with codes, and a wrong key gets no plaintext', async () => {
    const { client, peers } = await mesh(5)
    const ask = async (bytes: Uint8Array, peer = peers[1] as string) =>
      unframe(await client.port.request(peer, STORAGE_PROTOCOL, bytes), STORAGE_RESPONSE).header
    expect(await ask(new Uint8Array([0, 0, 0, 200, 1]))).toMatchObject({
      ok: false,
      code: 'STORAGE_REQUEST_INVALID',
    })
    expect(await ask(frame({ op: 'get', cid: 'not a cid', shard: 0, segment: 0 }))).toMatchObject({
      ok: false,
      code: 'STORAGE_REQUEST_INVALID',
    })
    expect(await ask(frame({ op: 'piece', upload: '0'.repeat(32), shard: 0, segment: 0 }))).toMatchObject({
      ok: false,
      code: 'STORAGE_NOT_FOUND',
    })
    const file = fileOf(70_000)
    const put = await putFile(client, peers, [file], file.length, OPTIONS)
    const { key } = put
    const wrong = { ...key, key: key.key.map((b) => b ^ 1) }
    await expect(getFile(client, peers, put.cid, wrong, () => undefined)).rejects.toMatchObject({
      code: 'STORAGE_KEY_INVALID',
    })
    await expect(
      getFile(
        client,
        peers,
        'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
        key,
        () => undefined,
      ),
    ).rejects.toMatchObject({ code: 'STORAGE_NO_HOLDERS' })
  })

  it('repairs a file without its key: rebuilds the shards of stopped and excluded holders on new nodes', async () => {
    const { holders, client, peers } = await mesh(8)
    const file = fileOf(250_000)
    const put = await putFile(client, peers.slice(0, 5), [file], file.length, OPTIONS)
    // One holder stops, another is excluded (say it failed its challenges but still answers).
    await holders[0]?.service.stop()
    const excluded = put.holders[3] as string
    const r = await repairFile(client, peers, put.cid, { exclude: [excluded] })
    expect(r.repaired.map((x) => x.shard).sort()).toEqual([0, 3])
    expect(r.repaired.every((x) => peers.slice(5).includes(x.holder))).toBe(true)
    expect(r.redundancy).toBe(5)
    for (const x of r.repaired) expect(x.receipt.body.root).toBe(put.manifest.shards[x.shard]?.root)
    // Nothing left to do; and the file now comes back with two more original holders gone.
    expect((await repairFile(client, peers, put.cid, { exclude: [excluded] })).repaired).toEqual([])
    await holders[1]?.service.stop()
    await holders[2]?.service.stop()
    const back = await collect((sink) =>
      getFile(
        client,
        peers.filter((p) => p !== excluded),
        put.cid,
        put.key,
        sink,
      ),
    )
    expect(back.equals(Buffer.from(file))).toBe(true)
  })

  it('answers chunk challenges a verifier checks against the receipt: passed, a wrong root, a deleted shard, a stopped holder', async () => {
    const { holders, client, peers } = await mesh(5)
    const file = fileOf(120_000)
    const put = await putFile(client, peers, [file], file.length, OPTIONS)
    const shardOf = (s: number) => {
      const r = put.receipts[s]?.body as (typeof put.receipts)[number]['body']
      return {
        holder: put.holders[s] as string,
        cid: r.cid,
        shard: r.shard,
        root: r.root,
        bytes: r.bytes,
        chunkBytes: r.chunkBytes,
      }
    }
    // The chunk is the same for the same inputs, spread over the shard, and differs by slot.
    const a = shardOf(0)
    const chunks = Array.from({ length: 16 }, (_, slot) => challengedChunk('0xseed', 'verifier', a, slot))
    expect(challengedChunk('0xseed', 'verifier', a, 3)).toBe(chunks[3])
    expect(new Set(chunks).size).toBeGreaterThan(3)
    expect(await challengeShard(client.port, a, chunks[0] as number, 2_000)).toBe('passed')
    expect(await challengeShard(client.port, { ...a, root: 'ab'.repeat(32) }, 0, 2_000)).toBe('bad_proof')
    // A holder that deleted its shard cannot answer; a stopped one is unreachable.
    const b = shardOf(1)
    rmSync(holders[1]?.service.held(put.cid)[0]?.path as string)
    expect(await challengeShard(client.port, b, 0, 2_000)).toBe('refused')
    await holders[2]?.port.close()
    expect(await challengeShard(client.port, shardOf(2), 0, 2_000)).toBe('unreachable')
  })

  it('takes pieces a few segments out of order and writes them in order; refuses one too far ahead', async () => {
    const { client, peers } = await mesh(1)
    const holder = peers[0] as string
    const ask = async (header: unknown, body?: Uint8Array) =>
      unframe(await client.port.request(holder, STORAGE_PROTOCOL, frame(header, body)), STORAGE_RESPONSE)
        .header
    // Encode a 3-segment file 1-of-1 and send its pieces 2, 0, 1.
    const file = fileOf(3 * 8_192 - 100)
    const pieces: Uint8Array[] = []
    const key = newContentKey()
    const encoder = new FileEncoder(
      key,
      file.length,
      { k: 1, n: 1, segmentBytes: 8_192, chunkBytes: 4_096 },
      (_, p) => {
        pieces.push((p[0] as Uint8Array).slice())
      },
    )
    encoder.push(file)
    const manifest = encoder.finish()
    const upload = 'ab'.repeat(16)
    const offer = {
      op: 'offer',
      upload,
      shard: 0,
      size: file.length,
      segmentBytes: 8_192,
      chunkBytes: 4_096,
      k: 1,
      n: 1,
      epochs: 1,
    }
    expect(await ask(offer)).toEqual({ ok: true })
    expect(await ask({ op: 'piece', upload, shard: 0, segment: 9 }, pieces[0])).toMatchObject({
      ok: false,
      code: 'STORAGE_REQUEST_INVALID',
    })
    for (const segment of [2, 0, 1])
      expect(await ask({ op: 'piece', upload, shard: 0, segment }, pieces[segment])).toEqual({ ok: true })
    const sealed = unframe(
      await client.port.request(
        holder,
        STORAGE_PROTOCOL,
        frame({ op: 'seal', upload, shard: 0 }, manifestCid(manifest).bytes),
      ),
      STORAGE_RESPONSE,
    )
    expect(sealed.header).toEqual({ ok: true })
    const back = await collect((sink) => getFile(client, peers, manifestCid(manifest).cid, key, sink))
    expect(back.equals(Buffer.from(file))).toBe(true)
  })

  it('removes at start the shard files its index does not record, and keeps the rest', async () => {
    const { holders, client, peers } = await mesh(5)
    const file = fileOf(200_000)
    const put = await putFile(client, peers, [file], file.length, OPTIONS)
    const h = holders[0] as (typeof holders)[number]
    const shards = join(h.dir, 'storage', 'shards')
    const kept = readdirSync(join(shards, put.cid))
    expect(kept).toHaveLength(1)
    await h.service.stop()
    // As a crash would leave them: a shard moved in place whose row was never committed, a file's
    // directory with nothing recorded, and a stray file.
    writeFileSync(join(shards, put.cid, '4'), 'unrecorded')
    writeFileSync(join(shards, put.cid, '3'), 'unrecorded')
    mkdtempSync(join(shards, 'bafkreiother-'))
    writeFileSync(join(shards, 'stray'), 'x')
    const signer = createPeerSigner(await generateKeyPair('Ed25519'))
    const again = new StorageService(
      { network: NET, price: 0n, quotaBytes: 64 * 2 ** 20, now: () => Date.now() },
      { signer, codec: codecOf(signer), logger },
    )
    await again.start({ port: h.port, clock: systemClock, logger, dir: h.dir })
    cleanups.push(() => again.stop())
    expect(readdirSync(shards)).toEqual([put.cid])
    expect(readdirSync(join(shards, put.cid))).toEqual(kept)
    expect(again.held(put.cid)).toHaveLength(1)
    expect(again.counts.shards).toBe(1)
  })

  it('drops an upload its client abandoned, with its space, once it sat idle past the limit', async () => {
    const net = new SimNetwork({
      seed: 4,
      clock: systemClock,
      latency: () => ({ latencyMs: 1, jitterMs: 0, lossRate: 0 }),
    })
    let now = 1_000_000
    const signer = createPeerSigner(await generateKeyPair('Ed25519'))
    const port = net.createPort(signer.peerId)
    const service = new StorageService(
      { network: NET, price: 0n, quotaBytes: 100_000, uploadIdleMs: 60_000, now: () => now },
      { signer, codec: codecOf(signer), logger },
    )
    const dir = mkdtempSync(join(tmpdir(), 'mw-storage-idle-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    await service.start({ port, clock: systemClock, logger, dir })
    cleanups.push(() => service.stop())
    const client = net.createPort(createPeerSigner(await generateKeyPair('Ed25519')).peerId)
    const ask = async (header: unknown) =>
      unframe(await client.request(signer.peerId, STORAGE_PROTOCOL, frame(header)), STORAGE_RESPONSE).header
    const offer = (upload: string) => ({
      op: 'offer',
      upload,
      shard: 0,
      size: 60_000,
      segmentBytes: 65_536,
      chunkBytes: 4_096,
      k: 1,
      n: 1,
      epochs: 1,
    })
    expect(await ask(offer('01'.repeat(16)))).toEqual({ ok: true })
    // The quota is reserved: a second file of the same size does not fit.
    expect(await ask(offer('02'.repeat(16)))).toMatchObject({ ok: false, code: 'STORAGE_REFUSED' })
    now += 61_000
    expect(await ask(offer('02'.repeat(16)))).toEqual({ ok: true })
    expect(await ask({ op: 'piece', upload: '01'.repeat(16), shard: 0, segment: 0 })).toMatchObject({
      ok: false,
      code: 'STORAGE_NOT_FOUND',
    })
  })
})
