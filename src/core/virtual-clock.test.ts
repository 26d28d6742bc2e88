import { describe, expect, it } from 'vitest'
import { VIRTUAL_EPOCH_MS, VirtualClock } from './virtual-clock.js'

describe('VirtualClock', () => {
  it('starts at the given epoch and moves only when advanced', async () => {
    expect(new VirtualClock().now()).toBe(VIRTUAL_EPOCH_MS)
    const clock = new VirtualClock(1_000)
    expect(clock.now()).toBe(1_000)
    await clock.advance(250)
    expect(clock.now()).toBe(1_250)
    expect(() => new VirtualClock(1.5)).toThrow(/whole/)
  })

  it('fires timers by due time, and equal times in the order they were set', async () => {
    const clock = new VirtualClock(0)
    const fired: string[] = []
    const at: number[] = []
    const timer = (name: string, ms: number) =>
      clock.setTimer(ms, () => {
        fired.push(name)
        at.push(clock.now())
      })
    timer('c', 30)
    timer('a1', 10)
    timer('b', 20)
    timer('a2', 10)
    timer('zero', 0)
    timer('negative', -5)
    timer('nan', Number.NaN)
    expect(clock.pending()).toBe(7)
    await clock.advance(25)
    expect(fired).toEqual(['zero', 'negative', 'nan', 'a1', 'a2', 'b'])
    expect(at).toEqual([0, 0, 0, 10, 10, 20])
    expect(clock.now()).toBe(25)
    expect(clock.pending()).toBe(1)
    await clock.advance(5)
    expect(fired.at(-1)).toBe('c')
    expect(clock.pending()).toBe(0)
  })

  it('fires timers set by fired timers when they fall inside the window', async () => {
    const clock = new VirtualClock(0)
    const fired: Array<[string, number]> = []
    clock.setTimer(10, () => {
      fired.push(['outer', clock.now()])
      clock.setTimer(5, () => {
        fired.push(['inner', clock.now()])
        clock.setTimer(100, () => fired.push(['late', clock.now()]))
      })
    })
    await clock.advance(50)
    expect(fired).toEqual([
      ['outer', 10],
      ['inner', 15],
    ])
    expect(clock.pending()).toBe(1)
    await clock.advance(100)
    expect(fired.at(-1)).toEqual(['late', 115])
  })

  it('lets async code woken by a timer run at that timer’s time, before the next timer', async () => {
    const clock = new VirtualClock(0)
    const seen: number[] = []
    const task = async () => {
      await clock.sleep(10)
      await Promise.resolve()
      seen.push(clock.now())
      await clock.sleep(10)
      seen.push(clock.now())
    }
    const done = task()
    clock.setTimer(15, () => seen.push(-clock.now()))
    await clock.advance(100)
    await done
    expect(seen).toEqual([10, -15, 20])
  })

  it('never fires a cancelled timer; cancel is idempotent', async () => {
    const clock = new VirtualClock(0)
    let fired = 0
    const t = clock.setTimer(10, () => fired++)
    clock.setTimer(20, () => fired++)
    t.cancel()
    t.cancel()
    expect(clock.pending()).toBe(1)
    await clock.advance(30)
    expect(fired).toBe(1)
    expect(clock.pending()).toBe(0)
    t.cancel()
    expect(clock.pending()).toBe(0)
  })

  it('keeps order through many cancellations (heap compaction)', async () => {
    const clock = new VirtualClock(0)
    const fired: number[] = []
    const timers = Array.from({ length: 5_000 }, (_, i) =>
      clock.setTimer(5_000 - i, () => fired.push(5_000 - i)),
    )
    timers.forEach((t, i) => {
      if (i % 3 !== 0) t.cancel()
    })
    expect(clock.pending()).toBe(1_667)
    await clock.advance(5_000)
    expect(fired).toEqual([...fired].sort((a, b) => a - b))
    expect(fired).toHaveLength(1_667)
  })

  it('sleeps, and rejects a sleep with the reason when its signal aborts', async () => {
    const clock = new VirtualClock(0)
    const slept = clock.sleep(100)
    let done = false
    void slept.then(() => {
      done = true
    })
    await clock.advance(99)
    expect(done).toBe(false)
    await clock.advance(1)
    expect(done).toBe(true)

    const controller = new AbortController()
    const aborted = clock.sleep(100, controller.signal)
    expect(clock.pending()).toBe(1)
    controller.abort(new Error('stop'))
    await expect(aborted).rejects.toThrow('stop')
    expect(clock.pending()).toBe(0)
    await expect(clock.sleep(1, controller.signal)).rejects.toThrow('stop')
  })

  it('runs until a condition holds, or gives up after maxMs at the deadline', async () => {
    const clock = new VirtualClock(0)
    let count = 0
    for (const ms of [10, 20, 30, 40]) clock.setTimer(ms, () => count++)
    expect(await clock.runUntil(() => count === 2, 1_000)).toBe(true)
    expect(clock.now()).toBe(20)
    expect(await clock.runUntil(() => count === 2, 1_000)).toBe(true)
    expect(clock.now()).toBe(20)
    expect(await clock.runUntil(() => count === 10, 100)).toBe(false)
    expect(clock.now()).toBe(120)
    expect(count).toBe(4)
  })

  it('runs concurrent advances one after another', async () => {
    const clock = new VirtualClock(0)
    const fired: number[] = []
    for (const ms of [5, 15, 25]) clock.setTimer(ms, () => fired.push(clock.now()))
    await Promise.all([clock.advance(10), clock.advance(10), clock.runUntil(() => fired.length === 3, 100)])
    expect(fired).toEqual([5, 15, 25])
    expect(clock.now()).toBe(25)
  })

  it('is deterministic: the same script gives the same events at the same times', async () => {
    const script = async () => {
      const clock = new VirtualClock(0)
      const log: string[] = []
      const worker = async (name: string, steps: number[]) => {
        for (const ms of steps) {
          await clock.sleep(ms)
          log.push(`${clock.now()}:${name}`)
          if (ms % 2 === 0) clock.setTimer(ms / 2, () => log.push(`${clock.now()}:${name}-echo`))
        }
      }
      const all = Promise.all([
        worker('a', [3, 4, 4, 8]),
        worker('b', [4, 3, 6, 2]),
        worker('c', [7, 1, 1, 1]),
      ])
      await clock.advance(100)
      await all
      return log
    }
    const first = await script()
    expect(first.length).toBeGreaterThan(12)
    expect(await script()).toEqual(first)
  })
})
