import type {
  ComponentLogger,
  Connection,
  Libp2pEvents,
  Logger,
  PeerId,
  Startable,
  TypedEventTarget,
} from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { relayPeerOf } from './relay.js'

/** What {@link RelayKeeper} uses of the libp2p components. */
export interface RelayKeeperComponents {
  transportManager: {
    /** Starts listening on `addrs` (a circuit address makes a reservation on its relay). */
    listen(addrs: Multiaddr[]): Promise<void>
    /** The addresses listened on now (a circuit listener's, once its reservation holds). */
    getAddrs(): Multiaddr[]
  }
  connectionManager: { getConnections(peerId?: PeerId): Connection[] }
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** Options of {@link RelayKeeper}. */
export interface RelayKeeperInit {
  /** `RELAY/p2p-circuit` addresses to be reachable at (see `circuitListenAddress`). */
  circuits: Multiaddr[]
  /** Retry after a refused or failed reservation: first and longest wait, in ms. */
  backoffMs: { min: number; max: number }
}

/** While reserved (or waiting for the relay), how often a keeper loop checks (a connect or disconnect wakes it early). */
const CHECK_MS = 5_000

/**
 * Keeps a node behind NAT reserved on each of its relays. libp2p reserves a slot on a relay when the
 * node listens on `RELAY/p2p-circuit`, but a relay that is down at start fails the node's start, and
 * one that restarts is not reserved on again. So the circuits are not listen addresses: this service
 * listens on each once its relay is connected (the bootstrap dialer keeps it connected) and the node
 * has no address through it, again after the relay drops and comes back, and with backoff after a
 * refusal (a relay that is full).
 */
export class RelayKeeper implements Startable {
  private readonly components: RelayKeeperComponents
  private readonly init: RelayKeeperInit
  private readonly log: Logger
  private stopController = new AbortController()
  private readonly wakers = new Set<() => void>()
  private readonly wake = (): void => {
    for (const w of this.wakers) w()
  }

  constructor(components: RelayKeeperComponents, init: RelayKeeperInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('meshwork:relay-keeper')
  }

  readonly [Symbol.toStringTag] = 'meshwork:relay-keeper'

  start(): void {
    this.stopController = new AbortController()
  }

  afterStart(): void {
    this.components.events.addEventListener('peer:connect', this.wake)
    this.components.events.addEventListener('peer:disconnect', this.wake)
    for (const circuit of this.init.circuits) {
      this.keepReserved(circuit, this.stopController.signal).catch((err: unknown) =>
        this.log.error('reservation loop for %a ended - %e', circuit, err),
      )
    }
  }

  beforeStop(): void {
    this.stopController.abort()
    this.components.events.removeEventListener('peer:connect', this.wake)
    this.components.events.removeEventListener('peer:disconnect', this.wake)
    this.wake()
  }

  stop(): void {}

  /** Whether the node has an address through `relay` now. */
  reservedOn(relay: string): boolean {
    return this.components.transportManager.getAddrs().some((a) => relayPeerOf(a.toString()) === relay)
  }

  private async keepReserved(circuit: Multiaddr, signal: AbortSignal): Promise<void> {
    const relay = relayPeerOf(circuit.toString())
    if (relay === undefined) return
    const connected = (): boolean =>
      this.components.connectionManager.getConnections().some((c) => c.remotePeer.toString() === relay)
    const { min, max } = this.init.backoffMs
    let backoff = min
    while (!signal.aborted) {
      if (this.reservedOn(relay) || !connected()) {
        await this.wait(CHECK_MS, signal)
        continue
      }
      try {
        await this.components.transportManager.listen([circuit])
        backoff = min
        this.log('reserved on relay %s', relay)
      } catch (err) {
        if (signal.aborted) return
        this.log('could not reserve on relay %s, retry in %d ms - %e', relay, backoff, err)
        await this.wait(backoff, signal, false)
        backoff = Math.min(backoff * 2, max)
      }
    }
  }

  /** Waits `ms`, or less when the keeper stops or (if `wakeOnChange`) a peer connects or disconnects. */
  private wait(ms: number, signal: AbortSignal, wakeOnChange = true): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve()
        return
      }
      const done = (): void => {
        clearTimeout(timer)
        this.wakers.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      if (wakeOnChange) this.wakers.add(done)
      signal.addEventListener('abort', done, { once: true })
    })
  }
}
