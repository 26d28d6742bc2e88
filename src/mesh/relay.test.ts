import { describe, expect, it } from 'vitest'
import {
  circuitListenAddress,
  DEFAULT_RELAY_LIMITS,
  fitsLimits,
  relayPeerOf,
  relayServerInit,
} from './relay.js'

const RELAY = '12D3KooWGzh3Qm4JmXkWp1aoM3Y6rVDn3ziqBbLCj6k2w5xRyWNL'
const TARGET = '12D3KooWMtZ1P9t7XS2ARpKc1yQtUPGgeAPrYtqwJQSTWHBTVvrF'

describe('circuit relay addresses and limits', () => {
  it('finds the relay of a circuit address, and none in a direct or unparseable one', () => {
    expect(relayPeerOf(`/ip4/127.0.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${TARGET}`)).toBe(RELAY)
    expect(relayPeerOf(`/ip4/127.0.0.1/tcp/4001/ws/p2p/${RELAY}/p2p-circuit`)).toBe(RELAY)
    expect(relayPeerOf(`/ip4/127.0.0.1/tcp/4001/p2p/${TARGET}`)).toBeUndefined()
    expect(relayPeerOf('/ip4/127.0.0.1/tcp/4001/p2p-circuit')).toBeUndefined()
    expect(relayPeerOf('not a multiaddr')).toBeUndefined()
    expect(relayPeerOf('')).toBeUndefined()
  })

  it('listens through a relay at RELAY/p2p-circuit, and refuses an address without a peer id or already a circuit', () => {
    const relay = `/ip4/127.0.0.1/tcp/4001/p2p/${RELAY}`
    expect(circuitListenAddress(relay)).toBe(`${relay}/p2p-circuit`)
    expect(() => circuitListenAddress('/ip4/127.0.0.1/tcp/4001')).toThrow(TypeError)
    expect(() => circuitListenAddress(`${relay}/p2p-circuit/p2p/${TARGET}`)).toThrow(TypeError)
  })

  it('gives every reservation limits a 4 MiB piece fits in many times over, and a bounded count', () => {
    const init = relayServerInit(DEFAULT_RELAY_LIMITS)
    expect(init.reservations?.maxReservations).toBe(64)
    expect(init.reservations?.applyDefaultLimit).toBe(true)
    expect(init.reservations?.defaultDataLimit).toBe(64n * 2n ** 20n)
    expect(init.reservations?.defaultDurationLimit).toBe(600_000)
    expect(init.reservations?.reservationTtl).toBeUndefined()
    expect(
      relayServerInit({ ...DEFAULT_RELAY_LIMITS, reservationTtlMs: 5_000 }).reservations?.reservationTtl,
    ).toBe(5_000)
  })

  it('fits a request in a relayed connection only with the bytes and time it may need left, less what others hold', () => {
    expect(fitsLimits(undefined, 1e12, 1e12, 1e9)).toBe(true)
    const limits = { bytes: 10_000n, seconds: 60 }
    expect(fitsLimits(limits, 0, 10_000, 60_000)).toBe(true)
    expect(fitsLimits(limits, 1, 10_000, 60_000)).toBe(false)
    expect(fitsLimits(limits, 4_000, 6_000, 1_000)).toBe(true)
    expect(fitsLimits(limits, 0, 10_001, 1_000)).toBe(false)
    expect(fitsLimits(limits, 0, 1, 60_001)).toBe(false)
    expect(fitsLimits({ seconds: 5 }, 1e12, 1e12, 5_000)).toBe(true)
    expect(fitsLimits({ bytes: 0n }, 0, 1, 0)).toBe(false)
  })
})
