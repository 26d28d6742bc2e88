import { type Hex, zeroAddress } from 'viem'
import { z } from 'zod'
import type { ChannelRecord } from '../chain/actions/get-channel.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort, RequestContext } from '../mesh/network-port.js'
import { ComputeError, type ComputeErrorCode, computeErrorCodes } from './errors.js'

/**
 * Paying for jobs with Payments channels (docs/protocol.md, "Job payment").
 *
 * The builder opens a channel to a provider's operator on first use and names it in each job request
 * with a session signature (its channel key over this network, channel and its mesh peer id), so no one
 * else can run jobs on its credit. The node runs the job, bills its quoted price once per (channel,
 * job) and the builder then pays with a cumulative EIP-712 voucher over `/meshwork/pay/1`. A node
 * extends credit for at most `creditJobs` unpaid jobs per channel, and never beyond the deposit; it
 * keeps the latest voucher in SQLite before it acknowledges it and redeems on-chain in batches.
 * Paying after the result means a node that dies mid-job is never paid for it, and a job retried
 * elsewhere is paid once.
 */

export const PAY_PROTOCOL = '/meshwork/pay/1'
/** Largest voucher message accepted. */
export const MAX_PAY_BYTES = 1_024

const uint = z.string().regex(/^(0|[1-9][0-9]{0,38})$/, 'a decimal amount')
const signature = z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte signature (0x…)')

/** What a job request carries to pay for the job: the channel and the builder's session signature. */
export const payTicketSchema = z.object({ channel: uint, session: signature }).strict()
export type PayTicket = z.infer<typeof payTicketSchema>

/** A cumulative voucher on the wire. */
export const voucherSchema = z
  .object({ channel: uint, cumulative: uint, sig: signature, jobs: z.array(z.string().max(64)).max(64) })
  .strict()
export type WireVoucher = z.infer<typeof voucherSchema>

const voucherAnswerSchema = z.union([
  z.object({ ok: z.literal(true), paid: uint }).strict(),
  z
    .object({
      ok: z.literal(false),
      error: z.object({ code: z.enum(computeErrorCodes), message: z.string().max(1_000) }).strict(),
      paid: uint.optional(),
    })
    .strict(),
])

/** The text a builder signs (EIP-191) to use a channel from one mesh identity on one network. */
export function sessionText(network: string, channel: bigint, client: string): string {
  return `Meshwork payment session\nnetwork: ${network}\nchannel: ${channel}\nclient: ${client}`
}

/** What a provider needs from the chain. */
export interface ProviderLedger {
  /** The operator address channels must pay. */
  readonly operator: `0x${string}`
  channel(id: bigint): Promise<ChannelRecord>
  voucherSigner(channel: bigint, cumulative: bigint, sig: Hex): Promise<`0x${string}`>
  sessionSigner(text: string, sig: Hex): Promise<`0x${string}`>
  redeem(channel: bigint, cumulative: bigint, sig: Hex): Promise<void>
}

/** A provider's books for one channel. */
export interface ChannelBook {
  builder: string
  /** Everything billed on it, the latest voucher's cumulative amount (and signature), what was redeemed. */
  billed: bigint
  paid: bigint
  voucher: Hex | null
  redeemed: bigint
}

/** Where a provider keeps its books; writes are durable before they return. */
export interface PaymentStore {
  get(channel: bigint): ChannelBook | undefined
  /** Bills a job once per channel; false (and nothing changes) when it was billed before. */
  bill(channel: bigint, builder: string, jobId: string, amount: bigint, at: number): boolean
  voucher(channel: bigint, cumulative: bigint, sig: Hex, at: number): void
  redeemed(channel: bigint, cumulative: bigint, at: number): void
  /** Channels with a voucher not yet redeemed in full. */
  unredeemed(): { channel: bigint; book: ChannelBook }[]
}

/** An in-memory {@link PaymentStore} (tests, the simulator). */
export function memoryPaymentStore(): PaymentStore {
  const books = new Map<bigint, ChannelBook>()
  const bills = new Set<string>()
  return {
    get: (channel) => {
      const b = books.get(channel)
      return b && { ...b }
    },
    bill(channel, builder, jobId, amount) {
      const key = `${channel}:${jobId}`
      if (bills.has(key)) return false
      bills.add(key)
      const b = books.get(channel) ?? { builder, billed: 0n, paid: 0n, voucher: null, redeemed: 0n }
      books.set(channel, { ...b, billed: b.billed + amount })
      return true
    },
    voucher(channel, cumulative, sig) {
      const b = books.get(channel) ?? { builder: '', billed: 0n, paid: 0n, voucher: null, redeemed: 0n }
      books.set(channel, { ...b, paid: cumulative, voucher: sig })
    },
    redeemed(channel, cumulative) {
      const b = books.get(channel)
      if (b) books.set(channel, { ...b, redeemed: cumulative })
    },
    unredeemed: () =>
      [...books]
        .filter(([, b]) => b.paid > b.redeemed)
        .map(([channel, book]) => ({ channel, book: { ...book } })),
  }
}

/** A voucher a desk took: its channel and builder, the ids it names, and how much it raised the paid amount. */
export interface AcceptedVoucher {
  channel: bigint
  builder: string
  jobs: readonly string[]
  increment: bigint
}

/** A job admitted on credit: bill it once it ran, or release it. */
export interface Admission {
  channel: bigint
  builder: string
  price: bigint
  /** Bills the job (once per channel and job id) and frees its reservation. */
  bill(jobId: string): void
  /** Frees the reservation without billing (the job never ran). */
  release(): void
}

const max = (a: bigint, b: bigint) => (a > b ? a : b)

/**
 * A provider's cashier: admits paid jobs on bounded credit, takes vouchers and redeems them in
 * batches. Protocol logic only: the chain comes in as a {@link ProviderLedger}, the books as a
 * {@link PaymentStore}, time as `now`.
 */
export class PaymentDesk {
  readonly #init: Required<PaymentDeskInit>
  readonly #ledger: ProviderLedger
  readonly #store: PaymentStore
  readonly #now: () => number
  readonly #logger: Logger | undefined
  readonly #reserved = new Map<bigint, bigint>()
  readonly #channels = new Map<bigint, { record: ChannelRecord; at: number }>()
  readonly #sessions = new Map<string, string>()
  #redeeming: Promise<bigint> | undefined
  readonly #voucherListeners = new Set<(v: AcceptedVoucher) => void>()
  /** Outcomes by name (admitted, refused codes, vouchers, redeemed), for metrics and tests. */
  readonly counts = new Map<string, number>()

  constructor(
    init: PaymentDeskInit,
    components: { ledger: ProviderLedger; store: PaymentStore; now: () => number; logger?: Logger },
  ) {
    this.#init = { creditJobs: 8, channelTtlMs: 30_000, ...init }
    this.#ledger = components.ledger
    this.#store = components.store
    this.#now = components.now
    this.#logger = components.logger
  }

  #count(what: string): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1)
  }

  #refuse(code: ComputeErrorCode, message: string, hint?: string): never {
    this.#count(code)
    throw new ComputeError(code, message, hint ? { hint } : {})
  }

  async #channel(id: bigint, fresh: boolean): Promise<ChannelRecord> {
    const cached = this.#channels.get(id)
    if (cached && !fresh && this.#now() - cached.at < this.#init.channelTtlMs) return cached.record
    let record: ChannelRecord
    try {
      record = await this.#ledger.channel(id)
    } catch (err) {
      this.#logger?.warn({ err, channel: id.toString() }, 'could not read a payment channel')
      // Not the builder's fault: it should try another node.
      this.#refuse(
        'PAYMENT_REQUIRED',
        'this node cannot check payment channels now (its chain does not answer)',
        'Try another node',
      )
    }
    this.#channels.set(id, { record, at: this.#now() })
    return record
  }

  async #sessionBuilder(channel: bigint, client: string, sig: Hex): Promise<string> {
    const key = `${channel}|${client}|${sig}`
    let builder = this.#sessions.get(key)
    if (builder === undefined) {
      builder = (
        await this.#ledger
          .sessionSigner(sessionText(this.#init.network, channel, client), sig)
          .catch(() => zeroAddress)
      ).toLowerCase()
      if (this.#sessions.size >= 10_000) this.#sessions.clear()
      this.#sessions.set(key, builder)
    }
    return builder
  }

  /**
   * Admits a job at `price` for `client` on the ticket's channel, or refuses it with PAYMENT_REQUIRED
   * (no ticket, credit used up, deposit exhausted, channel closing) or PAYMENT_INVALID (unknown
   * channel, another provider's, a session not signed by its builder). Free jobs need no ticket.
   */
  async admit(ticket: PayTicket | undefined, client: string, price: bigint): Promise<Admission | undefined> {
    if (price === 0n) return undefined
    const operator = this.#ledger.operator
    if (!ticket)
      this.#refuse(
        'PAYMENT_REQUIRED',
        `this node charges ${price} base units per job`,
        `Open a Payments channel to ${operator} and name it in the request`,
      )
    const channel = BigInt(ticket.channel)
    let record = await this.#channel(channel, false)
    if (record.builder === zeroAddress) record = await this.#channel(channel, true)
    if (record.builder === zeroAddress) this.#refuse('PAYMENT_INVALID', `channel ${channel} does not exist`)
    if (record.provider.toLowerCase() !== operator.toLowerCase())
      this.#refuse(
        'PAYMENT_INVALID',
        `channel ${channel} pays ${record.provider}, not this node (${operator})`,
      )
    if (record.closed || record.closesAt !== 0n)
      this.#refuse('PAYMENT_REQUIRED', `channel ${channel} is closing or closed`, 'Open a new channel')
    const builder = await this.#sessionBuilder(channel, client, ticket.session as Hex)
    if (builder !== record.builder.toLowerCase())
      this.#refuse('PAYMENT_INVALID', `the session of channel ${channel} is not signed by its builder`)
    const book = this.#store.get(channel)
    const reserved = this.#reserved.get(channel) ?? 0n
    const owed = max(0n, (book ? book.billed - book.paid : 0n) + reserved)
    const credit = price * BigInt(this.#init.creditJobs)
    if (owed + price > credit)
      this.#refuse(
        'PAYMENT_REQUIRED',
        `channel ${channel} owes ${owed} base units for jobs already run`,
        'Pay the vouchers for earlier jobs first',
      )
    const committed = (n: ChannelRecord) => max(book?.paid ?? 0n, n.redeemed) + owed + price
    if (committed(record) > record.deposit) {
      record = await this.#channel(channel, true)
      if (committed(record) > record.deposit)
        this.#refuse(
          'PAYMENT_REQUIRED',
          `channel ${channel} has ${record.deposit - max(book?.paid ?? 0n, record.redeemed)} base units left, the job costs ${price}`,
          'Top up the channel (Payments.deposit)',
        )
    }
    // Read again: another admission of this channel may have reserved while the deposit was re-read.
    this.#reserved.set(channel, (this.#reserved.get(channel) ?? 0n) + price)
    this.#count('admitted')
    let open = true
    const release = () => {
      if (!open) return
      open = false
      const left = (this.#reserved.get(channel) ?? 0n) - price
      if (left > 0n) this.#reserved.set(channel, left)
      else this.#reserved.delete(channel)
    }
    return {
      channel,
      builder,
      price,
      bill: (jobId) => {
        if (open && this.#store.bill(channel, builder, jobId, price, this.#now())) this.#count('billed')
        release()
      },
      release,
    }
  }

  /**
   * Takes a voucher: it must be signed by the channel's builder, raise the cumulative amount and fit
   * the deposit. Stored before the answer. A voucher at or below what was paid is VOUCHER_STALE (the
   * answer says what was paid, so a builder whose later voucher arrived first knows it is covered).
   */
  async acceptVoucher(v: WireVoucher): Promise<bigint> {
    const channel = BigInt(v.channel)
    const cumulative = BigInt(v.cumulative)
    const record = await this.#channel(channel, false)
    if (
      record.builder === zeroAddress ||
      record.provider.toLowerCase() !== this.#ledger.operator.toLowerCase()
    )
      this.#refuse('PAYMENT_INVALID', `channel ${channel} does not pay this node`)
    const paid = this.#store.get(channel)?.paid ?? 0n
    if (cumulative <= max(paid, record.redeemed)) {
      this.#count('VOUCHER_STALE')
      throw new ComputeError(
        'VOUCHER_STALE',
        `channel ${channel} is paid up to ${max(paid, record.redeemed)}`,
        {
          details: { paid: max(paid, record.redeemed).toString() },
        },
      )
    }
    const signer = await this.#ledger
      .voucherSigner(channel, cumulative, v.sig as Hex)
      .catch(() => zeroAddress)
    if (signer.toLowerCase() !== record.builder.toLowerCase())
      this.#refuse('PAYMENT_INVALID', `the voucher for channel ${channel} is not signed by its builder`)
    if (cumulative > record.deposit) {
      const fresh = await this.#channel(channel, true)
      if (cumulative > fresh.deposit)
        this.#refuse(
          'PAYMENT_INVALID',
          `the voucher for channel ${channel} exceeds its deposit (${fresh.deposit})`,
        )
    }
    // Concurrent vouchers: only ever move forward.
    const now = this.#store.get(channel)?.paid ?? 0n
    if (cumulative > now) {
      this.#store.voucher(channel, cumulative, v.sig as Hex, this.#now())
      const accepted: AcceptedVoucher = {
        channel,
        builder: record.builder.toLowerCase(),
        jobs: v.jobs,
        increment: cumulative - now,
      }
      for (const listener of this.#voucherListeners) {
        try {
          listener(accepted)
        } catch (err) {
          this.#logger?.warn({ err, channel: channel.toString() }, 'a voucher listener failed')
        }
      }
    }
    this.#count('voucher')
    return max(cumulative, now)
  }

  /**
   * Calls `listener` with every voucher that raised a channel's paid amount, once it is stored (the
   * storage holder credits rent with it). Returns a function that removes it.
   */
  onVoucher(listener: (v: AcceptedVoucher) => void): () => void {
    this.#voucherListeners.add(listener)
    return () => void this.#voucherListeners.delete(listener)
  }

  readonly #serving = new Map<object, number>()

  /**
   * Serves {@link PAY_PROTOCOL} on `port`; returns a function that stops it. Services sharing the
   * desk (compute and storage) each call it: the protocol stays served until the last one stops.
   */
  serve(port: Pick<NetworkPort, 'handle' | 'unhandle'>): () => void {
    const users = this.#serving.get(port) ?? 0
    if (users === 0)
      port.handle(PAY_PROTOCOL, (request, ctx) => this.#serve(request, ctx), {
        maxRequestBytes: MAX_PAY_BYTES,
      })
    this.#serving.set(port, users + 1)
    let stopped = false
    return () => {
      if (stopped) return
      stopped = true
      const left = (this.#serving.get(port) ?? 1) - 1
      if (left > 0) this.#serving.set(port, left)
      else {
        this.#serving.delete(port)
        port.unhandle(PAY_PROTOCOL)
      }
    }
  }

  async #serve(request: Uint8Array, _ctx: RequestContext): Promise<Uint8Array> {
    const answer = (body: unknown) => new TextEncoder().encode(JSON.stringify(body))
    try {
      let voucher: WireVoucher
      try {
        voucher = voucherSchema.parse(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request)))
      } catch {
        this.#refuse('PAYMENT_INVALID', 'the voucher message is malformed')
      }
      const paid = await this.acceptVoucher(voucher)
      return answer({ ok: true, paid: paid.toString() })
    } catch (err) {
      const e = err as ComputeError
      const code = (computeErrorCodes as readonly string[]).includes(e.code) ? e.code : 'PAYMENT_INVALID'
      if (code === 'PAYMENT_INVALID' && !(err instanceof ComputeError))
        this.#logger?.warn({ err }, 'voucher check failed')
      const paid = (e.details as { paid?: string } | undefined)?.paid
      return answer({
        ok: false,
        error: { code, message: e.message.slice(0, 1_000) },
        ...(paid ? { paid } : {}),
      })
    }
  }

  /**
   * Redeems every channel whose latest voucher is not yet redeemed in full (one transaction per
   * channel); returns the amount redeemed. A failure leaves the voucher for the next round.
   */
  redeemDue(): Promise<bigint> {
    this.#redeeming ??= this.#redeem().finally(() => {
      this.#redeeming = undefined
    })
    return this.#redeeming
  }

  async #redeem(): Promise<bigint> {
    let total = 0n
    for (const { channel, book } of this.#store.unredeemed()) {
      if (book.voucher === null) continue
      try {
        const record = await this.#channel(channel, true)
        if (record.redeemed >= book.paid) {
          this.#store.redeemed(channel, record.redeemed, this.#now())
          continue
        }
        await this.#ledger.redeem(channel, book.paid, book.voucher)
        this.#store.redeemed(channel, book.paid, this.#now())
        total += book.paid - max(book.redeemed, record.redeemed)
        this.#count('redeemed')
      } catch (err) {
        this.#count('redeem_failed')
        this.#logger?.warn({ err, channel: channel.toString() }, 'could not redeem a voucher; will retry')
      }
    }
    return total
  }

  /** What channels owe and hold (for status and metrics). */
  totals(): { unredeemed: bigint; channels: number } {
    let unredeemed = 0n
    const list = this.#store.unredeemed()
    for (const { book } of list) unredeemed += book.paid - book.redeemed
    return { unredeemed, channels: list.length }
  }
}

/** Options of {@link PaymentDesk}. */
export interface PaymentDeskInit {
  network: string
  /** Unpaid jobs a channel may have outstanding (default 8). */
  creditJobs?: number
  /** How long a channel read is trusted (default 30 s). */
  channelTtlMs?: number
}

/** What a builder needs from the chain. */
export interface BuilderLedger {
  readonly address: `0x${string}`
  openChannel(provider: `0x${string}`, deposit: bigint): Promise<bigint>
  deposit(channel: bigint, amount: bigint): Promise<void>
  signVoucher(channel: bigint, cumulative: bigint): Promise<Hex>
  signSession(text: string): Promise<Hex>
}

interface WalletChannel {
  id: bigint
  deposit: bigint
  /** The highest cumulative amount signed, and what running jobs may still add. */
  signed: bigint
  pending: bigint
  session: Hex
  topUp: Promise<void>
}

/**
 * A builder's wallet: one channel per provider operator, opened on first use with `deposit` (topped
 * up by as much again when it runs low), and a cumulative voucher per job, sent once per (node, job).
 */
export class PaymentWallet {
  readonly #init: { network: string; client: string; deposit: bigint }
  readonly #ledger: BuilderLedger
  readonly #channels = new Map<string, Promise<WalletChannel>>()
  readonly #paid = new Set<string>()
  #spent = 0n

  constructor(init: { network: string; client: string; deposit?: bigint }, ledger: BuilderLedger) {
    this.#init = { deposit: 10n ** 18n, ...init }
    this.#ledger = ledger
  }

  /** The builder's address. */
  get address(): `0x${string}` {
    return this.#ledger.address
  }

  /** Total signed over in vouchers this session. */
  get spent(): bigint {
    return this.#spent
  }

  #channel(provider: string, price: bigint): Promise<WalletChannel> {
    const key = provider.toLowerCase()
    let ch = this.#channels.get(key)
    if (!ch) {
      ch = (async () => {
        const deposit = max(this.#init.deposit, price * 4n)
        const id = await this.#ledger.openChannel(provider as `0x${string}`, deposit)
        const session = await this.#ledger.signSession(sessionText(this.#init.network, id, this.#init.client))
        return { id, deposit, signed: 0n, pending: 0n, session, topUp: Promise.resolve() }
      })()
      this.#channels.set(key, ch)
      ch.catch(() => this.#channels.delete(key))
    }
    return ch
  }

  /**
   * The ticket for a job at `price` on `provider`'s node: opens the channel on first use and tops
   * it up when the job would not fit. `undefined` for free jobs. Call {@link pay} or {@link cancel}
   * after the run.
   */
  async ticket(provider: string, price: bigint): Promise<PayTicket | undefined> {
    if (price === 0n) return undefined
    const ch = await this.#channel(provider, price)
    ch.pending += price
    if (ch.signed + ch.pending > ch.deposit) {
      const run = ch.topUp.then(async () => {
        if (ch.signed + ch.pending <= ch.deposit) return
        const amount = max(this.#init.deposit, ch.signed + ch.pending - ch.deposit)
        await this.#ledger.deposit(ch.id, amount)
        ch.deposit += amount
      })
      ch.topUp = run.catch(() => undefined)
      try {
        await run
      } catch (err) {
        ch.pending -= price
        throw err
      }
    }
    return { channel: ch.id.toString(), session: ch.session }
  }

  /** Forgets a ticket whose job was not billed. */
  async cancel(provider: string, price: bigint): Promise<void> {
    if (price === 0n) return
    const ch = await this.#channel(provider, price)
    ch.pending -= price
  }

  /**
   * Whether `jobId` on `node` was signed into a voucher this session (a voucher the node did not
   * acknowledge still counts: every later voucher on the channel carries it in its cumulative amount).
   */
  hasPaid(node: string, jobId: string): boolean {
    return this.#paid.has(`${node}|${jobId}`)
  }

  /**
   * Pays `node` for `jobId` with the next cumulative voucher (once per node and job), and waits for
   * the node to acknowledge it.
   *
   * @throws ComputeError PAYMENT_INVALID when the node refuses the voucher.
   */
  async pay(
    port: Pick<NetworkPort, 'request'>,
    node: string,
    provider: string,
    jobId: string,
    price: bigint,
  ): Promise<void> {
    if (price === 0n) return
    const key = `${node}|${jobId}`
    if (this.#paid.has(key)) return
    this.#paid.add(key)
    const ch = await this.#channel(provider, price)
    ch.pending -= price
    ch.signed += price
    this.#spent += price
    const cumulative = ch.signed
    const sig = await this.#ledger.signVoucher(ch.id, cumulative)
    const body: WireVoucher = {
      channel: ch.id.toString(),
      cumulative: cumulative.toString(),
      sig,
      jobs: [jobId],
    }
    const bytes = await port.request(node, PAY_PROTOCOL, new TextEncoder().encode(JSON.stringify(body)), {
      timeoutMs: 10_000,
      maxResponseBytes: 4_096,
    })
    let answer: z.infer<typeof voucherAnswerSchema>
    try {
      answer = voucherAnswerSchema.parse(JSON.parse(new TextDecoder().decode(bytes)))
    } catch {
      throw new ComputeError('PAYMENT_INVALID', `node ${node} sent a malformed voucher answer`)
    }
    if (answer.ok) return
    // A later voucher of ours got there first: it covers this one.
    if (
      answer.error.code === 'VOUCHER_STALE' &&
      answer.paid !== undefined &&
      BigInt(answer.paid) >= cumulative
    )
      return
    throw new ComputeError(answer.error.code, `node ${node} refused the voucher: ${answer.error.message}`)
  }
}
