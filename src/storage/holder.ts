import {
  closeSync,
  fdatasync,
  fsync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import Database from 'better-sqlite3'
import { ComputeError } from '../compute/errors.js'
import type { AcceptedVoucher, Admission, PaymentDesk } from '../compute/payments.js'
import type { Timer } from '../core/clock.js'
import { fsyncDirectory } from '../core/durable-file.js'
import type { Logger } from '../core/logger.js'
import type { PeerSigner } from '../mesh/peer-key.js'
import type { WireCodec } from '../mesh/wire-codec.js'
import type { ServiceOffer } from '../node/advertisement.js'
import { migrate } from '../node/database.js'
import type { NodeService, ServiceChallenge, ServiceContext } from '../node/service.js'
import { storageTopic } from './challenge.js'
import { type ChunkTree, ChunkTreeBuilder, chunkCount } from './chunk-tree.js'
import { StorageError } from './errors.js'
import { cidOfBytes, type Manifest, parseManifest, pieceRange, shardBytesOf } from './file-codec.js'
import {
  BANDWIDTH_RECEIPT,
  type BandwidthReceiptBody,
  frame,
  frameWithRoom,
  MAX_STORAGE_MESSAGE_BYTES,
  STORAGE_PROTOCOL,
  STORAGE_RECEIPT,
  STORAGE_REQUEST,
  type StorageRequest,
  shardBillId,
  shardPrice,
  unframe,
} from './protocol.js'
import { handRelayReceipt } from './relay-service.js'
import { segmentsOf } from './sealed.js'

/**
 * A node's storage service: it takes shards of builders' files (ciphertext only), keeps them on
 * disk under `DIR/storage/` with an SQLite index, signs a receipt once a shard is complete and its
 * chunk-tree root matches the manifest, and serves pieces and chunk proofs. A shard is acknowledged
 * only by its receipt, which is written after the shard's bytes are on disk (fsync) and its row is
 * committed, so a kill -9 never loses a shard that was acknowledged; an upload cut short is dropped
 * at the next start and the client sends it again.
 */

/** Options of {@link StorageService}. */
export interface StorageServiceInit {
  /** The network id (receipts are gossiped on its storage topic, where verifiers learn what to challenge). */
  network: string
  /** Price per GiB-epoch, MESH base units (advertised): the first epoch billed at the put, the rest paid as rent. */
  price: bigint
  /** Most bytes this node holds. */
  quotaBytes: number
  /** Uploads in progress at once. */
  maxUploads?: number
  /** An upload with no request for this long is dropped, its space and payment released (default 10 min). */
  uploadIdleMs?: number
  now: () => number
  /**
   * The network's epoch at a time (unix ms). With it the holder keeps its leases: it drops a shard
   * once the epochs its receipt names are over, and a paid shard whose rent is more than
   * `rentGraceEpochs` epochs behind. Without it (tests, the simulator) shards are kept.
   */
  epochOf?: (ms: number) => number
  /**
   * Whole epochs a paid shard's rent may be behind before the shard is dropped (default 24, a day of
   * hour-long epochs: an owner away that long pays the epochs it missed with the next proof).
   */
  rentGraceEpochs?: number
  /**
   * How a sealed shard's file is flushed to disk before its receipt goes out: `'thread-pool'`
   * (default) in libuv's thread pool, so the event loop serves other requests meanwhile; `'inline'`
   * with `fsyncSync` on the event loop, so nothing waits on real time (the simulator's virtual
   * clock must decide every order).
   */
  flush?: 'thread-pool' | 'inline'
}

/** The parts it works with. */
export interface StorageServiceComponents {
  /** Bills shards on builders' Payments channels (shared with compute); without it storage is free. */
  desk?: PaymentDesk
  signer: PeerSigner
  /** Signs receipts and checks downloaders' (knows STORAGE_RECEIPT and BANDWIDTH_RECEIPT). */
  codec: WireCodec
  logger: Logger
}

interface Upload {
  id: string
  shard: number
  owner: string
  size: number
  segmentBytes: number
  chunkBytes: number
  k: number
  n: number
  epochs: number
  path: string
  fd: number
  /** The shard's payment, reserved at the offer and billed once it is sealed (paid shards only). */
  admission?: Admission
  nextSegment: number
  /** When it last received a request (`now()`). */
  touched: number
  /** Pieces received ahead of `nextSegment`, by segment. */
  ahead: Map<number, Uint8Array>
  /** Bytes of pieces that came through each circuit relay, by relay peer id. */
  relayed: Map<string, number>
  written: number
  expected: number
  tree: ChunkTreeBuilder
  /** Bytes written since the last background flush began. */
  unflushed: number
  /** The background flush in progress, if any (see {@link FLUSH_EVERY_BYTES}). */
  flushing: Promise<void> | undefined
  /** Why a background flush failed: the data may not be on disk, whatever a later fsync says. */
  flushFailed: Error | undefined
}

interface HeldShard {
  cid: string
  shard: number
  bytes: number
  root: string
  path: string
}

const fsyncAsync = promisify(fsync)
const fdatasyncAsync = promisify(fdatasync)

/**
 * An upload's written bytes are flushed in the background once this many have gathered (fdatasync
 * in libuv's thread pool, one at a time per upload), so that the fsync a seal waits for before its
 * receipt finds little left: in the storage bench the seal of a 100 MiB put took 35 to 48 ms instead
 * of 87 to 124 (median 73 ms once the directory flush below was added, against 93 before either).
 */
const FLUSH_EVERY_BYTES = 4 * 1024 * 1024

/** Closes an upload's file once its background flush, if any, is over (never under it). */
async function closeUpload(u: Upload): Promise<void> {
  await u.flushing
  closeSync(u.fd)
}

/**
 * Flushes the file at `path` to disk in libuv's thread pool: the event loop serves other requests
 * meanwhile, and the shards of several uploads sealed at once are flushed together.
 */
async function fsyncFile(path: string): Promise<void> {
  const fd = openSync(path, 'r+')
  try {
    await fsyncAsync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Flushes the file at `path` to disk on the event loop. */
function fsyncFileInline(path: string): void {
  const fd = openSync(path, 'r+')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Writes all of `bytes` at the file's position (writeSync may write less than asked). */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at)
}

/** Longest a relay may take to answer one byte receipt. */
const RELAY_RECEIPT_TIMEOUT_MS = 5_000

/** How far ahead of the next segment a piece may arrive. */
export const PIECES_AHEAD = 8

const MIGRATIONS = [
  {
    version: 1,
    description: 'held shards and their manifests',
    sql: `
      CREATE TABLE manifests (cid TEXT PRIMARY KEY, bytes BLOB NOT NULL) STRICT;
      CREATE TABLE shards (
        cid TEXT NOT NULL,
        shard INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        root TEXT NOT NULL,
        owner TEXT NOT NULL,
        stored_at INTEGER NOT NULL,
        epochs INTEGER NOT NULL,
        receipt BLOB NOT NULL,
        PRIMARY KEY (cid, shard)
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'storage rent: the Payments channel that pays a shard and the last epoch it paid',
    sql: `
      ALTER TABLE shards ADD COLUMN channel TEXT;
      ALTER TABLE shards ADD COLUMN paid_through INTEGER;
    `,
  },
]

/** How often a holder looks for shards whose lease ended or whose rent stopped. */
const SWEEP_EVERY_MS = 60_000
const RENT_ID = /^rent:([a-z2-7]{32}):(\d{1,3}):(\d{1,15})$/

/** Counters for metrics and tests. */
export interface StorageCounts {
  shards: number
  bytes: number
  piecesServed: number
  bytesServed: number
  proofsServed: number
  /** Downloaders' byte receipts taken and gossiped. */
  receiptsServed: number
  /** Byte receipts this node signed to circuit relays for pieces uploaded through them, and they took. */
  relayReceipts: number
  refused: number
  /** Shards dropped because the epochs their receipts name were over. */
  expired: number
  /** Paid shards dropped because their rent stopped (more than the grace period behind). */
  unpaid: number
}

export class StorageService implements NodeService {
  readonly name = 'storage' as const
  readonly #init: StorageServiceInit
  readonly #c: StorageServiceComponents
  #db: Database.Database | undefined
  #dir = ''
  #context: ServiceContext | undefined
  #stopPay: (() => void) | undefined
  #unsubscribe: (() => void) | undefined
  readonly #uploads = new Map<string, Upload>()
  /** Bytes of shards being sealed: no longer uploads, not yet counted as stored. */
  #sealingBytes = 0
  readonly #trees = new Map<string, ChunkTree>()
  readonly counts: StorageCounts = {
    shards: 0,
    bytes: 0,
    piecesServed: 0,
    bytesServed: 0,
    proofsServed: 0,
    receiptsServed: 0,
    relayReceipts: 0,
    refused: 0,
    expired: 0,
    unpaid: 0,
  }
  #sweepTimer: Timer | undefined
  #stopRent: (() => void) | undefined
  /** Relay receipts being handed over, one at a time. */
  #relayReceipts: Promise<void> = Promise.resolve()

  constructor(init: StorageServiceInit, components: StorageServiceComponents) {
    this.#init = init
    this.#c = components
  }

  advertise(): ServiceOffer {
    return {
      name: 'storage',
      price: this.#init.price.toString(),
      unit: 'GiB-epoch',
      params: { freeMb: Math.floor(Math.max(0, this.#init.quotaBytes - this.counts.bytes) / 2 ** 20) },
    }
  }

  async start(context: ServiceContext): Promise<void> {
    this.#context = context
    this.#dir = join(context.dir, 'storage')
    mkdirSync(join(this.#dir, 'uploads'), { recursive: true })
    mkdirSync(join(this.#dir, 'shards'), { recursive: true })
    // Uploads cut short by a stop or a crash were never acknowledged: drop them.
    rmSync(join(this.#dir, 'uploads'), { recursive: true, force: true })
    mkdirSync(join(this.#dir, 'uploads'), { recursive: true })
    const db = new Database(join(this.#dir, 'index.db'))
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    migrate(db, MIGRATIONS)
    this.#db = db
    this.#dropUnrecorded(db)
    const totals = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM shards').get() as {
      n: number
      b: number
    }
    this.counts.shards = totals.n
    this.counts.bytes = totals.b
    context.port.handle(STORAGE_PROTOCOL, (request, { from, relay }) => this.#serve(request, from, relay), {
      maxRequestBytes: MAX_STORAGE_MESSAGE_BYTES,
    })
    this.#stopPay = this.#c.desk?.serve(context.port)
    this.#stopRent = this.#c.desk?.onVoucher((v) => this.#creditRent(v))
    if (this.#init.epochOf !== undefined) {
      const sweep = () => {
        try {
          this.sweep()
        } catch (err) {
          this.#c.logger.warn({ err }, 'could not sweep ended and unpaid shards')
        }
        this.#sweepTimer = context.clock.setTimer(SWEEP_EVERY_MS, sweep)
      }
      sweep()
    }
    // Holders relay each other's receipts (checked first) so that they reach every verifier.
    this.#unsubscribe = context.port.subscribe(storageTopic(this.#init.network), (m) => {
      // Signed by their authors: a holder publishes its storage receipts and its downloaders' byte
      // receipts (signed by the downloader), so only the former must come from their publisher.
      const decoded = this.#c.codec.decode(m.data)
      if (!decoded.ok) return decoded.verdict
      const type = decoded.envelope.type
      if (type === STORAGE_RECEIPT.type) return decoded.envelope.from === m.from ? 'accept' : 'reject'
      return type === BANDWIDTH_RECEIPT.type ? 'accept' : 'reject'
    })
  }

  async stop(): Promise<void> {
    this.#context?.port.unhandle(STORAGE_PROTOCOL)
    this.#unsubscribe?.()
    this.#stopPay?.()
    this.#stopRent?.()
    this.#sweepTimer?.cancel()
    const open = [...this.#uploads.values()]
    this.#uploads.clear()
    for (const u of open) u.admission?.release()
    await Promise.all(open.map((u) => closeUpload(u)))
    this.#db?.close()
    this.#db = undefined
  }

  async answerChallenge(challenge: ServiceChallenge): Promise<Record<string, unknown>> {
    throw new StorageError('STORAGE_REQUEST_INVALID', `storage answers no ${challenge.kind} challenge here`)
  }

  /** The shards held of `cid` (tests and status). */
  held(cid: string): HeldShard[] {
    return (
      (this.#db
        ?.prepare('SELECT cid, shard, bytes, root FROM shards WHERE cid = ? ORDER BY shard')
        .all(cid) as Omit<HeldShard, 'path'>[] | undefined) ?? []
    ).map((r) => ({ ...r, path: this.#shardPath(r.cid, r.shard) }))
  }

  /**
   * Removes shard files the index does not record: a crash after a shard was moved in place but
   * before its row was committed (it was never receipted), or between a dropped row and its file.
   * Left alone they would hold disk space for ever, uncounted.
   */
  #dropUnrecorded(db: Database.Database): void {
    const root = join(this.#dir, 'shards')
    const recorded = new Set(
      (db.prepare('SELECT cid, shard FROM shards').all() as { cid: string; shard: number }[]).map(
        (r) => `${r.cid}/${r.shard}`,
      ),
    )
    let dropped = 0
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      const cid = entry.name
      const dir = join(root, cid)
      if (!entry.isDirectory()) {
        rmSync(dir, { force: true })
        dropped++
        continue
      }
      const files = readdirSync(dir)
      let kept = 0
      for (const name of files) {
        if (recorded.has(`${cid}/${name}`)) {
          kept++
          continue
        }
        rmSync(join(dir, name), { recursive: true, force: true })
        dropped++
      }
      if (kept === 0) rmSync(dir, { recursive: true, force: true })
    }
    if (dropped > 0) this.#c.logger.warn({ dropped }, 'removed shard files the index does not record')
  }

  #shardPath(cid: string, shard: number): string {
    return join(this.#dir, 'shards', cid, String(shard))
  }

  async #serve(request: Uint8Array, from: string, relay: string | undefined): Promise<Uint8Array> {
    try {
      const { header, body } = unframe(request, STORAGE_REQUEST)
      return await this.#answer(header, body, from, relay)
    } catch (err) {
      this.counts.refused++
      if (err instanceof StorageError || err instanceof ComputeError)
        return frame({ ok: false, code: err.code, message: err.message.slice(0, 500) })
      this.#c.logger.warn({ err, from }, 'storage request failed')
      return frame({ ok: false, code: 'STORAGE_REFUSED', message: 'the holder could not serve this request' })
    }
  }

  /**
   * Credits rent: a voucher naming `rent:<CID's last 32>:<shard>:<epoch>` for a shard held on that
   * channel moves the shard's paid epoch forward, if the voucher raised the channel by at least the
   * rent of every shard it names (a voucher that names rent it does not carry credits nothing).
   */
  #creditRent(v: AcceptedVoucher): void {
    const db = this.#db
    if (db === undefined) return
    const credits: { cid: string; shard: number; epoch: number }[] = []
    let due = 0n
    for (const id of v.jobs) {
      const m = RENT_ID.exec(id)
      if (m === null) continue
      const rows = db
        .prepare('SELECT cid, bytes FROM shards WHERE channel = ? AND shard = ? AND substr(cid, -32) = ?')
        .all(v.channel.toString(), Number(m[2]), m[1]) as { cid: string; bytes: number }[]
      for (const r of rows) {
        due += this.priceOf(r.bytes, 1)
        credits.push({ cid: r.cid, shard: Number(m[2]), epoch: Number(m[3]) })
      }
    }
    if (credits.length === 0 || v.increment < due) return
    const update = db.prepare(
      'UPDATE shards SET paid_through = MAX(COALESCE(paid_through, -1), ?) WHERE cid = ? AND shard = ?',
    )
    db.transaction(() => {
      for (const c of credits) update.run(c.epoch, c.cid, c.shard)
    })()
  }

  /**
   * Drops the shards whose lease is over (the epochs their receipts name have passed) and the paid
   * shards whose rent is more than the grace period behind; returns how many of each. Runs every
   * minute while the service runs (with `epochOf`).
   */
  sweep(): { expired: number; unpaid: number } {
    const db = this.#db
    const epochOf = this.#init.epochOf
    if (db === undefined || epochOf === undefined) return { expired: 0, unpaid: 0 }
    const epoch = epochOf(this.#init.now())
    const grace = this.#init.rentGraceEpochs ?? 24
    const rows = db
      .prepare('SELECT cid, shard, stored_at, epochs, channel, paid_through FROM shards')
      .all() as {
      cid: string
      shard: number
      stored_at: number
      epochs: number
      channel: string | null
      paid_through: number | null
    }[]
    const gone: { cid: string; shard: number; why: 'expired' | 'unpaid' }[] = []
    for (const r of rows) {
      // Verifiers challenge a shard from the epoch after it was stored, for its epochs: it is kept
      // through the last of them.
      if (epochOf(r.stored_at) + r.epochs < epoch) gone.push({ cid: r.cid, shard: r.shard, why: 'expired' })
      else if (r.channel !== null && r.paid_through !== null && epoch - r.paid_through > grace)
        gone.push({ cid: r.cid, shard: r.shard, why: 'unpaid' })
    }
    if (gone.length === 0) return { expired: 0, unpaid: 0 }
    // The index first (a shard it does not list is never served), then the files.
    db.transaction(() => {
      for (const g of gone) db.prepare('DELETE FROM shards WHERE cid = ? AND shard = ?').run(g.cid, g.shard)
      db.prepare('DELETE FROM manifests WHERE cid NOT IN (SELECT cid FROM shards)').run()
    })()
    for (const g of gone) {
      rmSync(this.#shardPath(g.cid, g.shard), { force: true })
      this.#trees.delete(`${g.cid}/${g.shard}`)
      this.counts[g.why]++
      this.#c.logger.info({ cid: g.cid, shard: g.shard, why: g.why }, 'shard dropped')
    }
    const totals = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM shards').get() as {
      n: number
      b: number
    }
    this.counts.shards = totals.n
    this.counts.bytes = totals.b
    const expired = gone.filter((g) => g.why === 'expired').length
    return { expired, unpaid: gone.length - expired }
  }

  /** What a shard of `bytes` kept `epochs` epochs costs here. */
  priceOf(bytes: number, epochs: number): bigint {
    return shardPrice(this.#init.price, bytes, epochs)
  }

  async #answer(r: StorageRequest, body: Uint8Array, from: string, relay?: string): Promise<Uint8Array> {
    switch (r.op) {
      case 'offer':
        return this.#offer(r, from)
      case 'piece':
        return this.#piece(r, body, from, relay)
      case 'seal':
        return this.#seal(r, body, from)
      case 'has':
        return this.#has(r.cid)
      case 'get':
        return this.#get(r.cid, r.shard, r.segment)
      case 'prove':
        return this.#prove(r.cid, r.shard, r.chunk)
      case 'served':
        return this.#served(body, from)
    }
  }

  /**
   * Takes a downloader's signed receipt for bytes this node served (it must name this node and come
   * from its signer) and gossips it for the verifiers, who count served bytes per epoch.
   */
  #served(body: Uint8Array, from: string): Uint8Array {
    const decoded = this.#c.codec.decode(body, { from })
    if (!decoded.ok || decoded.envelope.type !== BANDWIDTH_RECEIPT.type)
      throw new StorageError('STORAGE_REQUEST_INVALID', 'not a signed byte receipt from its sender')
    const r = decoded.envelope.body as BandwidthReceiptBody
    if (r.holder !== this.#context?.port.peerId)
      throw new StorageError('STORAGE_REQUEST_INVALID', 'the receipt names another holder')
    this.counts.receiptsServed++
    void this.#context?.port
      .publish(storageTopic(this.#init.network), body)
      .catch((err: unknown) => this.#c.logger.debug({ err }, 'could not gossip a byte receipt'))
    return frame({ ok: true })
  }

  async #offer(r: Extract<StorageRequest, { op: 'offer' }>, from: string): Promise<Uint8Array> {
    if (r.k > r.n || r.shard >= r.n)
      throw new StorageError('STORAGE_REQUEST_INVALID', 'shard outside the code')
    this.#dropIdleUploads()
    const key = `${from}/${r.upload}/${r.shard}`
    if (this.#uploads.has(key))
      throw new StorageError('STORAGE_REFUSED', 'this upload is already in progress')
    if (this.#uploads.size >= (this.#init.maxUploads ?? 64))
      throw new StorageError('STORAGE_REFUSED', 'too many uploads in progress; try another holder')
    const expected = shardBytesOf(r.size, r.segmentBytes, r.k)
    const reserved = [...this.#uploads.values()].reduce((sum, u) => sum + u.expected, this.#sealingBytes)
    if (this.counts.bytes + reserved + expected > this.#init.quotaBytes)
      throw new StorageError('STORAGE_REFUSED', `no room for ${expected} bytes`)
    // Paid before anything is written: the desk reserves the first epoch's rent on the owner's
    // channel. Later epochs are paid by the owner as it proves them (storage rent).
    const price = this.priceOf(expected, 1)
    const admission = this.#c.desk && price > 0n ? await this.#c.desk.admit(r.pay, from, price) : undefined
    if (this.#uploads.has(key)) {
      admission?.release()
      throw new StorageError('STORAGE_REFUSED', 'this upload is already in progress')
    }
    const path = join(this.#dir, 'uploads', `${r.upload}-${r.shard}-${from.slice(-16)}`)
    this.#uploads.set(key, {
      ...(admission ? { admission } : {}),
      id: r.upload,
      shard: r.shard,
      owner: from,
      size: r.size,
      segmentBytes: r.segmentBytes,
      chunkBytes: r.chunkBytes,
      k: r.k,
      n: r.n,
      epochs: r.epochs,
      path,
      fd: openSync(path, 'w'),
      unflushed: 0,
      flushing: undefined,
      flushFailed: undefined,
      nextSegment: 0,
      touched: this.#init.now(),
      ahead: new Map(),
      relayed: new Map(),
      written: 0,
      expected,
      tree: new ChunkTreeBuilder(r.chunkBytes),
    })
    return frame({ ok: true })
  }

  #upload(from: string, id: string, shard: number): Upload {
    const u = this.#uploads.get(`${from}/${id}/${shard}`)
    if (u === undefined) throw new StorageError('STORAGE_NOT_FOUND', 'no such upload (offer it first)')
    u.touched = this.#init.now()
    return u
  }

  /** Drops uploads a client abandoned: their file, their reserved space, their payment. */
  #dropIdleUploads(): void {
    const cutoff = this.#init.now() - (this.#init.uploadIdleMs ?? 10 * 60_000)
    for (const [key, u] of this.#uploads) {
      if (u.touched >= cutoff) continue
      this.#uploads.delete(key)
      void closeUpload(u)
        .then(() => rmSync(u.path, { force: true }))
        .catch((err: unknown) =>
          this.#c.logger.warn({ err, upload: u.id }, 'could not remove an abandoned upload'),
        )
      u.admission?.release()
      this.#c.logger.info({ upload: u.id, shard: u.shard, owner: u.owner }, 'dropped an abandoned upload')
    }
  }

  #piece(
    r: Extract<StorageRequest, { op: 'piece' }>,
    body: Uint8Array,
    from: string,
    relay: string | undefined,
  ): Uint8Array {
    const u = this.#upload(from, r.upload, r.shard)
    // Pieces may arrive a few segments ahead (the client pipelines them on separate streams): they
    // wait in memory and are written in order.
    if (r.segment < u.nextSegment || r.segment >= u.nextSegment + PIECES_AHEAD || u.ahead.has(r.segment))
      throw new StorageError(
        'STORAGE_REQUEST_INVALID',
        `segment ${r.segment} is out of order (next ${u.nextSegment}, at most ${PIECES_AHEAD} ahead)`,
      )
    const segments = segmentsOf(u.size, u.segmentBytes)
    if (r.segment >= segments.count)
      throw new StorageError('STORAGE_REQUEST_INVALID', 'past the last segment')
    const want = Math.ceil(segments.sealedBytes(r.segment) / u.k)
    if (body.length !== want)
      throw new StorageError(
        'STORAGE_REQUEST_INVALID',
        `segment ${r.segment}'s piece is ${want} bytes, not ${body.length}`,
      )
    // Bytes a circuit relay carried to this node, receipted to it once the shard is sealed.
    if (relay !== undefined) u.relayed.set(relay, (u.relayed.get(relay) ?? 0) + body.length)
    // The next piece is written from the request's bytes as they are; one that must wait is copied
    // (the request buffer is the port's, not ours to keep).
    let next: Uint8Array | undefined = body
    if (r.segment !== u.nextSegment) {
      u.ahead.set(r.segment, new Uint8Array(body))
      next = undefined
    }
    for (; next !== undefined; next = u.ahead.get(u.nextSegment)) {
      u.ahead.delete(u.nextSegment)
      writeAll(u.fd, next)
      u.tree.push(next)
      u.written += next.length
      u.unflushed += next.length
      u.nextSegment++
    }
    // (Not with inline flushes: the simulator's virtual clock must decide every order.)
    if (u.unflushed >= FLUSH_EVERY_BYTES && u.flushing === undefined && this.#init.flush !== 'inline') {
      u.unflushed = 0
      u.flushing = fdatasyncAsync(u.fd).then(
        () => {
          u.flushing = undefined
        },
        (err: unknown) => {
          u.flushing = undefined
          u.flushFailed ??= err instanceof Error ? err : new Error(String(err))
        },
      )
    }
    return frame({ ok: true })
  }

  async #seal(
    r: Extract<StorageRequest, { op: 'seal' }>,
    body: Uint8Array,
    from: string,
  ): Promise<Uint8Array> {
    const u = this.#upload(from, r.upload, r.shard)
    // The upload ends here whatever the outcome; its payment is billed only if the shard is kept.
    this.#uploads.delete(`${from}/${r.upload}/${r.shard}`)
    await closeUpload(u)
    let cid: string
    let root: string
    let tree: ChunkTree
    try {
      // Pages a background flush failed to write may be lost for good (Linux reports such an error
      // once, so a later fsync can succeed): the shard is not kept.
      if (u.flushFailed !== undefined)
        throw new StorageError(
          'STORAGE_REFUSED',
          `could not write the shard to disk: ${u.flushFailed.message}`,
        )
      // The manifest travels as its canonical bytes: their CID is the file's.
      cid = cidOfBytes(body)
      const manifest = parseManifest(cid, body)
      const entry = manifest.shards[u.shard]
      tree = u.tree.finish()
      root = Buffer.from(tree.root).toString('hex')
      const matches =
        manifest.size === u.size &&
        manifest.segmentBytes === u.segmentBytes &&
        manifest.chunkBytes === u.chunkBytes &&
        manifest.k === u.k &&
        manifest.n === u.n &&
        entry !== undefined &&
        u.written === u.expected &&
        entry.bytes === u.written &&
        entry.root === root
      if (!matches)
        throw new StorageError(
          'STORAGE_REQUEST_INVALID',
          'the shard does not match the manifest (size or root)',
        )
    } catch (err) {
      rmSync(u.path, { force: true })
      u.admission?.release()
      throw err
    }
    // Durable before acknowledged: the bytes, then the row, then the receipt goes out. Its room stays
    // reserved while it is flushed (offers may come in meanwhile).
    this.#sealingBytes += u.expected
    try {
      const inline = this.#init.flush === 'inline'
      if (inline) fsyncFileInline(u.path)
      else await fsyncFile(u.path)
      const stopped = () => {
        u.admission?.release()
        return new StorageError('STORAGE_REFUSED', 'the storage service stopped')
      }
      if (this.#db === undefined) {
        rmSync(u.path, { force: true })
        throw stopped()
      }
      // The shard moved in place, and the move made durable too (its directory flushed, and the new
      // directory's own entry if the file's first shard made it), before the row and the receipt.
      const target = this.#shardPath(cid, u.shard)
      const made = mkdirSync(dirname(target), { recursive: true })
      renameSync(u.path, target)
      await fsyncDirectory(dirname(target), { inline })
      if (made !== undefined) await fsyncDirectory(dirname(made), { inline })
      // Stopped during that flush: the shard is in place but neither recorded nor receipted, and the
      // next start removes it (see #dropUnrecorded).
      if (this.#db === undefined) throw stopped()
      return this.#keep(u, cid, root, tree, body, from)
    } finally {
      this.#sealingBytes -= u.expected
    }
  }

  /** Records a sealed shard, flushed and in place, and returns its signed receipt. */
  #keep(u: Upload, cid: string, root: string, tree: ChunkTree, body: Uint8Array, from: string): Uint8Array {
    const storedAt = this.#init.now()
    const receipt = this.#c.codec.encode(STORAGE_RECEIPT, {
      cid,
      shard: u.shard,
      root,
      bytes: u.written,
      chunkBytes: u.chunkBytes,
      owner: from,
      storedAt,
      epochs: u.epochs,
    }).bytes
    const db = this.#db as Database.Database
    const fresh = db.transaction(() => {
      db.prepare('INSERT OR IGNORE INTO manifests (cid, bytes) VALUES (?, ?)').run(cid, body)
      return (
        db
          .prepare(
            'INSERT OR REPLACE INTO shards (cid, shard, bytes, root, owner, stored_at, epochs, receipt, channel, paid_through) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          )
          .run(
            cid,
            u.shard,
            u.written,
            root,
            from,
            storedAt,
            u.epochs,
            receipt,
            // A paid shard: its first epoch is billed now; rent pays the later ones.
            u.admission ? u.admission.channel.toString() : null,
            u.admission && this.#init.epochOf ? this.#init.epochOf(storedAt) : null,
          ).changes > 0
      )
    })()
    if (fresh) {
      const totals = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM shards').get() as {
        n: number
        b: number
      }
      this.counts.shards = totals.n
      this.counts.bytes = totals.b
    }
    this.#keepTree(`${cid}/${u.shard}`, tree)
    u.admission?.bill(shardBillId(cid, u.shard))
    this.#c.logger.info({ cid, shard: u.shard, bytes: u.written, owner: from }, 'shard stored')
    // Verifiers learn what to challenge from the receipts (gossip is best effort: the owner has it too).
    void this.#context?.port
      .publish(storageTopic(this.#init.network), receipt)
      .catch((err: unknown) => this.#c.logger.debug({ err, cid }, 'could not gossip a receipt'))
    this.#receiptRelays(cid, u)
    return frame({ ok: true }, receipt)
  }

  /**
   * Signs each circuit relay that carried pieces of a sealed upload a byte receipt (this node
   * received the bytes) and hands it over. One at a time across uploads, each signed once the one
   * before was taken: relays gossip them, and a receipt of this node's gossiped before an earlier one
   * reached its relay would make that one a replay there. Best effort (5 s each).
   */
  #receiptRelays(cid: string, u: Upload): void {
    const port = this.#context?.port
    if (port === undefined || u.relayed.size === 0) return
    this.#relayReceipts = this.#relayReceipts.then(async () => {
      for (const [relay, bytes] of u.relayed) {
        try {
          const receipt = this.#c.codec.encode(BANDWIDTH_RECEIPT, {
            holder: relay,
            session: u.id,
            cid,
            bytes,
          }).bytes
          await handRelayReceipt(port, relay, receipt, RELAY_RECEIPT_TIMEOUT_MS)
          this.counts.relayReceipts++
        } catch (err) {
          this.#c.logger.debug({ err, relay, cid }, 'could not hand a relay its byte receipt')
        }
      }
    })
  }

  /** Keeps a shard's chunk tree for proofs (the newest 256; older ones are rebuilt on demand). */
  #keepTree(key: string, tree: ChunkTree): void {
    this.#trees.delete(key)
    this.#trees.set(key, tree)
    if (this.#trees.size > 256) this.#trees.delete(this.#trees.keys().next().value as string)
  }

  #row(cid: string, shard: number): HeldShard {
    const row = this.#db
      ?.prepare('SELECT cid, shard, bytes, root FROM shards WHERE cid = ? AND shard = ?')
      .get(cid, shard) as Omit<HeldShard, 'path'> | undefined
    if (row === undefined) throw new StorageError('STORAGE_NOT_FOUND', `no shard ${shard} of ${cid} here`)
    return { ...row, path: this.#shardPath(cid, shard) }
  }

  #manifest(cid: string): Manifest {
    const row = this.#db?.prepare('SELECT bytes FROM manifests WHERE cid = ?').get(cid) as
      | { bytes: Buffer }
      | undefined
    if (row === undefined) throw new StorageError('STORAGE_NOT_FOUND', `no shard of ${cid} here`)
    return parseManifest(cid, new Uint8Array(row.bytes))
  }

  #has(cid: string): Uint8Array {
    const row = this.#db?.prepare('SELECT bytes FROM manifests WHERE cid = ?').get(cid) as
      | { bytes: Buffer }
      | undefined
    if (row === undefined) return frame({ ok: true, shards: [] })
    const shards = this.held(cid).map((s) => s.shard)
    return frame({ ok: true, shards }, new Uint8Array(row.bytes))
  }

  #read(path: string, offset: number, bytes: number, out: Uint8Array = new Uint8Array(bytes)): Uint8Array {
    const fd = openSync(path, 'r')
    try {
      let at = 0
      while (at < bytes) {
        const n = readSync(fd, out, at, bytes - at, offset + at)
        if (n === 0) throw new StorageError('STORAGE_NOT_FOUND', 'the shard on disk is shorter than recorded')
        at += n
      }
    } finally {
      closeSync(fd)
    }
    return out
  }

  #get(cid: string, shard: number, segment: number): Uint8Array {
    const held = this.#row(cid, shard)
    const manifest = this.#manifest(cid)
    if (segment >= segmentsOf(manifest.size, manifest.segmentBytes).count)
      throw new StorageError('STORAGE_REQUEST_INVALID', `no segment ${segment}`)
    const { offset, bytes } = pieceRange(manifest, segment)
    // Read from disk straight into the response.
    const { message, body } = frameWithRoom({ ok: true }, bytes)
    this.#read(held.path, offset, bytes, body)
    this.counts.piecesServed++
    this.counts.bytesServed += bytes
    return message
  }

  #prove(cid: string, shard: number, chunk: number): Uint8Array {
    const held = this.#row(cid, shard)
    const manifest = this.#manifest(cid)
    const count = chunkCount(held.bytes, manifest.chunkBytes)
    if (chunk >= count) throw new StorageError('STORAGE_REQUEST_INVALID', `no chunk ${chunk}`)
    let tree = this.#trees.get(`${cid}/${shard}`)
    if (tree === undefined) {
      // After a restart: rebuilt from the bytes on disk (what a challenge checks anyway).
      const b = new ChunkTreeBuilder(manifest.chunkBytes)
      const size = statSync(held.path).size
      for (let at = 0; at < size; at += 1 << 20)
        b.push(this.#read(held.path, at, Math.min(1 << 20, size - at)))
      tree = b.finish()
      this.#keepTree(`${cid}/${shard}`, tree)
    }
    const start = chunk * manifest.chunkBytes
    const bytes = this.#read(held.path, start, Math.min(manifest.chunkBytes, held.bytes - start))
    this.counts.proofsServed++
    return frame({ ok: true, path: tree.path(chunk).map((h) => Buffer.from(h).toString('hex')) }, bytes)
  }
}
