import { randomBytes } from 'node:crypto'
import type { PayTicket } from '../compute/payments.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { Envelope, WireCodec } from '../mesh/wire-codec.js'
import { ReedSolomon } from './erasure.js'
import { StorageError } from './errors.js'
import {
  decodeSegmentParts,
  type EncodeOptions,
  FileEncoder,
  type Manifest,
  manifestCid,
  parseManifest,
  pieceRange,
  segmentCount,
  shardBytesOf,
} from './file-codec.js'
import { PIECES_AHEAD } from './holder.js'
import {
  BANDWIDTH_RECEIPT,
  frame,
  frameInRoom,
  MAX_STORAGE_MESSAGE_BYTES,
  STORAGE_PROTOCOL,
  STORAGE_RECEIPT,
  STORAGE_RESPONSE,
  type StorageReceiptBody,
  shardBillId,
  unframe,
} from './protocol.js'
import { byteReceiptsOwed } from './receipts-owed.js'
import { handRelayReceipt } from './relay-service.js'
import { type ContentKey, newContentKey, SEGMENT_BYTES } from './sealed.js'

/**
 * The client side of storage: `putFile` seals, codes and streams a file to N holders and collects
 * their signed receipts; `getFile` finds holders, fetches any K pieces of each segment (nearest
 * first, others when one fails or serves changed bytes) and streams the plaintext out. Neither
 * holds a whole file: one segment (plus a few in flight) at a time.
 */

/** What the client needs of the mesh. */
export interface StorageClientComponents {
  port: Pick<NetworkPort, 'peerId' | 'request'>
  /** Decodes holders' receipts and signs byte receipts (knows STORAGE_RECEIPT and BANDWIDTH_RECEIPT). */
  codec: WireCodec
  logger: Logger
}

/** Progress of a put or a get, in plaintext bytes. */
export type StorageProgress = (done: number, total: number) => void

/** Options of {@link putFile}. */
export interface PutOptions extends Partial<Pick<EncodeOptions, 'segmentBytes' | 'chunkBytes'>> {
  /** Data shards K (default 4) and total shards N (default 6). */
  k?: number
  n?: number
  /** Epochs to keep the file (default 10). */
  epochs?: number
  /** The content key to seal with (default: a fresh random one; the simulator derives its own from its seed). */
  key?: ContentKey
  onProgress?: StorageProgress
  /** Segments of pieces in flight per holder (default 6, at most 7). */
  window?: number
  timeoutMs?: number
  /**
   * Pays holders that charge the first epoch's rent (the SDK's Payments wallet): a ticket with each
   * offer, a voucher once the holder's receipt checked, and the ticket withdrawn when a holder
   * refuses or fails. Later epochs are rent, paid as they are proven (`RentPayer`, rent.ts).
   */
  payment?: StoragePayment
}

/**
 * How a put pays its holders the first epoch's rent (prices from their advertisements); later epochs
 * are paid as they are proven (`RentPayer`, rent.ts).
 */
export interface StoragePayment {
  /** The ticket for one epoch of a shard of `bytes` on `peer`; undefined when it is free. */
  ticket(peer: string, bytes: number): Promise<PayTicket | undefined>
  /** Pays `peer` the first epoch of shard `id` once its receipt checked. */
  pay(peer: string, id: string, bytes: number): Promise<void>
  /** Withdraws a ticket whose shard was not kept. */
  cancel(peer: string, bytes: number): Promise<void>
}

/** A stored file: its identifier, its key, where its shards are and the holders' receipts. */
export interface PutResult {
  cid: string
  key: ContentKey
  manifest: Manifest
  /** Holder of each shard, by shard index. */
  holders: string[]
  receipts: Envelope<StorageReceiptBody>[]
}

async function call(
  c: StorageClientComponents,
  peer: string,
  header: unknown,
  body?: Uint8Array,
  timeoutMs = 30_000,
  onRelay?: (relay: string) => void,
): Promise<{ header: Extract<ReturnType<typeof STORAGE_RESPONSE.parse>, { ok: true }>; body: Uint8Array }> {
  return callFramed(c, peer, frame(header, body), timeoutMs, onRelay)
}

/** {@link call} with a request already framed. */
async function callFramed(
  c: StorageClientComponents,
  peer: string,
  message: Uint8Array,
  timeoutMs: number,
  onRelay?: (relay: string) => void,
): Promise<{ header: Extract<ReturnType<typeof STORAGE_RESPONSE.parse>, { ok: true }>; body: Uint8Array }> {
  const response = await c.port.request(peer, STORAGE_PROTOCOL, message, {
    maxResponseBytes: MAX_STORAGE_MESSAGE_BYTES,
    timeoutMs,
    ...(onRelay === undefined ? {} : { onRelay }),
  })
  return answerOf(peer, response)
}

/** A storage response's header and body; a refusal as a StorageError with the holder's code. */
function answerOf(
  peer: string,
  response: Uint8Array,
): { header: Extract<ReturnType<typeof STORAGE_RESPONSE.parse>, { ok: true }>; body: Uint8Array } {
  const { header: h, body: b } = unframe(response, STORAGE_RESPONSE)
  if (!h.ok)
    throw new StorageError(
      h.code.startsWith('STORAGE_') ? (h.code as never) : 'STORAGE_REFUSED',
      // Another service's code (PAYMENT_REQUIRED…) is kept in the message.
      `${peer}: ${h.code.startsWith('STORAGE_') ? '' : `${h.code}: `}${h.message}`,
    )
  return { header: h, body: b }
}

/** Room left before each piece of a put for its request's header (about 90 bytes of JSON). */
const PIECE_ROOM = 256

/**
 * Stores a file of `size` bytes read from `source` on N of `candidates` (peer ids, best first;
 * distinct operators and cells are the caller's choice). A candidate that refuses the offer is
 * skipped for the next; once pieces flow, a holder that fails fails the put (nothing is
 * acknowledged without every receipt).
 *
 * @throws StorageError STORAGE_NO_HOLDERS when fewer than N candidates accept.
 */
export async function putFile(
  c: StorageClientComponents,
  candidates: readonly string[],
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
  options: PutOptions = {},
): Promise<PutResult> {
  const k = options.k ?? 4
  const n = options.n ?? 6
  const key = options.key ?? newContentKey()
  const upload = randomBytes(16).toString('hex')
  const segmentBytes = options.segmentBytes ?? SEGMENT_BYTES
  const chunkBytes = options.chunkBytes ?? 16 * 1024
  const timeoutMs = options.timeoutMs ?? 30_000
  const epochs = options.epochs ?? 10
  const shardBytes = shardBytesOf(size, segmentBytes, k)
  // Offer the N shards at once, each to the next candidate in order while candidates refuse: a put
  // waits for one round of offers, not N in a row (on a wide-area network, a round trip each).
  const queue = [...new Set(candidates)]
  const accepted: (string | undefined)[] = new Array(n).fill(undefined)
  let lastRefusal: string | undefined
  const offer = async (shard: number): Promise<void> => {
    for (let peer = queue.shift(); peer !== undefined; peer = queue.shift()) {
      let pay: PayTicket | undefined
      try {
        pay = await options.payment?.ticket(peer, shardBytes)
        await call(
          c,
          peer,
          {
            op: 'offer',
            upload,
            shard,
            size,
            segmentBytes,
            chunkBytes,
            k,
            n,
            epochs,
            ...(pay ? { pay } : {}),
          },
          undefined,
          timeoutMs,
        )
        accepted[shard] = peer
        return
      } catch (err) {
        if (pay) await options.payment?.cancel(peer, shardBytes).catch(() => undefined)
        lastRefusal = (err as Error).message
        c.logger.debug({ err, peer }, 'a candidate refused a shard')
      }
    }
  }
  await Promise.all(Array.from({ length: n }, (_, shard) => offer(shard)))
  const holders = accepted.filter((peer) => peer !== undefined)
  if (holders.length < n) {
    // The holders that did accept keep nothing: their upload lapses unsent, their tickets are freed.
    for (const peer of holders) await options.payment?.cancel(peer, shardBytes).catch(() => undefined)
    throw new StorageError(
      'STORAGE_NO_HOLDERS',
      `only ${holders.length} of the ${n} holders needed accepted (${candidates.length} candidates)${
        lastRefusal ? `; last refusal: ${lastRefusal}` : ''
      }`,
    )
  }

  const paid = new Set<number>()
  try {
    // Pieces go out as soon as they are coded, on streams of their own: at most `window` segments
    // (and never more than the holder takes ahead) outstanding; the holder writes them in order.
    const window = Math.min(options.window ?? 6, PIECES_AHEAD - 1)
    const inFlight: Promise<unknown>[] = []
    let failed: unknown
    // Each piece comes with room in front of it for its request's header: it is framed in place.
    const pieceRoom = PIECE_ROOM
    const coding = { k, n, segmentBytes, chunkBytes, pieceRoom }
    const encoder = new FileEncoder(key, size, coding, (segment, pieces) => {
      for (const [shard, piece] of pieces.entries()) {
        const peer = holders[shard] as string
        const sent =
          failed === undefined
            ? callFramed(
                c,
                peer,
                frameInRoom({ op: 'piece', upload, shard, segment }, piece, pieceRoom),
                timeoutMs,
              )
            : Promise.resolve(undefined)
        sent.catch((err: unknown) => {
          failed ??= err
        })
        inFlight.push(sent.catch(() => undefined))
      }
    })
    let done = 0
    for await (const slice of source) {
      encoder.push(slice)
      done += slice.length
      options.onProgress?.(done, size)
      // Backpressure: at most `window` segments of pieces outstanding per holder.
      while (inFlight.length > window * n) await inFlight.shift()
      if (failed !== undefined) throw failed
    }
    const manifest = encoder.finish()
    await Promise.all(inFlight)
    if (failed !== undefined) throw failed
    const { cid, bytes } = manifestCid(manifest)
    const receipts = await Promise.all(
      holders.map(async (peer, shard) => {
        const { body } = await call(c, peer, { op: 'seal', upload, shard }, bytes, timeoutMs)
        const decoded = c.codec.decode(body, { from: peer })
        if (!decoded.ok || decoded.envelope.type !== STORAGE_RECEIPT.type)
          throw new StorageError('STORAGE_REFUSED', `${peer} answered with an invalid receipt`)
        const receipt = decoded.envelope as Envelope<StorageReceiptBody>
        const r = receipt.body
        if (
          r.cid !== cid ||
          r.shard !== shard ||
          r.root !== manifest.shards[shard]?.root ||
          r.owner !== c.port.peerId
        )
          throw new StorageError('STORAGE_REFUSED', `${peer}'s receipt does not match the shard it was sent`)
        paid.add(shard)
        await options.payment?.pay(peer, shardBillId(cid, shard), shardBytes)
        return receipt
      }),
    )
    options.onProgress?.(size, size)
    return { cid, key, manifest, holders, receipts }
  } catch (err) {
    // Tickets of shards that were never kept are withdrawn (a holder bills only what it sealed).
    await Promise.all(
      holders.map((peer, shard) =>
        paid.has(shard) ? undefined : options.payment?.cancel(peer, shardBytes).catch(() => undefined),
      ),
    )
    throw err
  }
}

/** Where a file's shards are: its checked manifest and each shard's holders (callers' order). */
export interface FileLocation {
  manifest: Manifest
  byShard: Map<number, string[]>
}

/**
 * Asks every candidate (in parallel) which shards of `cid` it holds, and checks the manifest against
 * the CID. Each shard's holders keep the candidates' order (nearest first).
 *
 * @throws StorageError STORAGE_NO_HOLDERS when no candidate holds any shard.
 */
export async function locateFile(
  c: StorageClientComponents,
  candidates: readonly string[],
  cid: string,
  timeoutMs = 30_000,
): Promise<FileLocation> {
  const byShard = new Map<number, string[]>()
  let manifest: Manifest | undefined
  await Promise.all(
    [...new Set(candidates)].map(async (peer) => {
      try {
        const { header, body } = await call(c, peer, { op: 'has', cid }, undefined, timeoutMs)
        if ((header.shards ?? []).length === 0) return
        manifest ??= parseManifest(cid, body)
        for (const s of header.shards ?? []) byShard.set(s, [...(byShard.get(s) ?? []), peer])
      } catch (err) {
        c.logger.debug({ err, peer }, 'a candidate did not answer for a file')
      }
    }),
  )
  if (manifest === undefined || byShard.size === 0)
    throw new StorageError('STORAGE_NO_HOLDERS', `no reachable node holds ${cid}`)
  const rank = new Map(candidates.map((p, i) => [p, i]))
  for (const list of byShard.values()) list.sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0))
  return { manifest, byShard }
}

/** Options of {@link repairFile}. */
export interface RepairOptions {
  /** Holders not to count or fetch from (e.g. those that failed their storage challenges). */
  exclude?: readonly string[]
  /** Epochs the new holders keep their shards (default 10). */
  epochs?: number
  payment?: StoragePayment
  timeoutMs?: number
}

/** What a repair did. */
export interface RepairResult {
  manifest: Manifest
  /** Each rebuilt shard and its new holder's signed receipt. */
  repaired: { shard: number; holder: string; receipt: Envelope<StorageReceiptBody> }[]
  /** Shards with a live holder after the repair. */
  redundancy: number
}

/**
 * Brings a file back to N shards without its key: finds the shards that no reachable (and not
 * excluded) node holds, rebuilds each from any K others a segment at a time (Reed-Solomon works on
 * the sealed bytes), and places it on a new node that holds nothing of the file yet, which checks
 * the rebuilt shard against the manifest's root before it signs. Anyone can repair: a verifier or
 * the owner's client.
 *
 * @throws StorageError STORAGE_UNAVAILABLE with fewer than K shards left, STORAGE_NO_HOLDERS when
 *   no new node takes a shard.
 */
export async function repairFile(
  c: StorageClientComponents,
  candidates: readonly string[],
  cid: string,
  options: RepairOptions = {},
): Promise<RepairResult> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const excluded = new Set(options.exclude ?? [])
  const live = candidates.filter((p) => !excluded.has(p))
  const { manifest: m, byShard } = await locateFile(c, live, cid, timeoutMs)
  const missing = Array.from({ length: m.n }, (_, s) => s).filter((s) => (byShard.get(s) ?? []).length === 0)
  if (missing.length === 0) return { manifest: m, repaired: [], redundancy: m.n }
  if (m.n - missing.length < m.k)
    throw new StorageError(
      'STORAGE_UNAVAILABLE',
      `only ${m.n - missing.length} of ${m.k} shards needed are left`,
    )
  const epochs = options.epochs ?? 10
  const shardBytes = (m.shards[0] as { bytes: number }).bytes
  // New holders: nodes that hold nothing of this file, in the callers' order.
  const holding = new Set([...byShard.values()].flat())
  const queue = live.filter((p) => !holding.has(p))
  const upload = randomBytes(16).toString('hex')
  const placed = new Map<number, string>()
  const tickets = new Map<number, boolean>()
  for (const shard of missing) {
    for (;;) {
      const peer = queue.shift()
      if (peer === undefined)
        throw new StorageError('STORAGE_NO_HOLDERS', `no new node took shard ${shard} of ${cid}`)
      let pay: PayTicket | undefined
      try {
        pay = await options.payment?.ticket(peer, shardBytes)
        const offer = {
          op: 'offer',
          upload,
          shard,
          size: m.size,
          segmentBytes: m.segmentBytes,
          chunkBytes: m.chunkBytes,
          k: m.k,
          n: m.n,
          epochs,
          ...(pay ? { pay } : {}),
        }
        await call(c, peer, offer, undefined, timeoutMs)
        placed.set(shard, peer)
        tickets.set(shard, pay !== undefined)
        break
      } catch (err) {
        if (pay) await options.payment?.cancel(peer, shardBytes).catch(() => undefined)
        c.logger.debug({ err, peer, shard }, 'a node refused a repaired shard')
      }
    }
  }
  const rs = new ReedSolomon(m.k, m.n)
  const repaired: RepairResult['repaired'] = []
  try {
    for (let segment = 0; segment < segmentCount(m); segment++) {
      const pieces: (Uint8Array | undefined)[] = new Array(m.n).fill(undefined)
      let have = 0
      for (let s = 0; s < m.n && have < m.k; s++) {
        for (const peer of byShard.get(s) ?? []) {
          try {
            const { body } = await call(c, peer, { op: 'get', cid, shard: s, segment }, undefined, timeoutMs)
            if (body.length !== pieceRange(m, segment).bytes) continue
            pieces[s] = body
            have++
            break
          } catch (err) {
            c.logger.debug({ err, peer, s, segment }, 'a holder did not serve a piece for repair')
          }
        }
      }
      if (have < m.k)
        throw new StorageError('STORAGE_UNAVAILABLE', `segment ${segment}: only ${have} of ${m.k} pieces`)
      const all = rs.reconstruct(pieces)
      await Promise.all(
        [...placed].map(([shard, peer]) =>
          call(c, peer, { op: 'piece', upload, shard, segment }, all[shard] as Uint8Array, timeoutMs),
        ),
      )
    }
    const bytes = manifestCid(m).bytes
    for (const [shard, peer] of placed) {
      const { body } = await call(c, peer, { op: 'seal', upload, shard }, bytes, timeoutMs)
      const decoded = c.codec.decode(body, { from: peer })
      if (!decoded.ok || decoded.envelope.type !== STORAGE_RECEIPT.type)
        throw new StorageError('STORAGE_REFUSED', `${peer} answered with an invalid receipt`)
      const receipt = decoded.envelope as Envelope<StorageReceiptBody>
      if (
        receipt.body.cid !== cid ||
        receipt.body.shard !== shard ||
        receipt.body.root !== m.shards[shard]?.root
      )
        throw new StorageError('STORAGE_REFUSED', `${peer}'s receipt does not match the rebuilt shard`)
      tickets.set(shard, false)
      await options.payment?.pay(peer, shardBillId(cid, shard), shardBytes)
      repaired.push({ shard, holder: peer, receipt })
    }
  } catch (err) {
    await Promise.all(
      [...placed].map(([shard, peer]) =>
        tickets.get(shard) ? options.payment?.cancel(peer, shardBytes).catch(() => undefined) : undefined,
      ),
    )
    throw err
  }
  return { manifest: m, repaired, redundancy: m.n - missing.length + repaired.length }
}

/**
 * Signs a byte receipt for every holder that served this download (not those that served changed
 * bytes) and every circuit relay that carried pieces of it (see {@link byteReceiptsOwed}), and hands
 * each to the node it names, which gossips it for the verifiers: a holder over the storage protocol,
 * a relay over `/meshwork/relay/1`. All at once: every node hears the others' receipts on the
 * storage topic in whatever order gossip brings them, and the wire codec's window (`SEQ_WINDOW`)
 * takes each once. Best effort, within 5 s each: a node that is gone goes unreceipted.
 */
async function receiptServed(
  c: StorageClientComponents,
  cid: string,
  session: string,
  served: ReadonlyMap<string, number>,
  relayed: ReadonlyMap<string, number>,
  faulty: ReadonlySet<string>,
  timeoutMs: number,
): Promise<void> {
  // All at once (one round trip at the end of a get, not one per holder), each within its own
  // deadline (no wall clock here: the simulator runs this in virtual time).
  const deadline = Math.min(timeoutMs, 5_000)
  await Promise.all(
    [...byteReceiptsOwed(served, relayed, faulty)].map(async ([holder, owed]) => {
      const bytes = owed.served + owed.relayed
      const receipt = c.codec.encode(BANDWIDTH_RECEIPT, { holder, session, cid, bytes }).bytes
      try {
        if (owed.relayed > 0) await handRelayReceipt(c.port, holder, receipt, deadline)
        else await call(c, holder, { op: 'served' }, receipt, deadline)
      } catch (err) {
        c.logger.debug({ err, holder }, 'could not hand a byte receipt over')
      }
    }),
  )
}

/** Options of {@link getFile}. */
export interface GetOptions {
  onProgress?: StorageProgress
  /** Segments fetched ahead (default 8). */
  window?: number
  timeoutMs?: number
}

/** What a get learned about the holders. */
export interface GetResult {
  manifest: Manifest
  bytes: number
  /** Holders that served pieces that did not decode (tampered or rotten shards). */
  faulty: string[]
}

/**
 * Finds who holds `cid` among `candidates` (asking each; nearest first is the caller's order),
 * fetches and checks the manifest, then decodes each segment from any K pieces and hands the
 * plaintext to `sink` in order (a segment in parts, one per data piece, each segment only once it
 * opened and checked). A holder whose piece fails is replaced by another for that segment;
 * if the segment does not open, every piece is fetched and subsets without each suspect are tried,
 * so a tampered shard is found out and the file still comes back identical.
 *
 * @throws StorageError STORAGE_NO_HOLDERS, STORAGE_UNAVAILABLE, STORAGE_KEY_INVALID, STORAGE_DATA_CORRUPT.
 */
export async function getFile(
  c: StorageClientComponents,
  candidates: readonly string[],
  cid: string,
  key: ContentKey,
  sink: (plaintext: Uint8Array) => void | Promise<void>,
  options: GetOptions = {},
): Promise<GetResult> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const { manifest: m, byShard } = await locateFile(c, candidates, cid, timeoutMs)
  const faulty = new Set<string>()

  // Bytes each holder served and each circuit relay carried this download, receipted at the end
  // (cumulative in this session).
  const served = new Map<string, number>()
  const relayed = new Map<string, number>()
  const session = randomBytes(16).toString('hex')
  const fetchPiece = async (shard: number, segment: number): Promise<Uint8Array | undefined> => {
    for (const peer of byShard.get(shard) ?? []) {
      if (faulty.has(peer)) continue
      try {
        let relay: string | undefined
        const { body } = await call(
          c,
          peer,
          { op: 'get', cid, shard, segment },
          undefined,
          timeoutMs,
          (r) => {
            relay = r
          },
        )
        if (body.length === pieceRange(m, segment).bytes) {
          served.set(peer, (served.get(peer) ?? 0) + body.length)
          if (relay !== undefined) relayed.set(relay, (relayed.get(relay) ?? 0) + body.length)
          return body
        }
        faulty.add(peer)
      } catch (err) {
        c.logger.debug({ err, peer, shard, segment }, 'a holder did not serve a piece')
      }
    }
    return undefined
  }

  // A segment's plaintext as one part per data piece (not copied into one buffer first).
  const decode = async (segment: number): Promise<Uint8Array[]> => {
    const pieces: (Uint8Array | undefined)[] = new Array(m.n).fill(undefined)
    // Data shards first (no decoding needed when all are there), then parity as needed.
    let have = 0
    for (let s = 0; s < m.n && have < m.k; ) {
      const batch: number[] = []
      for (; s < m.n && have + batch.length < m.k; s++) if (byShard.has(s)) batch.push(s)
      const got = await Promise.all(batch.map((shard) => fetchPiece(shard, segment)))
      got.forEach((p, i) => {
        if (p !== undefined) {
          pieces[batch[i] as number] = p
          have++
        }
      })
    }
    try {
      return decodeSegmentParts(m, key, segment, pieces)
    } catch (err) {
      if (!(err instanceof StorageError) || err.code === 'STORAGE_UNAVAILABLE') throw err
      // A piece was changed (or the key is wrong): fetch them all and leave each one out in turn.
      for (let s = 0; s < m.n; s++)
        if (pieces[s] === undefined && byShard.has(s)) pieces[s] = await fetchPiece(s, segment)
      for (let out = 0; out < m.n; out++) {
        if (pieces[out] === undefined) continue
        const without = pieces.map((p, i) => (i === out ? undefined : p))
        try {
          const plain = decodeSegmentParts(m, key, segment, without)
          const suspects = byShard.get(out) ?? []
          for (const peer of suspects) faulty.add(peer)
          c.logger.warn({ cid, shard: out, segment, holders: suspects }, 'a holder served a changed piece')
          return plain
        } catch {}
      }
      throw err
    }
  }

  const count = segmentCount(m)
  const window = options.window ?? 8
  const ahead: Promise<Uint8Array[]>[] = []
  let written = 0
  for (let i = 0; i < count; i++) {
    while (ahead.length < window && i + ahead.length < count) {
      const next = decode(i + ahead.length)
      // Handled here too: a failure ahead must not go unhandled if an earlier segment fails first.
      next.catch(() => undefined)
      ahead.push(next)
    }
    for (const plain of await (ahead.shift() as Promise<Uint8Array[]>)) {
      await sink(plain)
      written += plain.length
    }
    options.onProgress?.(written, m.size)
  }
  await receiptServed(c, cid, session, served, relayed, faulty, timeoutMs)
  return { manifest: m, bytes: written, faulty: [...faulty] }
}
