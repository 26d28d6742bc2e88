import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import { createPeerSigner, type PeerSigner } from '../mesh/peer-key.js'
import { createWireCodec, type WireCodec } from '../mesh/wire-codec.js'
import { AdTable, type KnownAd } from './ad-table.js'
import { ADVERTISEMENT, type Advertisement, adTopic, type Resources } from './advertisement.js'
import { Advertiser } from './advertiser.js'
import type { NodeDatabase } from './database.js'
import type { NodeErrorCode } from './errors.js'
import type { NodeIdentity } from './identity.js'
import { createNodeMetrics, type NodeMetrics } from './node-metrics.js'
import type { NodeService } from './service.js'
import { serveUptimeChallenges } from './uptime.js'

/** Options of {@link NodeAgent}. */
export interface NodeAgentInit {
  /** The network id messages are bound to (`networkIdOf`). */
  network: string
  h3Cell: string
  tier: 'edge' | 'cloud'
  version: string
  refreshMs: number
  ttlMs: number
  dir: string
}

/** What the agent runs on: the mesh through a port, time through a clock, state in SQLite. */
export interface NodeAgentComponents {
  port: NetworkPort
  clock: Clock
  db: Pick<NodeDatabase, 'nextSeq' | 'recordError' | 'recentErrors'>
  identity: Pick<NodeIdentity, 'peerKey' | 'peerId' | 'operatorAddress'>
  resources: Resources
  logger: Logger
  services?: readonly NodeService[]
  /** Where other nodes can dial this one (multiaddrs without /p2p). */
  addresses?: () => string[]
}

/** What `meshwork node status` shows. */
export interface NodeStatus {
  peerId: string
  operator: string | undefined
  addresses: string[]
  peers: string[]
  ads: KnownAd[]
  adSeq: number | undefined
  errors: { at: number; code: string; message: string }[]
}

/**
 * The operator's node: advertises itself and its services on the mesh, keeps the table of other
 * nodes, and runs the service plugins. It knows nothing of sockets or wall-clock time, so the same
 * agent runs on libp2p and in the simulator.
 */
export class NodeAgent {
  readonly metrics: NodeMetrics
  readonly table: AdTable
  readonly codec: WireCodec
  readonly #init: NodeAgentInit
  readonly #c: NodeAgentComponents
  readonly #advertiser: Advertiser
  readonly #signer: PeerSigner
  readonly #services: readonly NodeService[]
  #started: NodeService[] = []
  #stopChallenges: (() => void) | undefined
  #adSeq: number | undefined

  constructor(init: NodeAgentInit, components: NodeAgentComponents) {
    this.#init = init
    this.#c = components
    this.#services = components.services ?? []
    if (!components.identity.operatorAddress) {
      throw new RangeError('a node needs an operator or payout address to advertise')
    }
    this.table = new AdTable({ clock: components.clock })
    this.metrics = createNodeMetrics({
      peers: () => components.port.peers().length,
      ads: () => this.table.size,
      startedAt: components.clock.now(),
      now: () => components.clock.now(),
    })
    this.#signer = createPeerSigner(components.identity.peerKey)
    this.codec = createWireCodec({
      network: init.network,
      signer: this.#signer,
      clock: components.clock,
      types: [ADVERTISEMENT],
      nextSeq: (type) => components.db.nextSeq(type),
      onReject: (reason) => this.metrics.rejected(reason),
    })
    this.#advertiser = new Advertiser(
      {
        topic: adTopic(init.network),
        refreshMs: init.refreshMs,
        ttlMs: init.ttlMs,
        ad: () => this.advertisement(),
      },
      {
        port: components.port,
        codec: this.codec,
        clock: components.clock,
        table: this.table,
        logger: components.logger,
        onPublished: (seq) => {
          this.#adSeq = seq
          this.metrics.published(seq)
        },
        onAd: () => this.metrics.messageIn('ad'),
        onStaleAd: () => this.metrics.messageIn('ad_stale'),
        onError: (err) => this.recordError('AD_PUBLISH_FAILED', (err as Error)?.message ?? String(err)),
      },
    )
  }

  /** This node's advertisement as of now. */
  advertisement(): Advertisement {
    return {
      operator: this.#c.identity.operatorAddress as `0x${string}`,
      services: this.#services.map((s) => s.advertise()),
      resources: this.#c.resources,
      h3Cell: this.#init.h3Cell,
      tier: this.#init.tier,
      version: this.#init.version,
      addrs: (this.#c.addresses?.() ?? []).slice(0, 16),
    }
  }

  /** Answers uptime challenges, starts the services, then advertises. */
  async start(): Promise<void> {
    this.#stopChallenges = serveUptimeChallenges(this.#c.port, {
      network: this.#init.network,
      signer: this.#signer,
      onChallenge: (_from, ok) =>
        ok ? this.metrics.messageIn('challenge') : this.metrics.rejected('malformed'),
    })
    for (const service of this.#services) {
      await service.start({
        port: this.#c.port,
        clock: this.#c.clock,
        logger: this.#c.logger,
        dir: this.#init.dir,
      })
      this.#started.push(service)
    }
    await this.#advertiser.start()
    this.#c.logger.info(
      { peerId: this.#c.identity.peerId, services: this.#services.map((s) => s.name) },
      'started node',
    )
  }

  /**
   * Publishes the advertisement now, between refreshes: when what it says changed, e.g. a node behind
   * NAT got its relay reservation and has a circuit address to be dialled at.
   */
  async advertiseNow(): Promise<void> {
    await this.#advertiser.publishNow()
  }

  /** Stops advertising, then the services in reverse order. */
  async stop(): Promise<void> {
    this.#advertiser.stop()
    this.#stopChallenges?.()
    this.#stopChallenges = undefined
    for (const service of this.#started.reverse()) {
      await service
        .stop()
        .catch((err: unknown) =>
          this.#c.logger.warn({ err, service: service.name }, 'failed to stop a service'),
        )
    }
    this.#started = []
  }

  /** Records an error for `node status` and logs it. */
  recordError(code: NodeErrorCode, message: string): void {
    this.#c.logger.warn({ code }, message)
    this.#c.db.recordError(this.#c.clock.now(), code, message)
  }

  status(): NodeStatus {
    return {
      peerId: this.#c.identity.peerId,
      operator: this.#c.identity.operatorAddress,
      addresses: this.#c.addresses?.() ?? [],
      peers: this.#c.port.peers(),
      ads: this.table.list(),
      adSeq: this.#adSeq,
      errors: this.#c.db.recentErrors(20),
    }
  }
}
