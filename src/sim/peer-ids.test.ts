import { describe, expect, it } from 'vitest'
import { ed25519PeerIds, PARALLEL_PEER_IDS } from './peer-ids.js'
import { seedBytes } from './random.js'
import { ed25519PeerId } from './world.js'

describe('ed25519PeerIds', () => {
  it('derives the same ids on helper threads as one at a time, in order', () => {
    const seeds = Array.from({ length: PARALLEL_PEER_IDS + 300 }, (_, i) => seedBytes(4, 'node', i))
    const one = seeds.map((s) => ed25519PeerId(s))
    expect(ed25519PeerIds(seeds, 1)).toEqual(one)
    expect(ed25519PeerIds(seeds, 2)).toEqual(one)
    expect(ed25519PeerIds(seeds, 0)).toEqual(one)
    expect(new Set(one).size).toBe(seeds.length)
  }, 60_000)

  it('alone below the threshold, and for none', () => {
    const seeds = [seedBytes(4, 'node', 0), seedBytes(4, 'node', 1)]
    expect(ed25519PeerIds(seeds)).toEqual(seeds.map((s) => ed25519PeerId(s)))
    expect(ed25519PeerIds([])).toEqual([])
  })
})
