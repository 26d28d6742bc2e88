import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { ConnectionGater, Ed25519PrivateKey } from '@libp2p/interface'
import { systemClock } from '../../src/core/clock.js'
import { createLogger } from '../../src/core/logger.js'
import { createMeshLibp2p, type MeshLibp2p, type MeshLibp2pInit } from '../../src/mesh/create-libp2p.js'
import { createLibp2pPort } from '../../src/mesh/libp2p-port.js'
import type { NetworkPort } from '../../src/mesh/network-port.js'
import { adTopic } from '../../src/node/advertisement.js'
import { type NodeDatabase, openNodeDatabase } from '../../src/node/database.js'
import { NodeAgent } from '../../src/node/node-agent.js'
import type { NodeService } from '../../src/node/service.js'

/**
 * Node agents on real libp2p on 127.0.0.1, wired as `meshwork node start` wires them (one libp2p
 * node and one SQLite database an agent, the advertisement topic scored, the wall clock), for the
 * integration tests.
 */

export const LIVE_NET = '31337:0xregistry'
export const LIVE_TOPIC = adTopic(LIVE_NET)
export const LIVE_CELL = '871f1d489ffffff'
export const LIVE_OPERATOR = '0x000000000000000000000000000000000000dEaD'
export const LIVE_REFRESH_MS = 10_000
export const LIVE_TTL_MS = 60_000
export const LIVE_RESOURCES = { cores: 2, memoryMb: 4_096, diskFreeMb: 10_000, gpus: [] }
/** Gossipsub's default graylist threshold: below it, a peer's RPCs are ignored. */
export const GRAYLIST_THRESHOLD = -80

/** Polls `condition` every `everyMs` until it holds; rejects after `timeoutMs` of real time. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** The node's TCP address (with /p2p/), to bootstrap from. */
export function tcpAddr(node: MeshLibp2p): string {
  const addr = node.getMultiaddrs().find((a) => !a.toString().includes('/ws'))
  if (addr === undefined) throw new Error('node has no TCP address')
  return addr.toString()
}

/** A libp2p node and its network port, as `meshwork node start` builds them. */
export async function startMeshPort(
  key: Ed25519PrivateKey,
  bootstrap: string[],
  connectionGater?: ConnectionGater,
  mesh: Pick<MeshLibp2pInit, 'listen' | 'relay'> = {},
): Promise<{ libp2p: MeshLibp2p; port: NetworkPort }> {
  const libp2p = await createMeshLibp2p({
    privateKey: key,
    bootstrap,
    scoredTopics: [LIVE_TOPIC],
    // Every peer of a test is 127.0.0.1: libp2p's 5 connections a second per host is too few.
    inboundConnectionThreshold: 1_000,
    ...(connectionGater === undefined ? {} : { connectionGater }),
    ...mesh,
  })
  return { libp2p, port: createLibp2pPort(libp2p) }
}

/** A running agent; `stop()` stops it as the node does (agent, mesh, database), once. */
export interface LiveNode {
  key: Ed25519PrivateKey
  peerId: string
  dbPath: string
  libp2p: MeshLibp2p
  port: NetworkPort
  agent: NodeAgent
  stop(): Promise<void>
}

/**
 * Starts and stops live agents for one test file: `stopAll()` in `afterEach` stops what a test
 * started even when it failed midway, `cleanUp()` in `afterAll` removes the temporary directories.
 */
export class LiveNodes {
  readonly #running = new Set<{ stop(): Promise<void> }>()
  readonly #dirs: string[] = []

  /** A fresh directory for a node's database, removed by `cleanUp()`. */
  tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'mw-live-node-'))
    this.#dirs.push(dir)
    return dir
  }

  /** Stops `stop` with the others in `stopAll()` (e.g. an attacker's bare port). */
  track(stoppable: { stop(): Promise<void> }): void {
    this.#running.add(stoppable)
  }

  /** Forgets a stoppable that stopped by itself (so that it can be garbage collected). */
  untrack(stoppable: { stop(): Promise<void> }): void {
    this.#running.delete(stoppable)
  }

  /** Starts an agent on its own libp2p node and database; the same key and path continue a node. */
  async start(
    options: {
      key?: Ed25519PrivateKey
      dbPath?: string
      bootstrap?: string[]
      network?: string
      /** Service plugins (compute…), given the node's database once it is open. */
      services?: (db: NodeDatabase, key: Ed25519PrivateKey) => NodeService[]
      operator?: `0x${string}`
      cell?: string
      /** The node's directory (services keep data below it; default: the database's directory). */
      dir?: string
      /** Listen addresses and circuit relay options of its libp2p node (default: loopback, no relay server). */
      mesh?: Pick<MeshLibp2pInit, 'listen' | 'relay'>
    } = {},
  ): Promise<LiveNode> {
    const key = options.key ?? (await generateKeyPair('Ed25519'))
    const dbPath = options.dbPath ?? join(this.tempDir(), 'node.db')
    const db: NodeDatabase = openNodeDatabase(dbPath)
    const { libp2p, port } = await startMeshPort(key, options.bootstrap ?? [], undefined, options.mesh)
    const peerId = libp2p.peerId.toString()
    const agent = new NodeAgent(
      {
        network: options.network ?? LIVE_NET,
        h3Cell: options.cell ?? LIVE_CELL,
        tier: 'edge',
        version: 'test',
        refreshMs: LIVE_REFRESH_MS,
        ttlMs: LIVE_TTL_MS,
        dir: options.dir ?? dirname(dbPath),
      },
      {
        port,
        clock: systemClock,
        db,
        identity: { peerKey: key, peerId, operatorAddress: options.operator ?? LIVE_OPERATOR },
        resources: LIVE_RESOURCES,
        logger: createLogger({ level: 'silent' }),
        ...(options.services ? { services: options.services(db, key) } : {}),
        addresses: () => libp2p.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/[^/]+$/, '')),
      },
    )
    let stopped: Promise<void> | undefined
    const node: LiveNode = {
      key,
      peerId,
      dbPath,
      libp2p,
      port,
      agent,
      // In reverse order of the composition root: agent, mesh, database.
      stop: () => {
        stopped ??= (async () => {
          await agent.stop()
          await port.close()
          db.close()
          this.#running.delete(node)
        })()
        return stopped
      },
    }
    this.#running.add(node)
    await agent.start()
    return node
  }

  /** Stops everything started or tracked, newest first. */
  async stopAll(): Promise<void> {
    const all = [...this.#running].reverse()
    this.#running.clear()
    for (const n of all) await n.stop()
  }

  cleanUp(): void {
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  }
}

/** How many messages the agent has rejected for `reason` (its Prometheus counter). */
export async function rejectedCount(agent: NodeAgent, reason: string): Promise<number> {
  const metric = await agent.metrics.registry.getSingleMetric('meshwork_node_messages_rejected_total')?.get()
  return metric?.values.find((v) => v.labels.reason === reason)?.value ?? 0
}
