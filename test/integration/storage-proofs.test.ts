import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, describe, expect, it } from 'vitest'
import { registerNode } from '../../src/chain/index.js'
import { servicesMask } from '../../src/chain/services.js'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import { createPeerSigner, createPeerVerifier, peerIdBytes } from '../../src/mesh/peer-key.js'
import { createWireCodec } from '../../src/mesh/wire-codec.js'
import { getFile, putFile, repairFile, type StorageClientComponents } from '../../src/storage/client.js'
import { StorageService } from '../../src/storage/holder.js'
import { STORAGE_MESSAGES } from '../../src/storage/protocol.js'
import { bundleCid, checkBundle, settleBundle } from '../../src/verifier/bundle.js'
import { createEvmVerifierChain } from '../../src/verifier/chain-port.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'
import { startInProcessVerifiers } from '../helpers/in-process-verifiers.js'
import {
  LIVE_CELL,
  LIVE_NET,
  type LiveNode,
  LiveNodes,
  startMeshPort,
  tcpAddr,
  until,
} from '../helpers/live-node.js'

/**
 * Proof of storage end to end on the embedded chain and real libp2p: five registered storage nodes,
 * three verifiers (quorum 2). A file is stored 2-of-4 on four of them; one holder deletes its shard
 * from disk. The verifiers learn the shards from the holders' gossiped receipts, challenge random
 * chunks every epoch, and the posted epoch's bundle pays the three honest holders from the storage
 * pool and the deleter nothing from it. The verifiers then rebuild the lost shard on the fifth node
 * without the file's key, and the file still comes back identical with two more holders gone.
 */

const EPOCH_S = 8
const logger = createLogger({ level: process.env.MESHWORK_TEST_LOG ?? 'silent' })

describe('proof of storage', () => {
  const nodes = new LiveNodes()
  const dir = mkdtempSync(join(tmpdir(), 'mw-storage-proofs-'))
  const stops: (() => Promise<unknown> | unknown)[] = []
  let f: ChainFixture | undefined
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
    await nodes.stopAll()
    nodes.cleanUp()
    await f?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('counts each holder’s proven bytes, but not those of the one that deleted its shard, whose shard the verifiers rebuild on another node', async ({
    annotate,
  }) => {
    f = await startChainFixture({ quorum: 2, disputeWindow: 1, epochDuration: EPOCH_S })
    const fixture = f
    const miner = setInterval(
      () => void fixture.chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
      1_000,
    )
    stops.push(() => clearInterval(miner))

    // Five storage nodes (operators: dev accounts 4 to 8), registered with stake.
    const holders: { node: LiveNode; service: StorageService; operator: string }[] = []
    for (let i = 0; i < 5; i++) {
      let service: StorageService | undefined
      const operator = f.account(4 + i).address.toLowerCase()
      const node = await nodes.start({
        operator: operator as `0x${string}`,
        ...(holders[0] ? { bootstrap: [tcpAddr(holders[0].node.libp2p)] } : {}),
        services: (db, key) => {
          const signer = createPeerSigner(key)
          service = new StorageService(
            { network: LIVE_NET, price: 0n, quotaBytes: 64 * 2 ** 20, now: () => Date.now() },
            {
              signer,
              codec: createWireCodec({
                network: LIVE_NET,
                signer,
                clock: systemClock,
                types: [...STORAGE_MESSAGES],
                nextSeq: (t) => db.nextSeq(t),
              }),
              logger,
            },
          )
          return [service]
        },
      })
      await f.fund(4 + i, 10_000n * MESH)
      await registerNode(f.client(4 + i), {
        peerId: peerIdBytes(node.peerId),
        services: servicesMask(['storage']),
        h3Cell: BigInt(`0x${LIVE_CELL}`),
        stake: 1_000n * MESH,
      })
      holders.push({ node, service: service as StorageService, operator })
    }
    const bootstrap = [tcpAddr((holders[0] as (typeof holders)[number]).node.libp2p)]
    const { verifiers, stop } = await startInProcessVerifiers(f, {
      accounts: [1, 2, 3],
      network: LIVE_NET,
      epochDuration: EPOCH_S,
      bootstrap,
      dir,
      logger,
    })
    stops.push(stop)

    // A builder's client on the same mesh stores a file on the first four.
    // One key for the mesh and the messages it signs, as the SDK has.
    const clientKey = await generateKeyPair('Ed25519')
    const me = createPeerSigner(clientKey)
    const mesh = await startMeshPort(clientKey, bootstrap)
    stops.push(() => mesh.port.close())
    let seq = 0
    const client: StorageClientComponents = {
      port: mesh.port,
      codec: createWireCodec({
        network: LIVE_NET,
        signer: me,
        clock: systemClock,
        types: [...STORAGE_MESSAGES],
        nextSeq: () => ++seq,
      }),
      logger,
    }
    const peers = holders.map((h) => h.node.peerId)
    // Dial the holders where they listen (the SDK learns this from their advertisements).
    for (const h of holders)
      await mesh.libp2p.peerStore.merge(h.node.libp2p.peerId, { multiaddrs: h.node.libp2p.getMultiaddrs() })
    const file = new Uint8Array(400_000).map((_, i) => (i * 13) & 0xff)
    const put = await putFile(client, peers.slice(0, 4), [file], file.length, {
      k: 2,
      n: 4,
      segmentBytes: 64 * 1024,
      chunkBytes: 4_096,
      epochs: 50,
    })
    // The holder of shard 1 deletes it from its disk.
    const deleter = holders[1] as (typeof holders)[number]
    rmSync(deleter.service.held(put.cid)[0]?.path as string)

    const reader = createEvmVerifierChain(f.client(0), { deployBlock: BigInt(f.network.deployBlock) })
    const genesis = f.network.parameters.genesisTime
    const epochNow = async () => Math.floor(((await reader.head()).timestamp - genesis) / EPOCH_S)
    const learnedBy = await epochNow()
    // Every verifier learned the four shards from the gossiped receipts.
    await until(() => verifiers.every((v) => v.store.heldShards(learnedBy + 1).length === 4), 20_000, 200)

    // The first epoch the shards are challenged in gets posted; its bundle pays storage.
    const measured = learnedBy + 1
    await until(async () => (await reader.postedRoots()).has(measured), 90_000, 500)
    const posted = (await reader.postedRoots()).get(measured)
    const bytes = verifiers
      .map((v) => v.store.bundle(bundleCid(posted?.digest as `0x${string}`)))
      .find(Boolean)?.bytes
    expect(bytes).toBeDefined()
    const previous = (await reader.postedRoots()).get(measured - 1)?.root ?? null
    const checked = checkBundle(bytes as Uint8Array, {
      network: LIVE_NET,
      verifier: createPeerVerifier(),
      previousRoot: previous,
    })
    if (!checked.ok) throw new Error(checked.fault)
    const { rewards } = settleBundle(checked.bundle)
    const storage = new Map(rewards.storage.map((s) => [s.peerId, s]))
    for (const [i, h] of holders.entries()) {
      const s = storage.get(h.node.peerId)
      if (i === 1) expect(s?.weight ?? 0n).toBe(0n)
      else if (i < 4) expect(s).toMatchObject({ bytes: put.manifest.shards[i]?.bytes, operatorCap: 0n })
      else expect(s).toBeUndefined()
    }
    // These holders store for free: no rent, so no fee burned, and the work rebate cap pays proven
    // bytes nothing (bytes anyone could store for themselves earn emission only as a rebate of the
    // fees their payments burn: storage-payments.test.ts pays rent). The pool went to uptime.
    expect(rewards.pools.storage).toBe(0n)
    expect(rewards.pools.uptime).toBe(rewards.emission)
    await annotate(
      `epoch ${measured}: storage pool ${rewards.pools.storage / MESH} MESH; the deleter failed ${
        storage.get(deleter.node.peerId)?.verifiers.filter((v) => v.passed < v.challenges).length
      } of ${verifiers.length} verifiers' challenges`,
    )

    // The verifiers repair it themselves (the epoch's repairer, right after its observations went
    // out): the deleter's shard is rebuilt on the fifth node, without the key, within two epochs.
    const t0 = Date.now()
    await until(
      () => holders[4]?.service.held(put.cid).some((s) => s.shard === 1) ?? false,
      2 * EPOCH_S * 1_000,
      250,
    )
    await annotate(
      `shard 1 repaired onto the fifth node ${Math.round((Date.now() - t0) / 1000)} s after epoch ${measured} was posted`,
    )
    expect((await repairFile(client, peers, put.cid, { exclude: [deleter.node.peerId] })).repaired).toEqual(
      [],
    )
    await holders[0]?.node.stop()
    await holders[2]?.node.stop()
    const parts: Uint8Array[] = []
    await getFile(client, [peers[3] as string, peers[4] as string], put.cid, put.key, (b) => {
      parts.push(b.slice())
    })
    expect(Buffer.concat(parts).equals(Buffer.from(file))).toBe(true)
    // The holders that served this download got the builder's signed byte receipts, and every
    // verifier counted them (for the holders' delivery bandwidth, the relay pool).
    expect(holders[3]?.service.counts.receiptsServed).toBeGreaterThan(0)
    const servedIn = await epochNow()
    const servedBy = (v: (typeof verifiers)[number]) =>
      [servedIn - 2, servedIn - 1, servedIn, servedIn + 1].flatMap((e) => [...v.store.servedOf(e).entries()])
    await until(
      () => verifiers.every((v) => servedBy(v).some(([holder, s]) => holder === peers[3] && s.bytes > 0)),
      10_000,
      200,
    )
  }, 180_000)
})
