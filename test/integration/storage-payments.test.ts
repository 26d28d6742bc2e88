import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getTokenBalance } from '../../src/chain/index.js'
import { chainBuilderLedger, chainProviderLedger } from '../../src/compute/chain-ledgers.js'
import { PaymentDesk, PaymentWallet } from '../../src/compute/payments.js'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import { createPeerSigner } from '../../src/mesh/peer-key.js'
import { SimNetwork } from '../../src/mesh/sim-network.js'
import { createWireCodec } from '../../src/mesh/wire-codec.js'
import { type NodeDatabase, openNodeDatabase } from '../../src/node/database.js'
import {
  getFile,
  putFile,
  type StorageClientComponents,
  type StoragePayment,
} from '../../src/storage/client.js'
import { shardBytesOf } from '../../src/storage/file-codec.js'
import { StorageService } from '../../src/storage/holder.js'
import { STORAGE_MESSAGES, shardPrice } from '../../src/storage/protocol.js'
import {
  type Lease,
  type LeaseStore,
  leasesOf,
  memoryLeaseStore,
  openLeaseStore,
  RentPayer,
  rentBillId,
} from '../../src/storage/rent.js'
import { type ChainFixture, MESH, startChainFixture } from '../helpers/chain-fixture.js'

/**
 * Paying holders per GiB-epoch on the real Payments contract: three holders with their real SQLite
 * books charge for shards; a builder's wallet opens a channel to each on first use, sends a ticket
 * with each offer and a voucher for the first epoch once the receipt checked, then pays each later
 * epoch's rent when the holder proves its shard; an unpaid put is refused with the reason; the
 * holders redeem on-chain.
 */

const BUILDER = 1
const OPERATORS = [2, 3, 4]
const PRICE = MESH // per GiB-epoch
const NET = '31337:storage-payments'
const OPTIONS = { k: 2, n: 3, segmentBytes: 64 * 1024, chunkBytes: 4_096, epochs: 10 }

let f: ChainFixture
let dir: string
// The holders' clock: epochs of a minute from the test's start, moved forward by `shift`.
const T0 = Date.now()
const EPOCH_MS = 60_000
let shift = 0
const dbs: NodeDatabase[] = []

beforeAll(async () => {
  f = await startChainFixture()
  await f.fund(BUILDER, 100n * MESH)
  dir = mkdtempSync(join(tmpdir(), 'mw-storage-payments-'))
})
afterAll(async () => {
  for (const db of dbs) db.close()
  await f.stop()
  rmSync(dir, { recursive: true, force: true })
})

async function setup() {
  const net = new SimNetwork({ seed: 5, clock: systemClock, latency: () => ({ latencyMs: 1, jitterMs: 0 }) })
  const holders: {
    peerId: string
    desk: PaymentDesk
    operator: `0x${string}`
    service: StorageService
    dir: string
  }[] = []
  for (const op of OPERATORS) {
    const signer = createPeerSigner(await generateKeyPair('Ed25519'))
    const db = openNodeDatabase(join(mkdtempSync(join(dir, 'node-')), 'node.db'))
    dbs.push(db)
    const desk = new PaymentDesk(
      { network: NET, creditJobs: 4 },
      { ledger: chainProviderLedger(f.client(op)), store: db.payments, now: () => Date.now() },
    )
    const service = new StorageService(
      {
        network: NET,
        price: PRICE,
        quotaBytes: 64 * 2 ** 20,
        now: () => Date.now() + shift,
        epochOf: (ms) => Math.floor((ms - T0) / EPOCH_MS),
        rentGraceEpochs: 2,
      },
      {
        desk,
        signer,
        codec: createWireCodec({
          network: NET,
          signer,
          clock: systemClock,
          types: [...STORAGE_MESSAGES],
          nextSeq: (t) => db.nextSeq(t),
        }),
        logger: createLogger({ level: 'silent' }),
      },
    )
    const holderDir = mkdtempSync(join(dir, 'holder-'))
    await service.start({
      port: net.createPort(signer.peerId),
      clock: systemClock,
      logger: createLogger({ level: 'silent' }),
      dir: holderDir,
    })
    holders.push({ peerId: signer.peerId, desk, operator: f.account(op).address, service, dir: holderDir })
  }
  const me = createPeerSigner(await generateKeyPair('Ed25519'))
  let seq = 0
  const client: StorageClientComponents = {
    port: net.createPort(me.peerId),
    codec: createWireCodec({
      network: NET,
      signer: me,
      clock: systemClock,
      types: [...STORAGE_MESSAGES],
      nextSeq: () => ++seq,
    }),
    logger: createLogger({ level: 'silent' }),
  }
  const wallet = new PaymentWallet(
    { network: NET, client: me.peerId, deposit: MESH },
    chainBuilderLedger(f.client(BUILDER)),
  )
  const operatorOf = (peer: string) => holders.find((h) => h.peerId === peer)?.operator as string
  // What the SDK does with its payer: the holders' price, their operators' channels.
  const payment: StoragePayment = {
    ticket: (peer, bytes) => wallet.ticket(operatorOf(peer), shardPrice(PRICE, bytes, 1)),
    pay: (peer, id, bytes) =>
      wallet.pay(client.port, peer, operatorOf(peer), id, shardPrice(PRICE, bytes, 1)),
    cancel: (peer, bytes) => wallet.cancel(operatorOf(peer), shardPrice(PRICE, bytes, 1)),
  }
  // The owner's side as the SDK wires it: a ticket (tops the channel up), then the voucher.
  const rentPayer = (store: LeaseStore) =>
    new RentPayer(
      { owner: client.port.peerId, timeoutMs: 2_000 },
      {
        port: client.port,
        store,
        pay: async (lease, epoch, amount) => {
          await wallet.ticket(lease.operator, amount)
          await wallet.pay(
            client.port,
            lease.holder,
            lease.operator,
            rentBillId(lease.cid, lease.shard, epoch),
            amount,
          )
        },
      },
    )
  return { holders, client, wallet, payment, operatorOf, rentPayer, peers: holders.map((h) => h.peerId) }
}

describe('storage payments', () => {
  it("bills each holder the first epoch's rent once per shard, is paid by voucher, and redeems on-chain", async () => {
    const s = await setup()
    const file = new Uint8Array(300_000).map((_, i) => i & 0xff)
    const put = await putFile(s.client, s.peers, [file], file.length, { ...OPTIONS, payment: s.payment })
    const each = shardPrice(PRICE, shardBytesOf(file.length, OPTIONS.segmentBytes, OPTIONS.k), 1)
    expect(each).toBeGreaterThan(0n)
    expect(s.wallet.spent).toBe(3n * each)
    for (const h of s.holders) {
      expect(h.desk.totals().unredeemed).toBe(each)
      // Redeemed on the Payments contract: the operator's balance grows by exactly one shard.
      const before = await getTokenBalance(f.client(0), h.operator)
      expect(await h.desk.redeemDue()).toBe(each)
      expect((await getTokenBalance(f.client(0), h.operator)) - before).toBe(each)
      expect(h.desk.totals().unredeemed).toBe(0n)
    }
    const back: Uint8Array[] = []
    await getFile(s.client, s.peers, put.cid, put.key, (b) => {
      back.push(b.slice())
    })
    expect(Buffer.concat(back).equals(Buffer.from(file))).toBe(true)
  })

  it('pays rent only for the epochs each holder proved; a holder that deletes its shard is paid nothing more and its lease is voided', async () => {
    const s = await setup()
    const file = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff)
    const put = await putFile(s.client, s.peers, [file], file.length, { ...OPTIONS, payment: s.payment })
    const rent = shardPrice(PRICE, shardBytesOf(file.length, OPTIONS.segmentBytes, OPTIONS.k), 1)
    const leasesPath = join(mkdtempSync(join(dir, 'owner-')), 'leases.db')
    let store = openLeaseStore(leasesPath)
    let payer = s.rentPayer(store)
    payer.add(leasesOf(put, 0, OPTIONS.epochs, (h) => ({ price: PRICE, operator: s.operatorOf(h) })))

    const e1 = await payer.settle(1, 'seed-1')
    expect(e1).toMatchObject({ proven: 3, paid: 3n * rent, missed: 0, voided: [] })
    // Settling the same epoch again pays nothing twice.
    expect(await payer.settle(1, 'seed-1b')).toMatchObject({ proven: 3, paid: 0n })

    // The first holder deletes its shard; the owner restarts (the leases are in SQLite).
    const deleter = s.holders[0] as (typeof s.holders)[number]
    rmSync(join(deleter.dir, 'storage', 'shards'), { recursive: true, force: true })
    mkdirSync(join(deleter.dir, 'storage', 'shards'), { recursive: true })
    store.close()
    store = openLeaseStore(leasesPath)
    payer = s.rentPayer(store)

    const e2 = await payer.settle(2, 'seed-2')
    expect(e2.proven).toBe(2)
    expect(e2.paid).toBe(2n * rent)
    expect(e2.unproven.map((u) => u.lease.holder)).toEqual([deleter.peerId])
    const e3 = await payer.settle(3, 'seed-3')
    expect(e3).toMatchObject({ proven: 2, paid: 2n * rent, missed: 1, voided: [] })
    // Epoch 3 ended unproven too: two in a row, the lease is void and never paid again.
    const e4 = await payer.settle(4, 'seed-4')
    expect(e4.voided.map((l) => l.holder)).toEqual([deleter.peerId])
    expect(e4.paid).toBe(2n * rent)
    const leases = payer.leases()
    expect(leases.find((l) => l.holder === deleter.peerId)).toMatchObject({ state: 'void', paid: 2 })
    for (const l of leases.filter((x) => x.holder !== deleter.peerId))
      expect(l).toMatchObject({ state: 'active', paid: 5 })
    store.close()

    // On-chain: the deleter redeems the put's epoch and the one epoch it proved; the others five.
    for (const h of s.holders) {
      const before = await getTokenBalance(f.client(0), h.operator)
      const owed = h === deleter ? 2n * rent : 5n * rent
      expect(await h.desk.redeemDue()).toBe(owed)
      expect((await getTokenBalance(f.client(0), h.operator)) - before).toBe(owed)
    }
  })

  it('a holder drops a paid shard whose rent stopped after the grace period, and every shard once its epochs are over', async () => {
    shift = 0
    const s = await setup()
    const file = new Uint8Array(150_000).map((_, i) => (i * 13) & 0xff)
    const put = await putFile(s.client, s.peers, [file], file.length, {
      ...OPTIONS,
      epochs: 6,
      payment: s.payment,
    })
    const leases = leasesOf(put, 0, 6, (h) => ({ price: PRICE, operator: s.operatorOf(h) }))
    const payer = s.rentPayer(memoryLeaseStore())
    // The owner pays every holder epoch 1, then stops paying the first.
    payer.add(leases)
    shift = EPOCH_MS
    expect((await payer.settle(1, 'one')).proven).toBe(3)
    const stopped = leases[0] as Lease
    const unpaid = s.holders.find((h) => h.peerId === stopped.holder) as (typeof s.holders)[number]
    const store = memoryLeaseStore()
    const others = s.rentPayer(store)
    others.add(payer.leases().filter((l) => l.holder !== stopped.holder))
    for (const epoch of [2, 3]) {
      shift = epoch * EPOCH_MS
      expect((await others.settle(epoch, `e${epoch}`)).proven).toBe(2)
      // Up to two epochs behind is within the grace period: nothing is dropped.
      for (const h of s.holders) expect(h.service.sweep()).toEqual({ expired: 0, unpaid: 0 })
    }
    shift = 4 * EPOCH_MS
    expect((await others.settle(4, 'e4')).proven).toBe(2)
    expect(unpaid.service.sweep()).toEqual({ expired: 0, unpaid: 1 })
    expect(unpaid.service.held(put.cid)).toEqual([])
    expect(unpaid.service.counts).toMatchObject({ shards: 0, bytes: 0, unpaid: 1 })
    for (const h of s.holders.filter((x) => x !== unpaid)) {
      expect(h.service.sweep()).toEqual({ expired: 0, unpaid: 0 })
      expect(h.service.held(put.cid)).toHaveLength(1)
    }
    // The file still comes back from the two paid holders (K = 2).
    const back: Uint8Array[] = []
    await getFile(s.client, s.peers, put.cid, put.key, (b) => void back.push(b.slice()))
    expect(Buffer.concat(back).equals(Buffer.from(file))).toBe(true)
    // Verifiers challenge the shards through epoch 6 (the receipts' six epochs from the one after
    // the put): kept then, dropped in epoch 7.
    shift = 6 * EPOCH_MS
    for (const h of s.holders.filter((x) => x !== unpaid))
      expect(h.service.sweep()).toEqual({ expired: 0, unpaid: 0 })
    shift = 7 * EPOCH_MS
    for (const h of s.holders.filter((x) => x !== unpaid)) {
      expect(h.service.sweep()).toEqual({ expired: 1, unpaid: 0 })
      expect(h.service.held(put.cid)).toEqual([])
    }
    shift = 0
  })

  it('refuses an unpaid put with the reason, and bills nothing for it', async () => {
    const s = await setup()
    const file = new Uint8Array(50_000)
    await expect(putFile(s.client, s.peers, [file], file.length, OPTIONS)).rejects.toMatchObject({
      code: 'STORAGE_NO_HOLDERS',
      message: expect.stringMatching(/PAYMENT_REQUIRED/),
    })
    for (const h of s.holders) expect(h.desk.totals().unredeemed).toBe(0n)
    expect(s.wallet.spent).toBe(0n)
  })
})
