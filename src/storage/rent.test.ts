import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { buildChunkTree, type ChunkTree } from './chunk-tree.js'
import { cidOfBytes } from './file-codec.js'
import { frame, STORAGE_REQUEST, unframe } from './protocol.js'
import { type Lease, leaseOf, leasesOf, memoryLeaseStore, RentPayer, rentOf } from './rent.js'

/**
 * The rent payer against holders that answer proofs from real chunk trees (or refuse, while they do
 * not hold their shard), with payments that fail at random: whatever happens, an epoch is paid only
 * if its holder proved it in that epoch, at most once, every proven epoch is paid in the end, and a
 * lease is void exactly when `grace` epochs in a row ended unproven.
 */

const CHUNK = 1_024
const CID = cidOfBytes(new TextEncoder().encode('a file'))

interface FakeHolder {
  shard: Uint8Array
  tree: ChunkTree
  holding: boolean
}

function fakePort(holders: Map<string, FakeHolder>) {
  return {
    request: async (peer: string, _protocol: string, bytes: Uint8Array) => {
      const h = holders.get(peer)
      if (h === undefined) throw new Error('unreachable')
      const { header } = unframe(bytes, STORAGE_REQUEST)
      if (header.op !== 'prove') throw new Error('unexpected op')
      if (!h.holding) return frame({ ok: false, code: 'STORAGE_NOT_FOUND', message: 'gone' })
      const chunk = h.shard.subarray(header.chunk * CHUNK, (header.chunk + 1) * CHUNK)
      return frame(
        { ok: true, path: h.tree.path(header.chunk).map((p) => Buffer.from(p).toString('hex')) },
        chunk,
      )
    },
  }
}

function leaseOn(holder: string, h: FakeHolder, epochs: number): Lease {
  return {
    holder,
    cid: CID,
    shard: Number(holder.slice(1)),
    root: Buffer.from(h.tree.root).toString('hex'),
    bytes: h.shard.length,
    chunkBytes: CHUNK,
    operator: '0xabc',
    price: 3n << 30n,
    firstEpoch: 0,
    epochs,
    through: 0,
    missed: 0,
    paid: 1,
    owed: [],
    state: 'active',
  }
}

describe('RentPayer', () => {
  it('pays proven epochs once each, never an unproven one, and voids after the grace period', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 9 }),
        fc.integer({ min: 1, max: 3 }),
        // Per epoch and holder: holding, and how many settlements run in the epoch (0 to 2).
        fc.array(
          fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 2 })), { minLength: 4, maxLength: 4 }),
          {
            minLength: 1,
            maxLength: 10,
          },
        ),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 50 }),
        async (count, epochs, grace, script, payFails) => {
          const holders = new Map<string, FakeHolder>()
          for (let i = 0; i < count; i++) {
            const shard = randomBytes(CHUNK * 3 + 100)
            holders.set(`h${i}`, { shard, tree: buildChunkTree(shard, CHUNK), holding: true })
          }
          const paid: { holder: string; epoch: number }[] = []
          let payCall = 0
          let failing = true
          const store = memoryLeaseStore()
          const payer = new RentPayer(
            { owner: 'owner', graceEpochs: grace, timeoutMs: 1_000 },
            {
              port: fakePort(holders),
              store,
              pay: async (lease, epoch, amount) => {
                expect(amount).toBe(rentOf(lease))
                if (failing && payFails[payCall++ % payFails.length])
                  throw new Error('holder did not acknowledge')
                paid.push({ holder: lease.holder, epoch })
              },
            },
          )
          payer.add([...holders].map(([id, h]) => leaseOn(id, h, epochs)))
          // Which epochs each holder proved (it held its shard during a settlement of that epoch).
          const proved = new Map<string, Set<number>>([...holders.keys()].map((id) => [id, new Set([0])]))
          let epoch = 0
          for (const step of script) {
            epoch++
            const runs = Math.max(...step.map(([, r]) => r))
            for (let run = 0; run < runs; run++) {
              const holding = new Map<string, boolean>()
              ;[...holders].forEach(([id, h], i) => {
                const [held, r] = step[i] as [boolean, number]
                h.holding = held && run < r
                holding.set(id, h.holding)
              })
              const before = new Map(payer.leases().map((l) => [l.holder, l]))
              await payer.settle(epoch, `seed-${epoch}-${run}`)
              for (const [id, held] of holding) {
                const l = before.get(id) as Lease
                // Epochs that ended unproven since the last settlement may void it first.
                const missing = Math.max(0, Math.min(epoch - 1, epochs - 1) - l.through)
                const voids = missing > 0 && l.missed + missing >= grace
                if (held && l.state === 'active' && !voids && l.through < epoch && epoch < epochs)
                  proved.get(id)?.add(epoch)
              }
            }
          }
          // Payments stop failing: one more settlement pays whatever was owed (and settles epoch+1).
          failing = false
          for (const h of holders.values()) h.holding = false
          await payer.settle(epoch + 1, 'final')

          const keys = paid.map((p) => `${p.holder}@${p.epoch}`)
          expect(new Set(keys).size).toBe(keys.length)
          for (const lease of payer.leases()) {
            const mine = paid.filter((p) => p.holder === lease.holder).map((p) => p.epoch)
            const proven = [...(proved.get(lease.holder) as Set<number>)].filter((e) => e > 0)
            expect(mine.sort((a, b) => a - b)).toEqual(proven.sort((a, b) => a - b))
            expect(lease.paid).toBe(1 + mine.length)
            expect(lease.owed).toEqual([])
            // Void exactly when `grace` epochs in a row (before the last settled one) went unproven.
            const settled = Math.min(epoch, epochs - 1)
            let run = 0
            let voidAt: number | undefined
            for (let e = 1; e <= settled && voidAt === undefined; e++) {
              run = proved.get(lease.holder)?.has(e) ? 0 : run + 1
              if (run >= grace) voidAt = e
            }
            expect(lease.state === 'void').toBe(voidAt !== undefined)
            if (voidAt !== undefined) expect(Math.max(0, ...mine)).toBeLessThan(voidAt)
          }
        },
      ),
      { numRuns: 200 },
    )
  })

  it("leases a file's shards on their holders' terms, the first epoch paid", () => {
    const manifest = {
      chunkBytes: CHUNK,
      shards: [
        { bytes: 5_000, root: 'aa'.repeat(32) },
        { bytes: 5_000, root: 'bb'.repeat(32) },
      ],
    }
    const [a, b] = leasesOf({ cid: CID, holders: ['p', 'q'], manifest } as never, 7, 3, (h) => ({
      price: h === 'p' ? 1n << 30n : 0n,
      operator: `op-${h}`,
    }))
    expect(a).toMatchObject({
      holder: 'p',
      shard: 0,
      root: 'aa'.repeat(32),
      bytes: 5_000,
      firstEpoch: 7,
      through: 7,
      paid: 1,
      state: 'active',
      operator: 'op-p',
    })
    expect(rentOf(a as Lease)).toBe(5_000n)
    expect(b).toMatchObject({ holder: 'q', shard: 1, root: 'bb'.repeat(32), price: 0n })
    expect(leaseOf({ cid: CID, manifest }, 1, 'r', 7, 1, { price: 1n, operator: '' }).state).toBe('ended')
    expect(() => leaseOf({ cid: CID, manifest }, 2, 'r', 7, 3, { price: 1n, operator: '' })).toThrow(
      /no shard 2/,
    )
  })

  it('refuses a grace period below one epoch', () => {
    expect(
      () =>
        new RentPayer(
          { owner: 'o', graceEpochs: 0 },
          { port: fakePort(new Map()), store: memoryLeaseStore(), pay: async () => undefined },
        ),
    ).toThrow(/graceEpochs/)
  })
})
