import { describe, expect, it } from 'vitest'
import type { Clock } from '../core/clock.js'
import { DEFAULT_VERIFY_BOUNDS } from './verification.js'
import { VerifyBoundsCache, type VerifyBoundsReading } from './verify-bounds-cache.js'

const GENESIS = 1_000
const EPOCH = 10

/** A chain whose clock is `offsetS` seconds ahead of the local one, and a manual local clock. */
function setup(offsetS = 0) {
  let local = GENESIS * 1000 + 2_000
  const timers: { at: number; fn: () => void }[] = []
  const clock: Pick<Clock, 'now' | 'setTimer'> = {
    now: () => local,
    setTimer: (ms, fn) => {
      const t = { at: local + ms, fn }
      timers.push(t)
      return { cancel: () => timers.splice(timers.indexOf(t), 1) }
    },
  }
  let versions: { fromEpoch: bigint; minPpm: number; maxPpm: number }[] = [
    { fromEpoch: 0n, minPpm: 50_000, maxPpm: 1_000_000 },
  ]
  let failing = false
  const warnings: string[] = []
  const read = async (): Promise<VerifyBoundsReading> => {
    if (failing) throw new Error('connection refused')
    const chainTime = Math.floor(local / 1000) + offsetS
    const epoch = BigInt(Math.floor((chainTime - GENESIS) / EPOCH))
    const at = versions.filter((v) => v.fromEpoch <= epoch)
    const v = at[at.length - 1] as (typeof versions)[number]
    return { epoch, version: at.length, bounds: { minPpm: v.minPpm, maxPpm: v.maxPpm }, chainTime }
  }
  const cache = new VerifyBoundsCache(
    { genesisTime: GENESIS, epochDuration: EPOCH, retryMs: 30_000 },
    {
      read,
      clock,
      logger: { warn: (_: unknown, msg: string) => warnings.push(msg), debug: () => undefined } as never,
    },
  )
  return {
    cache,
    warnings,
    advance: (ms: number) => {
      local += ms
    },
    govern: (fromEpoch: bigint, minPpm: number, maxPpm: number) => {
      versions = [...versions, { fromEpoch, minPpm, maxPpm }]
    },
    fail: (on: boolean) => {
      failing = on
    },
  }
}

describe('the verification bounds cache', () => {
  it('reads the chain once an epoch, however many jobs ask, and follows a change from the epoch it applies in', async () => {
    const s = setup()
    const first = await Promise.all([s.cache.current(), s.cache.current(), s.cache.current()])
    expect(first.map((c) => c.bounds)).toEqual([
      DEFAULT_VERIFY_BOUNDS,
      DEFAULT_VERIFY_BOUNDS,
      DEFAULT_VERIFY_BOUNDS,
    ])
    expect(first[0]).toMatchObject({ source: 'chain', epoch: 0n, version: 1 })
    expect(s.cache.reads).toBe(1)
    // Executed in epoch 0, in force from epoch 1: epoch 0 keeps the old set, without reading.
    s.govern(1n, 1_000_000, 1_000_000)
    for (let i = 0; i < 50; i++) await s.cache.current()
    s.advance(7_900)
    expect((await s.cache.current()).bounds).toEqual(DEFAULT_VERIFY_BOUNDS)
    expect(s.cache.reads).toBe(1)
    s.advance(100)
    expect(await s.cache.current()).toMatchObject({
      source: 'chain',
      epoch: 1n,
      version: 2,
      bounds: { minPpm: 1_000_000, maxPpm: 1_000_000 },
    })
    expect(s.cache.reads).toBe(2)
  })

  it('times epochs by the chain’s clock, not the local one', async () => {
    // The chain is 7 s ahead: epoch 0 ends 1 s after the first read by the local clock.
    const s = setup(7)
    expect((await s.cache.current()).epoch).toBe(0n)
    s.advance(999)
    await s.cache.current()
    expect(s.cache.reads).toBe(1)
    s.advance(1)
    expect((await s.cache.current()).epoch).toBe(1n)
    expect(s.cache.reads).toBe(2)
  })

  it('without a chain uses the initial set; when the chain stops answering keeps the last set, warns, and asks again later', async () => {
    const local = new VerifyBoundsCache(
      { genesisTime: GENESIS, epochDuration: EPOCH },
      { clock: { now: () => 0, setTimer: () => ({ cancel: () => undefined }) } },
    )
    expect(await local.current()).toEqual({ bounds: DEFAULT_VERIFY_BOUNDS, source: 'initial' })
    expect(local.reads).toBe(0)

    const s = setup()
    s.fail(true)
    expect(await s.cache.current()).toEqual({ bounds: DEFAULT_VERIFY_BOUNDS, source: 'initial' })
    expect(s.warnings).toHaveLength(1)
    s.fail(false)
    s.govern(0n, 10, 20)
    s.advance(29_999)
    await s.cache.current()
    expect(s.cache.reads).toBe(1)
    s.advance(1)
    expect(await s.cache.current()).toMatchObject({ source: 'chain', bounds: { minPpm: 10, maxPpm: 20 } })
    s.fail(true)
    s.advance(EPOCH * 1000)
    expect(await s.cache.current()).toMatchObject({ source: 'stale', bounds: { minPpm: 10, maxPpm: 20 } })
    expect(s.warnings).toHaveLength(2)
  })
})
