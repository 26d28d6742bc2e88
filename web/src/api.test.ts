import { describe, expect, it } from 'vitest'
import { withArrived } from './api.js'

describe('withArrived', () => {
  const byEpoch = (e: { epoch: number }) => e.epoch
  const newestFirst = (a: { epoch: number }, b: { epoch: number }) => b.epoch - a.epoch

  it('keeps an epoch pushed while a load taken before it was in flight', () => {
    // The load's snapshot has epochs 5 and 4; epoch 6 was posted and pushed meanwhile.
    const loaded = [{ epoch: 5 }, { epoch: 4 }]
    const pushed = [{ epoch: 6 }]
    expect(withArrived(loaded, pushed, byEpoch, 60, newestFirst).map(byEpoch)).toEqual([6, 5, 4])
  })

  it('takes the pushed copy of an item the load also has, and cuts the list to its limit', () => {
    const loaded = [
      { epoch: 3, claimed: '0' },
      { epoch: 2, claimed: '0' },
      { epoch: 1, claimed: '0' },
    ]
    const pushed = [
      { epoch: 3, claimed: '5' },
      { epoch: 4, claimed: '0' },
    ]
    expect(withArrived(loaded, pushed, byEpoch, 3, newestFirst)).toEqual([
      { epoch: 4, claimed: '0' },
      { epoch: 3, claimed: '5' },
      { epoch: 2, claimed: '0' },
    ])
  })

  it('puts pushed items first, newest first, where the list has no order of its own', () => {
    const loaded = [{ id: 'b' }, { id: 'a' }]
    const pushed = [{ id: 'c' }, { id: 'd' }]
    expect(withArrived(loaded, pushed, (j) => j.id, 10).map((j) => j.id)).toEqual(['d', 'c', 'b', 'a'])
    expect(withArrived(loaded, [], (j) => j.id, 10)).toEqual(loaded)
  })
})
