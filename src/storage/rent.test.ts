import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { buildChunkTree, type ChunkTree } from './chunk-tree.js'
import { cidOfBytes } from './file-codec.js'
import { frame, STORAGE_REQUEST, unframe } from './protocol.js'
import { type Lease, leaseOf, leasesOf, memoryLeaseStore, openLeaseStore, RentPayer, rentOf } from './rent.js'

/**
 * The rent payer against holders that answer proofs from real chunk trees (or refuse, while they do
 * not hold their shard), settling 0 to 2 times an epoch (0: the owner was away), with payments that
 * fail at random. Whatever happens: an epoch is paid at most once; an epoch whose challenges all
 * failed is never paid; every proven epoch is paid in the end, and so is every epoch nobody checked
 * before a proof (unless a failed epoch came between); and a lease is void exactly when `grace`
 * checked epochs in a row (unchecked ones skipped) ended with failed challenges only.
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
    failed: -1,
    unchecked: [],
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
          // Per holder: epochs challenged (some settlement found the lease due) and epochs proven.
          const tried = new Map<string, Set<number>>([...holders.keys()].map((id) => [id, new Set<number>()]))
          const proved = new Map<string, Set<number>>(
            [...holders.keys()].map((id) => [id, new Set<number>()]),
          )
          let epoch = 0
          for (const step of script) {
            epoch++
            const runs = Math.max(...step.map(([, r]) => r))
            for (let run = 0; run < runs; run++) {
              ;[...holders].forEach(([, h], i) => {
                const [held, r] = step[i] as [boolean, number]
                h.holding = held && run < r
              })
              const before = new Map(payer.leases().map((l) => [l.holder, l]))
              const report = await payer.settle(epoch, `seed-${epoch}-${run}`)
              const voidedNow = new Set(report.voided.map((l) => l.holder))
              for (const [id, h] of holders) {
                const l = before.get(id) as Lease
                if (l.state !== 'active' || l.through >= epoch || epoch >= epochs || voidedNow.has(id))
                  continue
                tried.get(id)?.add(epoch)
                if (h.holding) proved.get(id)?.add(epoch)
              }
            }
          }
          // Payments stop failing: one more settlement pays whatever was owed (and closes `epoch`).
          failing = false
          for (const h of holders.values()) h.holding = false
          await payer.settle(epoch + 1, 'final')

          const keys = paid.map((p) => `${p.holder}@${p.epoch}`)
          expect(new Set(keys).size).toBe(keys.length)
          const closed = Math.min(epoch, epochs - 1)
          for (const lease of payer.leases()) {
            const mine = paid
              .filter((p) => p.holder === lease.holder)
              .map((p) => p.epoch)
              .sort((a, b) => a - b)
            const t = tried.get(lease.holder) as Set<number>
            const p = proved.get(lease.holder) as Set<number>
            // What should be paid: walk the epochs as the owner saw them.
            const expected: number[] = []
            let unchecked: number[] = []
            let run = 0
            let voidAt: number | undefined
            for (let e = 1; e <= closed + 1 && e < epochs && voidAt === undefined; e++) {
              if (p.has(e)) {
                expected.push(...unchecked, e)
                unchecked = []
                run = 0
              } else if (e > closed) {
                // The final settlement's own epoch is still open.
              } else if (t.has(e)) {
                unchecked = []
                if (++run >= grace) voidAt = e
              } else unchecked.push(e)
            }
            expect(mine).toEqual(expected)
            for (const e of mine) expect(!t.has(e) || p.has(e)).toBe(true)
            expect(lease.paid).toBe(1 + mine.length)
            expect(lease.owed).toEqual([])
            expect(lease.state === 'void').toBe(voidAt !== undefined)
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

  it('keeps leases in SQLite across a reopen, and refuses a file that is not a lease store with the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-leases-'))
    try {
      const path = join(dir, 'leases.db')
      const shard = randomBytes(CHUNK * 2)
      const lease = {
        ...leaseOn('h1', { shard, tree: buildChunkTree(shard, CHUNK), holding: true }, 5),
        owed: [3],
        unchecked: [1, 2],
        failed: 4,
      }
      let store = openLeaseStore(path)
      store.save(lease)
      store.close()
      store = openLeaseStore(path)
      expect(store.list()).toEqual([lease])
      store.close()
      writeFileSync(join(dir, 'notes.txt'), 'not a database, not at all'.repeat(100))
      expect(() => openLeaseStore(join(dir, 'notes.txt'))).toThrow(
        expect.objectContaining({
          code: 'INVALID_ARGUMENT',
          message: expect.stringMatching(/cannot open the leases/),
        }),
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
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
