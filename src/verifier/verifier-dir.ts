import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Ed25519PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { cellToLatLng, isValidCell } from 'h3-js'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { z } from 'zod'
import { type NetworkFile, readNetworkFile } from '../chain/network-file.js'
import { InvalidArgumentError } from '../core/errors.js'
import { writeSecretFile } from '../core/secret-file.js'
import { loadTomlConfig } from '../core/toml-config.js'
import { apiSection, chainSection, meshSection } from '../node/config.js'
import { readOperatorKeyFile, readPeerKeyFile } from '../node/identity.js'
import { openVerifierStore } from './store.js'

/** File names inside a verifier directory. */
export const VERIFIER_FILES = {
  peerKey: 'peer.key',
  operatorKey: 'operator.key',
  config: 'config.toml',
  database: 'verifier.db',
} as const

const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/4011']
const DEFAULT_API = '127.0.0.1:9470'

/** A verifier's configuration: one schema, defaults in it, validated at start, then frozen. */
export const verifierConfigSchema = z
  .object({
    verifier: z
      .object({
        /** Uptime challenges per node per epoch (the schedule draws this many instants). */
        challengesPerEpoch: z.number().int().min(1).max(64).default(4),
        /** How long a node has to answer a challenge. */
        challengeTimeoutMs: z.number().int().min(50).max(30_000).default(2_000),
        /** Chunk challenges per stored shard per epoch (0: no proof of storage). */
        storageChallengesPerShard: z.number().int().min(0).max(64).default(2),
        /** How long a holder has to send a challenged chunk and its proof: a disk read, not a download. */
        storageTimeoutMs: z.number().int().min(50).max(30_000).default(2_000),
        /** After an epoch ends, how long the leader waits for late observations. */
        graceSeconds: z.number().min(0).max(600).default(2),
        /** How long a leader has to get its root posted before the next one takes over. */
        leaderTimeoutSeconds: z.number().min(1).max(3_600).default(30),
        /** How often the chain is polled. */
        pollMs: z.number().int().min(50).max(60_000).default(1_000),
        /** Where this verifier is (an H3 cell; empty: unknown): its round trips then bound where nodes are. */
        h3Cell: z
          .string()
          .refine((c) => c === '' || isValidCell(c), 'not a valid H3 cell index')
          .default(''),
      })
      .strict()
      .default({
        challengesPerEpoch: 4,
        challengeTimeoutMs: 2_000,
        storageChallengesPerShard: 2,
        storageTimeoutMs: 2_000,
        graceSeconds: 2,
        leaderTimeoutSeconds: 30,
        pollMs: 1_000,
        h3Cell: '',
      }),
    mesh: meshSection(DEFAULT_LISTEN),
    api: apiSection(DEFAULT_API),
    chain: chainSection(),
  })
  .strict()

export type VerifierConfig = z.infer<typeof verifierConfigSchema>

/** A verifier's identity: its libp2p key (peer id) and the EVM key it registered and signs roots with. */
export interface VerifierIdentity {
  peerKey: Ed25519PrivateKey
  peerId: string
  operatorKey: Hex
  address: `0x${string}`
}

/** A verifier directory, loaded. */
export interface LoadedVerifierDir {
  dir: string
  config: Readonly<VerifierConfig>
  identity: VerifierIdentity
  network: NetworkFile
  databasePath: string
}

/**
 * Creates a verifier directory: peer.key (libp2p identity), operator.key (the EVM key that stakes
 * and signs roots), a commented config.toml and the SQLite store. Refuses a directory that already
 * holds an identity.
 */
export async function initVerifierDir(init: {
  dir: string
  apiListen?: string
  listen?: string[]
}): Promise<VerifierIdentity> {
  const peerPath = join(init.dir, VERIFIER_FILES.peerKey)
  if (existsSync(peerPath)) {
    throw new InvalidArgumentError(`${init.dir} already holds an identity`, {
      hint: 'Start it with `meshwork verifier start`, or pass --dir with a new directory',
    })
  }
  mkdirSync(init.dir, { recursive: true, mode: 0o700 })
  const peerKey = await generateKeyPair('Ed25519')
  writeSecretFile(peerPath, privateKeyToProtobuf(peerKey))
  const operatorKey = generatePrivateKey()
  writeSecretFile(join(init.dir, VERIFIER_FILES.operatorKey), `${operatorKey}\n`)
  writeFileSync(
    join(init.dir, VERIFIER_FILES.config),
    renderVerifierConfig({ apiListen: init.apiListen ?? DEFAULT_API, listen: init.listen ?? DEFAULT_LISTEN }),
    { flag: 'wx' },
  )
  openVerifierStore(join(init.dir, VERIFIER_FILES.database)).close()
  return {
    peerKey,
    peerId: peerIdFromPrivateKey(peerKey).toString(),
    operatorKey,
    address: privateKeyToAccount(operatorKey).address,
  }
}

/** Loads a verifier directory made by {@link initVerifierDir}, with one-line errors that name the fix. */
export function loadVerifierDir(dir: string, env: NodeJS.ProcessEnv = process.env): LoadedVerifierDir {
  const config = loadTomlConfig(join(dir, VERIFIER_FILES.config), verifierConfigSchema, {
    env,
    missingHint: 'Run `meshwork verifier init --dir DIR` first, or pass --dir DIR',
  })
  const peerPath = join(dir, VERIFIER_FILES.peerKey)
  const operatorPath = join(dir, VERIFIER_FILES.operatorKey)
  if (!existsSync(peerPath) || !existsSync(operatorPath)) {
    throw new InvalidArgumentError(`${dir} holds no verifier identity`, {
      hint: 'Run `meshwork verifier init --dir DIR` first',
    })
  }
  const peerKey = readPeerKeyFile(peerPath)
  const operatorKey = readOperatorKeyFile(operatorPath)
  const networkPath = isAbsolute(config.chain.network)
    ? config.chain.network
    : join(dir, config.chain.network)
  return {
    dir,
    config,
    identity: {
      peerKey,
      peerId: peerIdFromPrivateKey(peerKey).toString(),
      operatorKey,
      address: privateKeyToAccount(operatorKey).address,
    },
    network: readNetworkFile(networkPath),
    databasePath: join(dir, VERIFIER_FILES.database),
  }
}

/** The commented config file `meshwork verifier init` writes. */
export function renderVerifierConfig(init: { apiListen: string; listen: string[] }): string {
  const list = (xs: readonly string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`
  return `# Meshwork verifier configuration (TOML).
# Every key can be overridden from the environment: MESHWORK_<SECTION>__<KEY_IN_UPPER_SNAKE>,
# e.g. MESHWORK_VERIFIER__CHALLENGES_PER_EPOCH=8.

[verifier]
# Uptime challenges per node per epoch, at instants drawn from the epoch's first block hash.
challengesPerEpoch = 4
# How long a node has to answer a challenge (ms).
challengeTimeoutMs = 2000
# Proof of storage: chunk challenges per stored shard per epoch (0: none), and how long a holder has
# to send the chunk and its Merkle path (ms): reading it from a disk fits, fetching it elsewhere does not.
storageChallengesPerShard = 2
storageTimeoutMs = 2000
# After an epoch ends, how long its leader waits for late observations before building the bundle.
graceSeconds = 2
# How long a leader has to get its root posted before the next verifier takes over.
leaderTimeoutSeconds = 30
# How often the chain is polled (ms).
pollMs = 1000
# Where this verifier is, as an H3 cell (empty: not said). Its round trips to nodes then bound where
# their sensors can be (light in fibre covers about 100 km per ms of round trip): proof of location.
h3Cell = ""

[mesh]
# Addresses to listen on.
listen = ${list(init.listen)}
# Extra bootstrap peers (/ip4/…/tcp/…/p2p/12D3KooW…), added to those of the network file.
bootstrap = []
# Find peers on the local network with mDNS.
mdns = false

[api]
# Prometheus /metrics, /healthz, /status and the epoch bundles (GET /bundles/CID).
listen = ${JSON.stringify(init.apiListen)}

[chain]
# The network file (relative to this directory unless absolute), and an RPC URL if not the file's.
network = "network.json"
rpc = ""
`
}

/** The latitude and longitude of a verifier's configured cell (its centre). */
export function placeOf(h3Cell: string): { lat: number; lon: number } {
  const [lat, lon] = cellToLatLng(h3Cell)
  return { lat, lon }
}
