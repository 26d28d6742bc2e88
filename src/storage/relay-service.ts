import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { WireCodec } from '../mesh/wire-codec.js'
import type { ServiceOffer } from '../node/advertisement.js'
import type { NodeService, ServiceChallenge, ServiceContext } from '../node/service.js'
import { storageTopic } from './challenge.js'
import { StorageError, type StorageErrorCode } from './errors.js'
import {
  BANDWIDTH_RECEIPT,
  type BandwidthReceiptBody,
  frame,
  RELAY_RECEIPT_PROTOCOL,
  STORAGE_RECEIPT,
  STORAGE_RESPONSE,
  unframe,
} from './protocol.js'
import { ReceiptTally } from './receipt-tally.js'

/**
 * A relay node's delivery bandwidth: the node runs a circuit relay v2 server (libp2p, see
 * `src/mesh/relay.ts`), and the peers that received bytes through it (downloaders for pieces they
 * got, holders for pieces uploaded to them) hand it their signed, cumulative byte receipts over
 * `/meshwork/relay/1`. This service checks each (signed by the
 * peer that sends it, naming this node) and gossips it on the storage topic, as holders gossip
 * theirs, so verifiers count the relayed bytes as this node's bandwidth. What the relay counts itself
 * pays nothing: only the downloader's signature does.
 */

/** Options of {@link RelayService}. */
export interface RelayServiceInit {
  /** The network id (receipts go out on its storage topic). */
  network: string
  /** Download sessions remembered for the bytes-receipted total (default 10,000). */
  maxSessions?: number
  /**
   * Forward the storage topic's receipts (checked as holders check them) on a node without the
   * storage service: a holder behind NAT gossips over the connections it dials out, often only to its
   * relay, and gossipsub forwards a topic only through peers subscribed to it (default false).
   */
  forwardStorageTopic?: boolean
}

/** The parts it works with. */
export interface RelayServiceComponents {
  /** Checks downloaders' receipts (knows BANDWIDTH_RECEIPT). */
  codec: WireCodec
  logger: Logger
  /** Reservations held on this node's relay server now. */
  reservations: () => number
}

/** What a relay has done since it started (metrics). */
export interface RelayCounts {
  /** Downloaders' receipts taken and gossiped. */
  receipts: number
  /** Bytes those receipts added (cumulative per session, so a repeated receipt adds nothing). */
  bytes: number
  /** Receipts refused: malformed, forged, replayed, or naming another node. */
  refused: number
  /** Reservations held now. */
  reservations: number
}

/**
 * Hands `receipt` (a signed byte receipt naming `relay`) to the relay over `/meshwork/relay/1`.
 *
 * @throws StorageError with the relay's code when it refuses; MeshError when it cannot be reached.
 */
export async function handRelayReceipt(
  port: Pick<NetworkPort, 'request'>,
  relay: string,
  receipt: Uint8Array,
  timeoutMs: number,
): Promise<void> {
  const { header } = unframe(
    await port.request(relay, RELAY_RECEIPT_PROTOCOL, receipt, { timeoutMs }),
    STORAGE_RESPONSE,
  )
  if (!header.ok)
    throw new StorageError(
      header.code.startsWith('STORAGE_') ? (header.code as StorageErrorCode) : 'STORAGE_REFUSED',
      `${relay}: ${header.message}`,
    )
}

/** Largest relay receipt request (a signed envelope of about 400 bytes). */
const MAX_RELAY_RECEIPT_BYTES = 2_048

/** The relay service: a {@link NodeService} plugin, on where `[relay] enabled = true`. */
export class RelayService implements NodeService {
  readonly name = 'relay' as const
  readonly #init: RelayServiceInit
  readonly #c: RelayServiceComponents
  readonly #tally: ReceiptTally
  #context: ServiceContext | undefined
  #unsubscribe: (() => void) | undefined
  #receipts = 0
  #refused = 0

  constructor(init: RelayServiceInit, components: RelayServiceComponents) {
    this.#init = init
    this.#c = components
    this.#tally = new ReceiptTally(init.maxSessions)
  }

  get counts(): RelayCounts {
    return {
      receipts: this.#receipts,
      bytes: this.#tally.bytes,
      refused: this.#refused,
      reservations: this.#c.reservations(),
    }
  }

  advertise(): ServiceOffer {
    // Relaying is paid from the relay pool by downloaders' receipts, not by the downloader.
    return { name: 'relay', price: '0', unit: 'GiB', params: { reservations: this.#c.reservations() } }
  }

  async start(context: ServiceContext): Promise<void> {
    this.#context = context
    context.port.handle(RELAY_RECEIPT_PROTOCOL, async (request, { from }) => this.#take(request, from), {
      maxRequestBytes: MAX_RELAY_RECEIPT_BYTES,
    })
    if (this.#init.forwardStorageTopic === true)
      this.#unsubscribe = context.port.subscribe(storageTopic(this.#init.network), (m) => {
        // As holders check them: storage receipts from their publisher, byte receipts from anyone
        // (signed by whoever received the bytes).
        const decoded = this.#c.codec.decode(m.data)
        if (!decoded.ok) return decoded.verdict
        if (decoded.envelope.type === BANDWIDTH_RECEIPT.type) return 'accept'
        return decoded.envelope.type === STORAGE_RECEIPT.type && decoded.envelope.from === m.from
          ? 'accept'
          : 'reject'
      })
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    this.#context?.port.unhandle(RELAY_RECEIPT_PROTOCOL)
    this.#context = undefined
  }

  async answerChallenge(challenge: ServiceChallenge): Promise<Record<string, unknown>> {
    throw new StorageError('STORAGE_REQUEST_INVALID', `relay answers no ${challenge.kind} challenge here`)
  }

  /** One downloader's receipt: checked, counted, gossiped; a refusal is answered with its code. */
  #take(request: Uint8Array, from: string): Uint8Array {
    const context = this.#context
    if (context === undefined) throw new StorageError('STORAGE_REFUSED', 'the relay service is stopped')
    const decoded = this.#c.codec.decode(request, { from })
    let refusal: string | undefined
    if (!decoded.ok) refusal = `not a valid signed receipt from its sender (${decoded.reason})`
    else if (decoded.envelope.type !== BANDWIDTH_RECEIPT.type) refusal = 'not a byte receipt'
    else if ((decoded.envelope.body as BandwidthReceiptBody).holder !== context.port.peerId)
      refusal = 'the receipt names another node'
    if (refusal !== undefined || !decoded.ok) {
      this.#refused++
      this.#c.logger.debug({ from, refusal }, 'refuse a relay receipt')
      return frame({ ok: false, code: 'STORAGE_REQUEST_INVALID', message: refusal ?? 'invalid' })
    }
    const r = decoded.envelope.body as BandwidthReceiptBody
    this.#receipts++
    this.#tally.add(from, r.session, r.bytes)
    context.port
      .publish(storageTopic(this.#init.network), request)
      .catch((err: unknown) => this.#c.logger.debug({ err }, 'could not gossip a relay receipt'))
    return frame({ ok: true })
  }
}
