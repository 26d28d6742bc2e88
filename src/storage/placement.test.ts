import { describe, expect, it } from 'vitest'
import { rankHolders, type StorageCandidate } from './placement.js'

const c = (peerId: string, operator: string, cell: string, rttMs: number, price = 1n): StorageCandidate => ({
  peerId,
  operator,
  cell,
  rttMs,
  price,
  freeBytes: 2 ** 30,
})

describe('storage placement', () => {
  it('spreads shards over distinct operators, then distinct cells, before taking the nearest twice', () => {
    const ranked = rankHolders([
      c('a1', 'op-a', '872a1072bffffff', 1),
      c('a2', 'op-a', '872a1072bffffff', 2),
      c('b1', 'op-b', '872a1072bffffff', 3),
      c('c1', 'op-c', '872a10729ffffff', 40),
      c('d1', 'op-d', '872a10725ffffff', 80),
    ])
    // Nearest first; then the operator in a new cell (c1) before op-b's node in a used cell.
    expect(ranked.map((x) => x.peerId)).toEqual(['a1', 'c1', 'd1', 'b1', 'a2'])
  })

  it('prefers cheaper and nearer holders, and those near the wanted place', () => {
    const far = c('far', 'op-1', '8928308280fffff', 10)
    const near = c('near', 'op-2', '872a1072bffffff', 60)
    const pricey = c('pricey', 'op-3', '872a10729ffffff', 5, 16n)
    expect(rankHolders([far, near, pricey]).map((x) => x.peerId)[0]).toBe('far')
    expect(rankHolders([far, near, pricey], { near: { cell: '872a1072bffffff' } })[0]?.peerId).toBe('near')
  })
})
