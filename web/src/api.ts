import { useEffect, useState } from 'preact/hooks'
import type {
  EpochView,
  GovernanceView,
  JobView,
  NetworkView,
  NodeDetailView,
  NodeStorageView,
  NodeView,
  ParamChangeView,
  ProposalView,
  SensorReadingView,
} from '../../src/api/schemas.js'

export type {
  EpochView,
  GovernanceView,
  JobView,
  NetworkView,
  NodeDetailView,
  NodeStorageView,
  NodeView,
  ParamChangeView,
  ProposalView,
  SensorReadingView,
}

/** Fetches `path` from the API (same origin) as JSON; throws with the API's error message. */
export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } })
  const body = (await res.json()) as T & { error?: { code: string; message: string } }
  if (!res.ok)
    throw new Error(body.error ? `${body.error.message} [${body.error.code}]` : `HTTP ${res.status}`)
  return body
}

/** Everything the overview shows, kept live by the API's server-sent events. */
export interface LiveState {
  network: NetworkView | undefined
  nodes: NodeView[]
  epochs: EpochView[]
  jobs: JobView[]
  /** The latest reading of each sensor and kind (when the API serves sensors). */
  sensors: SensorReadingView[]
  /** Parameters, their history and the proposals (when the API serves governance). */
  governance: GovernanceView | undefined
  /** Whether the event stream is open. */
  live: boolean
  /** The browser's clock minus the chain's, at the last network update (for countdowns). */
  clockOffsetMs: number
  error: string | undefined
}

const KEEP_EPOCHS = 60
const KEEP_JOBS = 200
const KEEP_SENSORS = 200

/** Loads the overview's data once, then follows `/api/events`; reloads in full after a reconnect. */
export function useLiveState(): LiveState {
  const [state, setState] = useState<LiveState>({
    network: undefined,
    nodes: [],
    epochs: [],
    jobs: [],
    sensors: [],
    governance: undefined,
    live: false,
    clockOffsetMs: 0,
    error: undefined,
  })
  useEffect(() => {
    let closed = false
    /** Epochs and jobs pushed while the newest load was in flight (its snapshot may predate them). */
    let arrived: { epochs: EpochView[]; jobs: JobView[] } | undefined
    const load = async () => {
      const during = { epochs: [] as EpochView[], jobs: [] as JobView[] }
      arrived = during
      try {
        const [network, nodes, epochs, jobs] = await Promise.all([
          getJson<NetworkView>('/api/network'),
          getJson<{ nodes: NodeView[] }>('/api/nodes'),
          getJson<{ epochs: EpochView[] }>(`/api/epochs?limit=${KEEP_EPOCHS}`),
          getJson<{ jobs: JobView[] }>(`/api/jobs?limit=${KEEP_JOBS}`),
        ])
        const sensors = network.features.includes('sensors')
          ? (await getJson<{ readings: SensorReadingView[] }>(`/api/sensors/latest?limit=${KEEP_SENSORS}`))
              .readings
          : []
        const governance = network.features.includes('governance')
          ? await getJson<GovernanceView>('/api/governance')
          : undefined
        if (closed) return
        setState((s) => ({
          ...s,
          network,
          sensors,
          governance,
          nodes: nodes.nodes,
          epochs: withArrived(
            epochs.epochs,
            during.epochs,
            (e) => e.epoch,
            KEEP_EPOCHS,
            (a, b) => b.epoch - a.epoch,
          ),
          jobs: withArrived(jobs.jobs, during.jobs, (j) => j.id, KEEP_JOBS),
          clockOffsetMs: Date.now() - network.head.timestamp * 1_000,
          error: undefined,
        }))
      } catch (err) {
        if (!closed) setState((s) => ({ ...s, error: (err as Error).message }))
      } finally {
        if (arrived === during) arrived = undefined
      }
    }
    const reloadNodes = async () => {
      try {
        const { nodes } = await getJson<{ nodes: NodeView[] }>('/api/nodes')
        if (!closed) setState((s) => ({ ...s, nodes }))
      } catch {
        // The next network event tries again.
      }
    }
    void load()
    const events = new EventSource('/api/events')
    let opened = false
    events.onopen = () => {
      setState((s) => ({ ...s, live: true }))
      // A reconnect may have missed changes: load everything again.
      if (opened) void load()
      opened = true
    }
    events.onerror = () => setState((s) => ({ ...s, live: false }))
    events.addEventListener('network', (e) => {
      const network = JSON.parse((e as MessageEvent<string>).data) as NetworkView
      setState((s) => {
        // A node left the registry (joins come as node events): take the list again.
        if (network.nodes < s.nodes.length) void reloadNodes()
        return { ...s, network, clockOffsetMs: Date.now() - network.head.timestamp * 1_000 }
      })
    })
    events.addEventListener('node', (e) => {
      const node = JSON.parse((e as MessageEvent<string>).data) as NodeView
      setState((s) => {
        const i = s.nodes.findIndex((n) => n.peerId === node.peerId)
        const nodes = i < 0 ? [...s.nodes, node] : s.nodes.map((n, j) => (j === i ? node : n))
        return { ...s, nodes }
      })
    })
    events.addEventListener('epoch', (e) => {
      const epoch = JSON.parse((e as MessageEvent<string>).data) as EpochView
      arrived?.epochs.push(epoch)
      setState((s) => {
        const rest = s.epochs.filter((x) => x.epoch !== epoch.epoch)
        const epochs = [epoch, ...rest].sort((a, b) => b.epoch - a.epoch).slice(0, KEEP_EPOCHS)
        return { ...s, epochs }
      })
    })
    events.addEventListener('job', (e) => {
      const job = JSON.parse((e as MessageEvent<string>).data) as JobView
      arrived?.jobs.push(job)
      setState((s) => ({ ...s, jobs: [job, ...s.jobs.filter((j) => j.id !== job.id)].slice(0, KEEP_JOBS) }))
    })
    events.addEventListener('sensor', (e) => {
      const r = JSON.parse((e as MessageEvent<string>).data) as SensorReadingView
      setState((s) => {
        const rest = s.sensors.filter((x) => !(x.sensor === r.sensor && x.kind === r.kind))
        return { ...s, sensors: [r, ...rest].slice(0, KEEP_SENSORS) }
      })
    })
    events.addEventListener('governance', (e) => {
      const governance = JSON.parse((e as MessageEvent<string>).data) as GovernanceView
      setState((s) => ({ ...s, governance }))
    })
    return () => {
      closed = true
      events.close()
    }
  }, [])
  return state
}

/**
 * A loaded list with the items pushed while it loaded: those replace the loaded item of the same
 * key, or join the list (then sorted by `order`, newest first, if given; else put first), and the
 * list is cut to `limit`. Without this, a load whose snapshot was taken before an epoch was posted
 * dropped that epoch's pushed event, and the timeline missed it until the page reloaded.
 */
export function withArrived<T>(
  loaded: readonly T[],
  pushed: readonly T[],
  key: (item: T) => string | number,
  limit: number,
  order?: (a: T, b: T) => number,
): T[] {
  if (pushed.length === 0) return [...loaded]
  const newest = new Map<string | number, T>()
  for (const item of pushed) newest.set(key(item), item)
  const kept = loaded.filter((item) => !newest.has(key(item)))
  const merged = [...[...newest.values()].reverse(), ...kept]
  if (order !== undefined) merged.sort(order)
  return merged.slice(0, limit)
}

/** MESH (18 decimals) for people: at most `digits` decimals, thousands grouped. */
export function mesh(amount: string, digits = 2): string {
  const v = BigInt(amount)
  const whole = v / 10n ** 18n
  const frac = Number((v % 10n ** 18n) / 10n ** BigInt(18 - digits)) / 10 ** digits
  return `${(Number(whole) + frac).toLocaleString('en-US', { maximumFractionDigits: digits })} MESH`
}

/** A MESH amount as a float, for charts. */
export function meshNumber(amount: string): number {
  return Number(BigInt(amount) / 10n ** 14n) / 10_000
}

/** A peer id shortened for tables: its first 8 and last 4 characters. */
export function short(peerId: string): string {
  return peerId.length > 16 ? `${peerId.slice(0, 8)}…${peerId.slice(-4)}` : peerId
}

/** ppm as a percentage with one decimal. */
export function pct(ppm: number): string {
  return `${(ppm / 10_000).toFixed(1)}%`
}

/** Bytes for people: `512 B`, `32.0 KiB`, `1.5 MiB`, `2.00 GiB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}
