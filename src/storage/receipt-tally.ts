/**
 * A relay's running total of the bytes downloaders receipted it for. Receipts are cumulative within
 * a download session, so each adds only what it raises its session's count by: a repeated or older
 * receipt adds nothing. Sessions are remembered up to `maxSessions`, the oldest forgotten first (a
 * forgotten session's next receipt counts in full again: the total is for metrics, not for pay).
 */
export class ReceiptTally {
  readonly #sessions = new Map<string, number>()
  readonly #max: number
  /** Bytes receipted so far. */
  bytes = 0

  constructor(maxSessions = 10_000) {
    this.#max = Math.max(1, maxSessions)
  }

  /** Records `bytes` (cumulative) for `downloader`'s `session`; returns what it added to the total. */
  add(downloader: string, session: string, bytes: number): number {
    const key = `${downloader}/${session}`
    const before = this.#sessions.get(key)
    if (before !== undefined && bytes <= before) return 0
    this.#sessions.delete(key)
    this.#sessions.set(key, bytes)
    while (this.#sessions.size > this.#max) {
      const oldest = this.#sessions.keys().next().value as string
      this.#sessions.delete(oldest)
    }
    const added = bytes - (before ?? 0)
    this.bytes += added
    return added
  }
}
