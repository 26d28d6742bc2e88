import type { CircuitRelayServerInit } from '@libp2p/circuit-relay-v2'
import type { ConnectionLimits } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'

/**
 * Circuit relay v2 as Meshwork uses it: a node with a public address may run a relay server for
 * peers behind NAT, every node can dial through relays, and a node behind NAT reserves a slot on the
 * relays it is told of and is reached at `RELAY/p2p-circuit/p2p/SELF`.
 *
 * The relay's limits apply to each relayed connection (bytes in both directions together, and time
 * since it opened); when one is reached the relay resets the connection and the next request dials
 * a new one. libp2p's defaults (128 KiB, 2 minutes) are sized for a hole-punching handshake and would
 * cut a storage download at its first piece (pieces are up to 4 MiB), so Meshwork's are larger, and
 * every request/response protocol of the network port runs on such limited connections.
 */

/** What a relay server grants each reservation. */
export interface RelayLimits {
  /** Peers holding a reservation at once. */
  maxReservations: number
  /** Bytes one relayed connection may carry (both directions together) before the relay resets it. */
  dataBytes: number
  /** Longest one relayed connection may stay open, in ms. */
  durationMs: number
  /** How long a reservation lasts before the peer must renew it (libp2p renews it by itself), in ms. */
  reservationTtlMs?: number
}

/** The default relay limits: 64 reservations; 64 MiB (16 of the largest pieces) and 10 minutes a connection. */
export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxReservations: 64,
  dataBytes: 64 * 2 ** 20,
  durationMs: 10 * 60_000,
})

/** The options of libp2p's `circuitRelayServer` for `limits`: reservations bounded, every connection limited. */
export function relayServerInit(limits: RelayLimits): CircuitRelayServerInit {
  return {
    reservations: {
      maxReservations: limits.maxReservations,
      applyDefaultLimit: true,
      defaultDataLimit: BigInt(limits.dataBytes),
      defaultDurationLimit: limits.durationMs,
      ...(limits.reservationTtlMs === undefined ? {} : { reservationTtl: limits.reservationTtlMs }),
    },
  }
}

/**
 * The peer id of the relay that a connection's remote address goes through
 * (`…/p2p/RELAY/p2p-circuit/…`), or undefined for a direct address or one that cannot be parsed.
 *
 * @example
 * ```ts
 * relayPeerOf('/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWRelay/p2p-circuit/p2p/12D3KooWTarget') // '12D3KooWRelay'
 * ```
 */
export function relayPeerOf(address: string): string | undefined {
  let components: { name: string; value?: string }[]
  try {
    components = multiaddr(address).getComponents()
  } catch {
    return undefined
  }
  const circuit = components.findIndex((c) => c.name === 'p2p-circuit')
  if (circuit < 1) return undefined
  const before = components[circuit - 1]
  return before?.name === 'p2p' ? before.value : undefined
}

/**
 * The address to listen on to be reached through `relay` (a multiaddr with `/p2p/RELAY`): listening
 * on it makes libp2p reserve a slot there and announce `relay/p2p-circuit/p2p/SELF`.
 *
 * @throws TypeError when `relay` is not a multiaddr ending in `/p2p/ID`.
 */
export function circuitListenAddress(relay: string): string {
  const components = multiaddr(relay).getComponents()
  const last = components[components.length - 1]
  if (last?.name !== 'p2p' || components.some((c) => c.name === 'p2p-circuit'))
    throw new TypeError(`a relay address must end in /p2p/ID and not be a circuit itself: ${relay}`)
  return `${relay}/p2p-circuit`
}

/**
 * Whether a request that may move `bytes` (both directions) and last `ms` fits in what a connection
 * has left: always on a connection without limits; on a relayed one, when its remaining bytes less
 * those `reserved` by requests in flight cover `bytes`, and its remaining time covers `ms`.
 */
export function fitsLimits(
  limits: ConnectionLimits | undefined,
  reserved: number,
  bytes: number,
  ms: number,
): boolean {
  if (limits === undefined) return true
  if (limits.bytes !== undefined && limits.bytes - BigInt(Math.ceil(reserved)) < BigInt(Math.ceil(bytes)))
    return false
  return limits.seconds === undefined || limits.seconds * 1000 >= ms
}
