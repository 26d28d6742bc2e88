import type { Clock } from '../core/clock.js'
import type { Logger } from '../core/logger.js'

/** Whether something answers its health check, and when it last did (ms, the prober's clock). */
export interface Health {
  online: boolean
  lastSeen: number | null
}

/** What {@link HealthProber} checks: a key (a peer id) and the base URL of its ops port. */
export type HealthTargets = () => ReadonlyMap<string, string>

/**
 * Checks each target's `GET /healthz` every `intervalMs` (in parallel, each with a deadline): a node
 * or verifier that stops answering is offline within one interval and a timeout. The devnet knows
 * its members' ops ports; an explorer would use verifiers' challenge results instead, behind the
 * same `health(id)` question.
 */
export class HealthProber {
  readonly #init: { intervalMs: number; timeoutMs: number }
  readonly #c: { targets: HealthTargets; clock: Clock; logger: Logger }
  readonly #health = new Map<string, Health>()
  readonly #listeners = new Set<(id: string, health: Health) => void>()
  #timer: { cancel(): void } | undefined
  #stopped = true

  constructor(
    init: { intervalMs?: number; timeoutMs?: number },
    components: { targets: HealthTargets; clock: Clock; logger: Logger },
  ) {
    this.#init = { intervalMs: init.intervalMs ?? 1_000, timeoutMs: init.timeoutMs ?? 1_500 }
    this.#c = components
  }

  /** The newest answer for `id`; offline and never seen when it was never probed. */
  health(id: string): Health {
    return this.#health.get(id) ?? { online: false, lastSeen: null }
  }

  /** Calls `listener` whenever a target goes on- or offline; returns the unsubscribe function. */
  onChange(listener: (id: string, health: Health) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Probes every target once now (resolves when all answered or timed out). */
  async probe(): Promise<void> {
    const targets = [...this.#c.targets()]
    await Promise.all(
      targets.map(async ([id, url]) => {
        let ok = false
        try {
          const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(this.#init.timeoutMs) })
          ok = res.ok
          await res.body?.cancel()
        } catch (err) {
          this.#c.logger.debug({ err, id, url }, 'health check failed')
        }
        const before = this.#health.get(id)
        const now: Health = { online: ok, lastSeen: ok ? this.#c.clock.now() : (before?.lastSeen ?? null) }
        this.#health.set(id, now)
        if (before === undefined || before.online !== ok) for (const l of this.#listeners) l(id, now)
      }),
    )
  }

  /** Probes now and then every interval until {@link stop}. */
  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    const loop = () => {
      void this.probe().finally(() => {
        if (!this.#stopped) this.#timer = this.#c.clock.setTimer(this.#init.intervalMs, loop)
      })
    }
    loop()
  }

  stop(): void {
    this.#stopped = true
    this.#timer?.cancel()
  }
}
