import { createHash } from 'node:crypto'
import {
  closeSync,
  createReadStream,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gridDisk, latLngToCell } from 'h3-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import { createPeerSigner } from '../../src/mesh/peer-key.js'
import { createWireCodec, networkIdOf } from '../../src/mesh/wire-codec.js'
import { Meshwork } from '../../src/sdk/index.js'
import { StorageService } from '../../src/storage/holder.js'
import { STORAGE_MESSAGES } from '../../src/storage/protocol.js'
import { type LiveNode, LiveNodes, tcpAddr, until } from '../helpers/live-node.js'
import { syntheticNetworkFile } from '../helpers/synthetic-network.js'

/**
 * Storage end to end on real libp2p over loopback: seven nodes with the storage service (distinct
 * operators and cells), a builder's SDK client that puts and gets files of 0 B, 1 B, 1 MiB and
 * 100 MiB, then gets one back with N - K holders stopped.
 */

const CANARY = Buffer.from('MESHWORK-INTEGRATION-CANARY')
/** Seven neighbouring H3 cells (resolution 7, Berlin): one per holder. */
const CELLS = gridDisk(latLngToCell(52.52, 13.405, 7), 1)

/** Deterministic content with the canary every 64 KiB, written in 1 MiB steps; returns its sha-256. */
function writeFile(path: string, size: number): string {
  const hash = createHash('sha256')
  const fd = openSync(path, 'w')
  let x = 7
  for (let at = 0; at < size; at += 1 << 20) {
    const block = Buffer.alloc(Math.min(1 << 20, size - at))
    for (let i = 0; i < block.length; i++) {
      x = (x * 1664525 + 1013904223) >>> 0
      block[i] = x >>> 24
    }
    for (let c = 0; c + CANARY.length <= block.length; c += 64 * 1024) CANARY.copy(block, c)
    writeSync(fd, block)
    hash.update(block)
  }
  closeSync(fd)
  return hash.digest('hex')
}

describe('storage on the mesh', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-storage-it-'))
  const holders: { node: LiveNode; service: StorageService; dir: string }[] = []
  let mw: Meshwork

  beforeAll(async () => {
    const registry = '0x00000000000000000000000000000000000000b7'
    const net = networkIdOf({ chainId: 31337, contracts: { NodeRegistry: registry } })
    for (let i = 0; i < 7; i++) {
      const home = nodes.tempDir()
      let service: StorageService | undefined
      const node = await nodes.start({
        network: net,
        dir: home,
        cell: CELLS[i] as string,
        operator: `0x${(0xc0 + i).toString(16).padStart(40, '0')}`,
        ...(holders[0] ? { bootstrap: [tcpAddr(holders[0].node.libp2p)] } : {}),
        services: (db, key) => {
          const signer = createPeerSigner(key)
          service = new StorageService(
            { network: net, price: 0n, quotaBytes: 256 * 2 ** 20, now: () => Date.now() },
            {
              signer,
              codec: createWireCodec({
                network: net,
                signer,
                clock: systemClock,
                types: [...STORAGE_MESSAGES],
                nextSeq: (t) => db.nextSeq(t),
              }),
              logger: createLogger({ level: 'silent' }),
            },
          )
          return [service]
        },
      })
      holders.push({ node, service: service as StorageService, dir: home })
    }
    const networkPath = join(dir, 'network.json')
    writeFileSync(
      networkPath,
      JSON.stringify(
        syntheticNetworkFile({
          name: 'storage-it',
          registry,
          bootstrap: holders.slice(0, 3).map((h) => tcpAddr(h.node.libp2p)),
        }),
      ),
    )
    // libp2p refuses more than a few inbound connections a second from one host (all of this test is
    // 127.0.0.1) and seven nodes have just dialled each other: connect retries until one answers.
    mw = await Meshwork.connect({ network: networkPath })
    await until(
      () => mw.ads().filter((a) => a.ad.services.some((s) => s.name === 'storage')).length >= 7,
      20_000,
      100,
    )
  }, 60_000)

  afterAll(async () => {
    await mw?.close()
    await nodes.stopAll()
    nodes.cleanUp()
    rmSync(dir, { recursive: true, force: true })
  })

  it('round-trips 0 B, 1 B and 1 MiB byte for byte over 6 distinct operators, holders seeing ciphertext only', async () => {
    for (const size of [0, 1, 1 << 20]) {
      const path = join(dir, `file-${size}`)
      writeFile(path, size)
      const original = readFileSync(path)
      const put = await mw.storage.put(new Uint8Array(original))
      expect(new Set(put.holders).size).toBe(6)
      const back = await mw.storage.get(put.id, put.key)
      expect(Buffer.from(back.data as Uint8Array).equals(original)).toBe(true)
    }
    for (const h of holders) {
      const shards = join(h.dir, 'storage', 'shards')
      for (const cid of readdirSync(shards))
        for (const s of readdirSync(join(shards, cid)))
          expect(readFileSync(join(shards, cid, s)).indexOf(CANARY)).toBe(-1)
    }
  }, 60_000)

  it('streams 100 MiB in and out, identical, and gets 1 MiB back with N - K holders stopped', async ({
    annotate,
  }) => {
    const size = 100 * 2 ** 20
    const path = join(dir, 'big')
    const digest = writeFile(path, size)
    let t = performance.now()
    const put = await mw.storage.put(createReadStream(path, { highWaterMark: 1 << 20 }), { size })
    const putS = (performance.now() - t) / 1000
    t = performance.now()
    const hash = createHash('sha256')
    const got = await mw.storage.get(put.id, put.key, { sink: (b) => void hash.update(b) })
    const getS = (performance.now() - t) / 1000
    expect(got.bytes).toBe(size)
    expect(hash.digest('hex')).toBe(digest)
    await annotate(`100 MiB: put ${(100 / putS).toFixed(1)} MiB/s, get ${(100 / getS).toFixed(1)} MiB/s`)

    const small = join(dir, 'small')
    writeFile(small, 1 << 20)
    const original = readFileSync(small)
    const stored = await mw.storage.put(new Uint8Array(original))
    // Two of the six holders stop (N - K = 2).
    const gone = stored.holders.slice(1, 3)
    for (const h of holders) if (gone.includes(h.node.peerId)) await h.node.stop()
    const back = await mw.storage.get(stored.id, stored.key)
    expect(Buffer.from(back.data as Uint8Array).equals(original)).toBe(true)
  }, 180_000)
})
