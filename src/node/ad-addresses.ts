import type { PeerStore } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../core/logger.js'
import type { NetworkPort, Unsubscribe } from '../mesh/network-port.js'
import type { Envelope, WireCodec } from '../mesh/wire-codec.js'
import { ADVERTISEMENT, type Advertisement, adTopic } from './advertisement.js'

/**
 * Follows a network's advertisements and keeps each node's advertised addresses in libp2p's peer
 * store, so that a request to a node by its peer id alone (a verifier challenging the registry's
 * nodes) dials it where it says it is: at its relay's circuit for a node behind NAT, which the DHT
 * does not find. Every advertisement goes through the wire codec (signature, network, expiry,
 * replay); what fails is dropped with the codec's verdict. Returns the unsubscribe.
 *
 * @example
 * ```ts
 * const stop = followAdvertisedAddresses({ network }, { port, codec, peerStore: libp2p.peerStore, logger })
 * ```
 */
export function followAdvertisedAddresses(
  init: { network: string },
  components: {
    port: Pick<NetworkPort, 'subscribe'>
    /** Knows ADVERTISEMENT. */
    codec: WireCodec
    peerStore: Pick<PeerStore, 'merge'>
    logger: Logger
  },
): Unsubscribe {
  return components.port.subscribe(adTopic(init.network), async (m) => {
    const decoded = components.codec.decode(m.data, { from: m.from })
    if (!decoded.ok) return decoded.verdict
    if (decoded.envelope.type !== ADVERTISEMENT.type) return 'reject'
    const ad = decoded.envelope as Envelope<Advertisement>
    try {
      await components.peerStore.merge(peerIdFromString(ad.from), {
        multiaddrs: ad.body.addrs.map((a) => multiaddr(a)),
      })
    } catch (err) {
      // A signed advertisement with an address libp2p cannot parse: forwarded all the same.
      components.logger.debug({ err, peer: ad.from }, 'could not keep advertised addresses')
    }
    return 'accept'
  })
}
