import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'
import type { NetworkPort } from '../mesh/network-port.js'
import type { ServiceOffer } from './advertisement.js'

/** What a service gets from the node it plugs into. */
export interface ServiceContext {
  port: Pick<NetworkPort, 'peerId' | 'handle' | 'unhandle' | 'request' | 'publish' | 'subscribe'>
  clock: Clock
  logger: Logger
  /** The node's directory (services keep their data below it). */
  dir: string
}

/** A challenge a verifier sends to check a service (uptime, storage, compute re-runs…). */
export interface ServiceChallenge {
  kind: string
  /** The verifier's nonce and challenge-specific fields, already validated by the wire codec. */
  body: Record<string, unknown>
}

/**
 * A service a node offers: compute, inference, storage, relay or sensor. Each is one plugin with
 * this interface; the node advertises what they offer, starts them, and routes challenges to them.
 */
export interface NodeService {
  readonly name: ServiceOffer['name']
  /** What goes into the node's advertisement now (price, unit, parameters). */
  advertise(): ServiceOffer
  /** Starts serving: registers request handlers on the port. */
  start(context: ServiceContext): Promise<void>
  /** Stops serving; the node calls it in reverse start order. */
  stop(): Promise<void>
  /** Answers a verifier's challenge; the node signs and returns the answer. */
  answerChallenge(challenge: ServiceChallenge): Promise<Record<string, unknown>>
}
