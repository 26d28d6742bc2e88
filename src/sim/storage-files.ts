import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { PeerSigner } from '../mesh/peer-key.js'
import { createWireCodec } from '../mesh/wire-codec.js'
import { storageTopic } from '../storage/challenge.js'
import { getFile, putFile } from '../storage/client.js'
import { StorageService } from '../storage/holder.js'
import { rankHolders, type StorageCandidate } from '../storage/placement.js'
import { BANDWIDTH_RECEIPT, STORAGE_RECEIPT, type StorageReceiptBody } from '../storage/protocol.js'
import { leasesOf, memoryLeaseStore, RentPayer } from '../storage/rent.js'
import type { ContentKey } from '../storage/sealed.js'
import { seedBytes } from './random.js'
import { MESH, type World } from './world.js'

/** What a simulated builder stores, and who deletes what it holds. */
export interface StorageDemand {
  /** Files stored early in epoch 0, one per this many nodes (at least 2). */
  nodesPerFile: number
  /** Plaintext bytes of each file, data shards K and total shards N. */
  bytes: number
  k: number
  n: number
  /** A cohort that asks {@link UNDERCUT_PRICE_MESH} (placement then ranks its nodes first). */
  undercut?: string
  /** A cohort whose identities delete every shard they are given, before the next epoch's challenges. */
  deleters?: string
}

/** What an honest holder asks per shard and epoch, MESH (the first epoch paid at the put, then rent for proven epochs). */
export const STORAGE_PRICE_MESH = 10
/** What holding a shard for an epoch costs its holder (disk, power), MESH. */
export const STORAGE_COST_MESH = 5
/** An undercutting cohort's price (a deleter keeps no disk, so any price pays it): placement ranks it first. */
export const UNDERCUT_PRICE_MESH = 5
/** Chunks of a shard that verifiers challenge (16 KiB, the production size). */
const CHUNK_BYTES = 16 * 1024

/** A shard held by its signed receipt, as the network saw it gossiped. */
export interface HeldShard {
  holder: string
  cid: string
  shard: number
  storedAtMs: number
  /** Placed by the builder's put (paid), not by a verifier's repair. */
  put: boolean
}

/** What the storage side of a run did. */
export interface StorageOutcome {
  files: number
  /** Every shard receipt, the builder's puts and the verifiers' repairs. */
  shards: HeldShard[]
  /** What the builder paid each holder (base units), by voucher: the put's first epoch and each proven epoch's rent. */
  payments: { holder: string; amount: bigint; epoch: number }[]
  /** Files the builder got back byte for byte in the last epoch (of those checked). */
  intact: number
  checked: number
}

/** The bytes of file `i` (deterministic from the seed). */
function fileBytes(seed: number, i: number, size: number): Uint8Array {
  const out = new Uint8Array(size)
  for (let at = 0, block = 0; at < size; at += 32, block++)
    out.set(seedBytes(seed, 'file', i, block).subarray(0, Math.min(32, size - at)), at)
  return out
}

function fileKey(seed: number, i: number): ContentKey {
  return {
    key: seedBytes(seed, 'file-key', i),
    noncePrefix: seedBytes(seed, 'file-nonce', i).subarray(0, 16),
  }
}

/**
 * The storage side of a stack-engine run: every identity runs the node's `StorageService` (the
 * production holder, with a directory of its own under a temporary root) while its machine is on; a
 * builder stores the run's files with the production client (`putFile`, placement by `rankHolders`)
 * early in epoch 0, paying each holder the first epoch, and each later epoch pays the rent of the
 * shards their holders prove to it (the production `RentPayer`); deleters wipe their shards at the
 * start of every epoch; in the last epoch the builder reads every file back (`getFile`).
 */
export class SimStorage {
  readonly #world: World
  readonly #demand: StorageDemand
  readonly #root = mkdtempSync(join(tmpdir(), 'meshwork-sim-storage-'))
  readonly #services = new Map<number, StorageService>()
  readonly #seqs = new Map<number, number>()
  readonly #clock: Clock
  readonly #network: string
  readonly #logger: Logger
  readonly #outcome: StorageOutcome = { files: 0, shards: [], payments: [], intact: 0, checked: 0 }
  /** Shards the builder's puts placed, and every shard whose receipt was seen, by holder/cid/shard. */
  readonly #puts = new Set<string>()
  readonly #seen = new Set<string>()
  readonly #stored: { cid: string; key: ContentKey; bytes: Uint8Array }[] = []
  #rent: RentPayer | undefined

  constructor(world: World, demand: StorageDemand, init: { clock: Clock; network: string; logger: Logger }) {
    this.#world = world
    this.#demand = demand
    this.#clock = init.clock
    this.#network = init.network
    this.#logger = init.logger
  }

  /** What the run stored (a receipt is a put's when the builder's put placed it, else a repair's). */
  get outcome(): StorageOutcome {
    return {
      ...this.#outcome,
      shards: this.#outcome.shards.map((x) => ({
        ...x,
        put: this.#puts.has(`${x.holder}/${x.cid}/${x.shard}`),
      })),
    }
  }

  /** How many files the run stores. */
  get files(): number {
    return Math.max(2, Math.round(this.#world.fleet.identities.length / this.#demand.nodesPerFile))
  }

  #codec(signer: PeerSigner, index: number) {
    return createWireCodec({
      network: this.#network,
      signer,
      clock: this.#clock,
      types: [STORAGE_RECEIPT, BANDWIDTH_RECEIPT],
      nextSeq: () => {
        const next = (this.#seqs.get(index) ?? 0) + 1
        this.#seqs.set(index, next)
        return next
      },
    })
  }

  /** Starts identity `index`'s holder on `port` (its machine came on). */
  async start(index: number, port: NetworkPort): Promise<void> {
    let service = this.#services.get(index)
    if (service === undefined) {
      service = new StorageService(
        {
          network: this.#network,
          price: this.#priceOf(index) * MESH,
          quotaBytes: 1 << 30,
          now: () => this.#clock.now(),
          // Flushed on the event loop: a flush in the thread pool would let real time order events.
          flush: 'inline',
        },
        {
          signer: this.#world.signerOf(index),
          codec: this.#codec(this.#world.signerOf(index), index),
          logger: this.#logger,
        },
      )
      this.#services.set(index, service)
    }
    await service.start({
      port,
      clock: this.#clock,
      logger: this.#logger,
      dir: join(this.#root, String(index)),
    })
  }

  /** Stops identity `index`'s holder (its machine goes off; its disk keeps the shards). */
  async stop(index: number): Promise<void> {
    await this.#services.get(index)?.stop()
  }

  #priceOf(index: number): bigint {
    const cohort = this.#world.fleet.identities[index]?.cohort
    return BigInt(cohort === this.#demand.undercut ? UNDERCUT_PRICE_MESH : STORAGE_PRICE_MESH)
  }

  /** What identity `index` charges for a shard kept `epochs` epochs, base units. */
  shardPrice(index: number, epochs: number): bigint {
    return this.#priceOf(index) * BigInt(epochs) * MESH
  }

  /** Records every receipt gossiped on the storage topic (puts and repairs). */
  watch(port: Pick<NetworkPort, 'subscribe'>, signer: PeerSigner): void {
    const codec = this.#codec(signer, -1)
    port.subscribe(storageTopic(this.#network), (message) => {
      const decoded = codec.decode(message.data)
      if (!decoded.ok || decoded.envelope.type !== STORAGE_RECEIPT.type) return 'ignore'
      const r = decoded.envelope.body as StorageReceiptBody
      const key = `${decoded.envelope.from}/${r.cid}/${r.shard}`
      if (!this.#seen.has(key)) {
        this.#seen.add(key)
        this.#outcome.shards.push({
          holder: decoded.envelope.from,
          cid: r.cid,
          shard: r.shard,
          storedAtMs: r.storedAt,
          put: false,
        })
      }
      return 'accept'
    })
  }

  /**
   * The builder stores the run's files one after another on the holders placement ranks first among
   * the identities online now, for `epochs` epochs: it pays each holder the first epoch (`pay`) and
   * keeps the leases for {@link payRent}.
   */
  async putAll(
    port: NetworkPort,
    signer: PeerSigner,
    online: (index: number) => boolean,
    epochs: number,
    pay: (index: number, amount: bigint) => void,
  ): Promise<void> {
    const c = { port, codec: this.#codec(signer, -2), logger: this.#logger }
    const indexOf = new Map(this.#world.peerIds.map((p, i) => [p, i]))
    const rent = new RentPayer(
      { owner: port.peerId },
      {
        port,
        store: memoryLeaseStore(),
        logger: this.#logger,
        // The simulated price is per shard-epoch whatever the shard's size.
        pay: async (lease, epoch) => {
          const index = indexOf.get(lease.holder) as number
          const amount = this.shardPrice(index, 1)
          this.#outcome.payments.push({ holder: lease.holder, amount, epoch })
          pay(index, amount)
        },
      },
    )
    this.#rent = rent
    for (let i = 0; i < this.files; i++) {
      const candidates: StorageCandidate[] = this.#world.fleet.identities
        .filter((id) => online(id.index))
        .map((id) => ({
          peerId: this.#world.peerIds[id.index] as string,
          operator: this.#world.operators[id.index] as string,
          cell: id.claimed.cell,
          freeBytes: 1 << 30,
          price: this.#priceOf(id.index),
          rttMs: this.#world.latency(port.peerId, this.#world.peerIds[id.index] as string).latencyMs * 2,
        }))
      const bytes = fileBytes(this.#world.seed, i, this.#demand.bytes)
      const key = fileKey(this.#world.seed, i)
      try {
        const put = await putFile(
          c,
          rankHolders(candidates).map((h) => h.peerId),
          [bytes],
          bytes.length,
          {
            k: this.#demand.k,
            n: this.#demand.n,
            epochs,
            key,
            chunkBytes: CHUNK_BYTES,
          },
        )
        this.#outcome.files++
        this.#stored.push({ cid: put.cid, key, bytes })
        put.holders.forEach((holder, shard) => {
          this.#puts.add(`${holder}/${put.cid}/${shard}`)
          const index = indexOf.get(holder) as number
          const amount = this.shardPrice(index, 1)
          this.#outcome.payments.push({ holder, amount, epoch: 0 })
          pay(index, amount)
        })
        rent.add(
          leasesOf(put, 0, epochs, (holder) => {
            const index = indexOf.get(holder) as number
            return { price: this.#priceOf(index) * MESH, operator: this.#world.operators[index] as string }
          }),
        )
      } catch (err) {
        this.#logger.warn({ err, file: i }, 'a simulated put failed')
      }
    }
  }

  /** The builder settles `epoch`'s rent: each holder that proves its shard now is paid the epoch. */
  async payRent(epoch: number): Promise<void> {
    const seed = Buffer.from(seedBytes(this.#world.seed, 'rent', epoch)).toString('hex')
    await this.#rent?.settle(epoch, seed)
  }

  /** Deleters wipe every shard they hold (their index rows stay: they still claim them). */
  wipe(): void {
    for (const id of this.#world.fleet.identities) {
      if (id.cohort !== this.#demand.deleters) continue
      const shards = join(this.#root, String(id.index), 'storage', 'shards')
      rmSync(shards, { recursive: true, force: true })
      mkdirSync(shards, { recursive: true })
    }
  }

  /** The builder reads every stored file back from the identities online now and compares the bytes. */
  async checkAll(port: NetworkPort, signer: PeerSigner, online: (index: number) => boolean): Promise<void> {
    const c = { port, codec: this.#codec(signer, -2), logger: this.#logger }
    const candidates = this.#world.peerIds.filter((_p, i) => online(i))
    for (const file of this.#stored) {
      this.#outcome.checked++
      const chunks: Uint8Array[] = []
      try {
        await getFile(c, candidates, file.cid, file.key, (plain) => {
          chunks.push(plain)
        })
        const got = Buffer.concat(chunks)
        if (got.equals(Buffer.from(file.bytes))) this.#outcome.intact++
      } catch (err) {
        this.#logger.warn({ err, cid: file.cid }, 'a simulated get failed')
      }
    }
  }

  /** Stops every holder and removes the run's directories. */
  async close(): Promise<void> {
    for (const s of this.#services.values()) await s.stop().catch(() => undefined)
    rmSync(this.#root, { recursive: true, force: true })
  }
}
