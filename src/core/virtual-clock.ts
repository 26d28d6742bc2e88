import { type Clock, sleepOn, type Timer } from './clock.js'
import { InvalidArgumentError } from './errors.js'

/** Where a {@link VirtualClock} starts unless told otherwise (2023-11-14T22:13:20Z). */
export const VIRTUAL_EPOCH_MS = 1_700_000_000_000

interface Entry {
  due: number
  seq: number
  /** Cleared when the timer fires or is cancelled. */
  fn: (() => void) | undefined
}

/** Lets every queued microtask (and promise chains they start) run before the next timer fires. */
const yieldToTasks = () => new Promise<void>((resolve) => setImmediate(resolve))

const earlier = (a: Entry, b: Entry) => a.due < b.due || (a.due === b.due && a.seq < b.seq)

/** A delay or a span of virtual time in whole ms; negative and NaN count as 0. */
const wholeMs = (ms: number) => (ms > 0 ? Math.ceil(ms) : 0)

/**
 * A {@link Clock} whose time moves only when told to, for tests and the simulator. Timers fire in
 * order of due time, then of creation; `now()` stays a whole number of ms, like `Date.now()`.
 * Advancing runs one timer at a time and lets promise chains settle between timers, so async code
 * woken by a timer runs at that timer's time.
 *
 * `advance` and `runUntil` calls run one after another, never interleaved.
 *
 * @example
 * ```ts
 * const clock = new VirtualClock()
 * const slept = clock.sleep(1_000)
 * await clock.advance(1_000) // `slept` has resolved, clock.now() is 1_000 ms later
 * ```
 */
export class VirtualClock implements Clock {
  #now: number
  #seq = 0
  /** A binary min-heap by (due, seq); cancelled entries stay until they reach the top. */
  #heap: Entry[] = []
  #live = 0
  #cancelled = 0
  #tail: Promise<unknown> = Promise.resolve()

  /** Starts the clock at `startMs` (ms since the Unix epoch, a whole number). */
  constructor(startMs: number = VIRTUAL_EPOCH_MS) {
    if (!Number.isSafeInteger(startMs) || startMs < 0) {
      throw new InvalidArgumentError(
        `a virtual clock starts at a whole, non-negative ms count, not ${startMs}`,
      )
    }
    this.#now = startMs
  }

  /** The virtual time, in ms since the Unix epoch. */
  now(): number {
    return this.#now
  }

  /** Schedules `fn` at `now() + ms` (rounded up to a whole ms; negative or NaN means now). */
  setTimer(ms: number, fn: () => void): Timer {
    const entry: Entry = { due: this.#now + wholeMs(ms), seq: this.#seq++, fn }
    this.#push(entry)
    this.#live++
    return {
      cancel: () => {
        if (entry.fn === undefined) return
        entry.fn = undefined
        this.#live--
        this.#cancelled++
        this.#compact()
      },
    }
  }

  /** Resolves once `ms` of virtual time has passed (see {@link sleepOn}). */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal)
  }

  /** Timers set and neither fired nor cancelled. */
  pending(): number {
    return this.#live
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way (including timers those
   * timers set), each at its own due time. A timer callback that throws rejects the returned promise.
   */
  advance(ms: number): Promise<void> {
    return this.#exclusive(async () => {
      await this.#runTo(this.#now + wholeMs(ms), () => false)
    })
  }

  /**
   * Fires timers one by one until `condition()` holds (resolves `true`) or `maxMs` of virtual time has
   * passed (resolves `false`, with the clock at the deadline). The condition is checked before the
   * first timer and after each one, once pending promise chains have settled.
   */
  runUntil(condition: () => boolean, maxMs: number): Promise<boolean> {
    return this.#exclusive(() => this.#runTo(this.#now + wholeMs(maxMs), condition))
  }

  async #runTo(deadline: number, condition: () => boolean): Promise<boolean> {
    await yieldToTasks()
    for (;;) {
      if (condition()) return true
      const next = this.#peek()
      if (next === undefined || next.due > deadline) break
      this.#pop()
      const fn = next.fn as () => void
      next.fn = undefined
      this.#live--
      if (next.due > this.#now) this.#now = next.due
      fn()
      await yieldToTasks()
    }
    if (Number.isFinite(deadline) && deadline > this.#now) this.#now = deadline
    return condition()
  }

  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(task)
    this.#tail = run.catch(() => undefined)
    return run
  }

  /** The earliest live entry, dropping cancelled ones on the way. */
  #peek(): Entry | undefined {
    for (;;) {
      const top = this.#heap[0]
      if (top === undefined || top.fn !== undefined) return top
      this.#pop()
      this.#cancelled--
    }
  }

  /** Rebuilds the heap when cancelled timers (say, request timeouts) make up most of it. */
  #compact(): void {
    if (this.#cancelled < 1_024 || this.#cancelled * 2 < this.#heap.length) return
    // A sorted array is a valid min-heap.
    this.#heap = this.#heap.filter((e) => e.fn !== undefined).sort((a, b) => a.due - b.due || a.seq - b.seq)
    this.#cancelled = 0
  }

  #push(entry: Entry): void {
    const heap = this.#heap
    let i = heap.length
    heap.push(entry)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent] as Entry
      if (!earlier(entry, p)) break
      heap[i] = p
      i = parent
    }
    heap[i] = entry
  }

  #pop(): void {
    const heap = this.#heap
    const last = heap.pop()
    if (last === undefined || heap.length === 0) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= heap.length) break
      const right = left + 1
      let child = left
      if (right < heap.length && earlier(heap[right] as Entry, heap[left] as Entry)) child = right
      const c = heap[child] as Entry
      if (!earlier(c, last)) break
      heap[i] = c
      i = child
    }
    heap[i] = last
  }
}
