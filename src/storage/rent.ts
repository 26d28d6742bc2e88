import Database from 'better-sqlite3'
import { InvalidArgumentError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { migrate } from '../node/database.js'
import {
  type ChallengedShard,
  challengedChunk,
  challengeShard,
  type StorageChallengeOutcome,
} from './challenge.js'
import type { PutResult } from './client.js'
import { shardPrice } from './protocol.js'

/**
 * Storage rent, the owner's side: a holder is paid for each epoch its shard was proven, not up front.
 *
 * A put pays each holder the first epoch's rent once its receipt checks (the holder bills nothing
 * more at the put). From then on, once an epoch, the owner's {@link RentPayer} asks each holder for a
 * chunk of its shard it cannot predict and checks the answer against the root the holder signed, as
 * verifiers do; a proof pays that epoch's rent with the next cumulative Payments voucher. An epoch
 * whose challenges failed is never paid, and `graceEpochs` such epochs in a row void the lease: no
 * more rent, and the owner repairs the file elsewhere. An epoch the owner did not check at all (it
 * was away) is paid with the holder's next proof, unless a failed epoch comes first. So a holder
 * that deletes a shard loses its rent from the first epoch it cannot prove, the owner's money pays
 * only storage that was there, and an owner that was away owes its holders those epochs
 * (docs/protocol.md, "Storage rent").
 */

/** One shard the owner rents: where it is, what its holder signed, its terms and how far it is settled. */
export interface Lease extends ChallengedShard {
  /** The holder's operator address (the Payments channel's provider); '' for a free holder. */
  operator: string
  /** The holder's advertised price per GiB-epoch at the put, base units. */
  price: bigint
  /** The epoch of the put (its rent paid with the put) and how many epochs the lease runs. */
  firstEpoch: number
  epochs: number
  /** The last epoch settled: proven (and paid, or owed), missed, or ended unchecked. */
  through: number
  /**
   * Epochs that ended with a failed challenge and no proof, in a row (a proof resets it; an epoch
   * the owner did not check at all neither counts nor resets).
   */
  missed: number
  /** The last epoch in which a challenge failed (-1: none). */
  failed: number
  /** Epochs since the last proof that ended with no challenge at all (the owner was away): paid with the next proof. */
  unchecked: number[]
  /** Epochs paid, the put's included. */
  paid: number
  /** Proven epochs whose voucher has not been acknowledged yet (retried at the next settlement). */
  owed: number[]
  state: 'active' | 'void' | 'ended'
}

/** One epoch's rent of `lease`: ceil(price × bytes / GiB). */
export function rentOf(lease: Pick<Lease, 'price' | 'bytes'>): bigint {
  return shardPrice(lease.price, lease.bytes, 1)
}

/**
 * The payment id of epoch `epoch`'s rent of a shard (at most 64 characters, as vouchers carry them):
 * the CID's last 32 characters hold 160 bits of its hash.
 */
export function rentBillId(cid: string, shard: number, epoch: number): string {
  return `rent:${cid.slice(-32)}:${shard}:${epoch}`
}

/** The lease of shard `shard` of a file on `holder`, stored in `epoch` for `epochs` epochs, its first epoch paid. */
export function leaseOf(
  file: { cid: string; manifest: Pick<PutResult['manifest'], 'shards' | 'chunkBytes'> },
  shard: number,
  holder: string,
  epoch: number,
  epochs: number,
  terms: { price: bigint; operator: string },
): Lease {
  const s = file.manifest.shards[shard]
  if (s === undefined) throw new RangeError(`the manifest has no shard ${shard}`)
  return {
    holder,
    cid: file.cid,
    shard,
    root: s.root,
    bytes: s.bytes,
    chunkBytes: file.manifest.chunkBytes,
    operator: terms.operator,
    price: terms.price,
    firstEpoch: epoch,
    epochs,
    through: epoch,
    missed: 0,
    failed: -1,
    unchecked: [],
    paid: 1,
    owed: [],
    state: epochs > 1 ? 'active' : 'ended',
  }
}

/** The leases of a put made in `epoch`, on each holder's terms (price and operator at the put). */
export function leasesOf(
  put: Pick<PutResult, 'cid' | 'holders' | 'manifest'>,
  epoch: number,
  epochs: number,
  terms: (holder: string) => { price: bigint; operator: string },
): Lease[] {
  return put.holders.map((holder, shard) => leaseOf(put, shard, holder, epoch, epochs, terms(holder)))
}

/** Where an owner keeps its leases. `save` is durable before it returns. */
export interface LeaseStore {
  list(): Lease[]
  save(lease: Lease): void
  close(): void
}

const leaseKey = (l: Pick<Lease, 'cid' | 'shard' | 'holder'>) => `${l.cid}/${l.shard}/${l.holder}`

/** An in-memory {@link LeaseStore} (tests, the simulator). */
export function memoryLeaseStore(): LeaseStore {
  const leases = new Map<string, Lease>()
  return {
    list: () => [...leases.values()].map((l) => ({ ...l, owed: [...l.owed], unchecked: [...l.unchecked] })),
    save: (l) => void leases.set(leaseKey(l), { ...l, owed: [...l.owed], unchecked: [...l.unchecked] }),
    close: () => undefined,
  }
}

interface LeaseRow {
  cid: string
  shard: number
  holder: string
  operator: string
  root: string
  bytes: number
  chunk_bytes: number
  price: string
  first_epoch: number
  epochs: number
  through: number
  missed: number
  failed: number
  unchecked: string
  paid: number
  owed: string
  state: Lease['state']
}

const LEASE_MIGRATIONS = [
  {
    version: 1,
    description: "storage leases: an owner's shards, their terms and how far their rent is settled",
    sql: `CREATE TABLE leases (
      cid TEXT NOT NULL, shard INTEGER NOT NULL, holder TEXT NOT NULL, operator TEXT NOT NULL,
      root TEXT NOT NULL, bytes INTEGER NOT NULL, chunk_bytes INTEGER NOT NULL, price TEXT NOT NULL,
      first_epoch INTEGER NOT NULL, epochs INTEGER NOT NULL, through INTEGER NOT NULL,
      missed INTEGER NOT NULL, failed INTEGER NOT NULL, unchecked TEXT NOT NULL,
      paid INTEGER NOT NULL, owed TEXT NOT NULL, state TEXT NOT NULL,
      PRIMARY KEY (cid, shard, holder)) STRICT`,
  },
]

/** A {@link LeaseStore} in the SQLite file at `path` (created when missing; fsynced on every save). */
export function openLeaseStore(path: string): LeaseStore {
  let db: Database.Database
  try {
    db = new Database(path)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    migrate(db, LEASE_MIGRATIONS)
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err
    throw new InvalidArgumentError(`cannot open the leases at ${path}: ${(err as Error).message}`, {
      hint: 'Point --leases at the file `meshwork put` wrote, or at a new one',
      cause: err,
    })
  }
  const upsert = db.prepare(
    `INSERT OR REPLACE INTO leases VALUES (@cid, @shard, @holder, @operator, @root, @bytes, @chunk_bytes,
     @price, @first_epoch, @epochs, @through, @missed, @failed, @unchecked, @paid, @owed, @state)`,
  )
  const all = db.prepare('SELECT * FROM leases ORDER BY cid, shard, holder')
  return {
    list: () =>
      (all.all() as LeaseRow[]).map((r) => ({
        cid: r.cid,
        shard: r.shard,
        holder: r.holder,
        operator: r.operator,
        root: r.root,
        bytes: r.bytes,
        chunkBytes: r.chunk_bytes,
        price: BigInt(r.price),
        firstEpoch: r.first_epoch,
        epochs: r.epochs,
        through: r.through,
        missed: r.missed,
        failed: r.failed,
        unchecked: JSON.parse(r.unchecked) as number[],
        paid: r.paid,
        owed: JSON.parse(r.owed) as number[],
        state: r.state,
      })),
    save: (l) =>
      void upsert.run({
        cid: l.cid,
        shard: l.shard,
        holder: l.holder,
        operator: l.operator,
        root: l.root,
        bytes: l.bytes,
        chunk_bytes: l.chunkBytes,
        price: l.price.toString(),
        first_epoch: l.firstEpoch,
        epochs: l.epochs,
        through: l.through,
        missed: l.missed,
        failed: l.failed,
        unchecked: JSON.stringify(l.unchecked),
        paid: l.paid,
        owed: JSON.stringify(l.owed),
        state: l.state,
      }),
    close: () => db.close(),
  }
}

/** What one settlement did. */
export interface RentReport {
  epoch: number
  /** Leases proven this epoch (now, or earlier in the epoch), and the rent vouchers acknowledged now. */
  proven: number
  paid: bigint
  /** Leases whose proof failed now (tried again at the next settlement in the same epoch). */
  unproven: { lease: Lease; outcome: StorageChallengeOutcome }[]
  /** Epochs that ended with failed challenges and no proof, now counted as missed. */
  missed: number
  /** Leases voided now: `graceEpochs` epochs in a row with failed challenges. Their files need repair. */
  voided: Lease[]
  /** Leases that ran their course now. */
  ended: number
}

/** Options of {@link RentPayer}. */
export interface RentPayerInit {
  /** The owner's peer id (it names the challenges). */
  owner: string
  /** Epochs in a row with failed challenges and no proof that void a lease (default 2: one bad epoch is not the end). */
  graceEpochs?: number
  /** A proof's deadline, ms (default 5 s: reading a chunk from disk, not fetching it from elsewhere). */
  timeoutMs?: number
}

/**
 * Pays storage rent for proven epochs. Protocol logic only: the mesh comes in as a port, payment as
 * `pay` (a Payments voucher in the SDK, the ledger in the simulator), the epoch and the challenge
 * seed as arguments. Call {@link settle} at least once per epoch; more often retries unproven leases.
 */
export class RentPayer {
  readonly #init: Required<RentPayerInit>
  readonly #port: Pick<NetworkPort, 'request'>
  readonly #store: LeaseStore
  readonly #pay: (lease: Lease, epoch: number, amount: bigint) => Promise<void>
  readonly #logger: Logger | undefined

  constructor(
    init: RentPayerInit,
    components: {
      port: Pick<NetworkPort, 'request'>
      store: LeaseStore
      /** Pays `amount` to the lease's holder for `epoch` (waits for its acknowledgement). */
      pay: (lease: Lease, epoch: number, amount: bigint) => Promise<void>
      logger?: Logger
    },
  ) {
    if (init.graceEpochs !== undefined && (!Number.isSafeInteger(init.graceEpochs) || init.graceEpochs < 1))
      throw new RangeError('graceEpochs must be a positive integer')
    this.#init = { graceEpochs: 2, timeoutMs: 5_000, ...init }
    this.#port = components.port
    this.#store = components.store
    this.#pay = components.pay
    this.#logger = components.logger
  }

  /** Adds leases (a put's, or a repair's new holders). */
  add(leases: readonly Lease[]): void {
    for (const l of leases) this.#store.save(l)
  }

  /** Every lease, settled or not. */
  leases(): Lease[] {
    return this.#store.list()
  }

  /**
   * Settles `epoch` (the chain's current epoch): epochs of each active lease that ended with a
   * failed challenge and no proof count as missed (voiding the lease after `graceEpochs` in a row),
   * then each lease not yet proven this epoch is challenged with a chunk drawn from `seed`, and a
   * proof pays the epoch's rent and that of the unchecked epochs before it. A proof is saved before
   * its voucher is sent and each acknowledged voucher right after, so a failed epoch is never paid
   * and a paid one is paid once, across restarts too (save for a crash between a holder's
   * acknowledgement and its save).
   */
  async settle(epoch: number, seed: string): Promise<RentReport> {
    const report: RentReport = { epoch, proven: 0, paid: 0n, unproven: [], missed: 0, voided: [], ended: 0 }
    const due: Lease[] = []
    for (const lease of this.#store.list()) {
      // A void lease is paid what it proved before (owed), never more.
      if (lease.state === 'void' && lease.owed.length === 0) continue
      if (lease.state === 'active') this.#closePast(lease, epoch, report)
      if (lease.owed.length > 0 || (lease.state === 'active' && lease.through < epoch)) due.push(lease)
      else if (lease.through === epoch && lease.state === 'active') report.proven++
    }
    // Holders are asked in parallel: one slow holder does not hold up the others' rent.
    await Promise.all(due.map((lease) => this.#settleOne(lease, epoch, seed, report)))
    return report
  }

  /**
   * Closes the epochs before `epoch` that ended without a proof: one with a failed challenge is
   * missed (voiding the lease after `graceEpochs` in a row) and forfeits the unchecked epochs before
   * it; one the owner never checked waits for the next proof to be paid.
   */
  #closePast(lease: Lease, epoch: number, report: RentReport): void {
    const last = lease.firstEpoch + lease.epochs - 1
    let changed = false
    while (lease.through < Math.min(epoch - 1, last)) {
      lease.through++
      changed = true
      if (lease.failed !== lease.through) {
        lease.unchecked.push(lease.through)
        continue
      }
      lease.missed++
      lease.unchecked = []
      report.missed++
      if (lease.missed >= this.#init.graceEpochs) {
        lease.state = 'void'
        report.voided.push(lease)
        this.#logger?.info(
          { cid: lease.cid, shard: lease.shard, holder: lease.holder, missed: lease.missed },
          'a storage lease is void: its challenges failed for the grace period',
        )
        break
      }
    }
    if (lease.state === 'active' && lease.through >= last) {
      lease.state = 'ended'
      report.ended++
      changed = true
    }
    if (changed) this.#store.save(lease)
  }

  async #settleOne(lease: Lease, epoch: number, seed: string, report: RentReport): Promise<void> {
    if (lease.state === 'active' && lease.through < epoch) {
      const chunk = challengedChunk(seed, this.#init.owner, lease, 0)
      const outcome = await challengeShard(this.#port, lease, chunk, this.#init.timeoutMs)
      if (outcome !== 'passed') {
        report.unproven.push({ lease, outcome })
        if (lease.failed !== epoch) {
          lease.failed = epoch
          this.#store.save(lease)
        }
      } else this.#proven(lease, epoch, report)
    }
    await this.#payOwed(lease, report)
  }

  #proven(lease: Lease, epoch: number, report: RentReport): void {
    lease.through = epoch
    lease.missed = 0
    // The epochs it was not checked in since its last proof are paid with this one.
    lease.owed.push(...lease.unchecked, epoch)
    lease.unchecked = []
    if (lease.through >= lease.firstEpoch + lease.epochs - 1) {
      lease.state = 'ended'
      report.ended++
    }
    // Saved before paying: a crash before the voucher leaves the rent owed, paid at the next
    // settlement (only a crash between the holder's acknowledgement and the save pays it twice).
    this.#store.save(lease)
    report.proven++
  }

  async #payOwed(lease: Lease, report: RentReport): Promise<void> {
    const amount = rentOf(lease)
    while (lease.owed.length > 0) {
      const owedEpoch = lease.owed[0] as number
      try {
        await this.#pay(lease, owedEpoch, amount)
      } catch (err) {
        this.#logger?.warn(
          { err, cid: lease.cid, shard: lease.shard, holder: lease.holder, epoch: owedEpoch },
          'could not pay storage rent; will retry',
        )
        return
      }
      lease.owed.shift()
      lease.paid++
      report.paid += amount
      this.#store.save(lease)
    }
  }
}
