import type { JobView } from './schemas.js'

/**
 * The newest jobs a builder ran, in memory (a ring of `capacity`), for `GET /api/jobs` and the
 * `job` event. The devnet's demo builder records into it; an explorer would fill it from work receipts.
 */
export class JobLog {
  readonly #capacity: number
  readonly #jobs: JobView[] = []
  readonly #listeners = new Set<(job: JobView) => void>()

  constructor(init: { capacity?: number } = {}) {
    this.#capacity = init.capacity ?? 500
  }

  /** Keeps `job` (dropping the oldest past capacity) and tells the listeners. */
  record(job: JobView): void {
    this.#jobs.push(job)
    if (this.#jobs.length > this.#capacity) this.#jobs.splice(0, this.#jobs.length - this.#capacity)
    for (const l of this.#listeners) l(job)
  }

  /** The newest `limit` jobs, newest first. */
  list(limit: number): JobView[] {
    return this.#jobs.slice(-limit).reverse()
  }

  /** Calls `listener` with every job recorded from now on; returns the unsubscribe function. */
  subscribe(listener: (job: JobView) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}
