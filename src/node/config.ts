import { isValidCell } from 'h3-js'
import { isAddress } from 'viem'
import { z } from 'zod'
import { loadTomlConfig } from '../core/toml-config.js'

/** The `[mesh]` section of a node's or verifier's config, listening on `listen` by default. */
export function meshSection(listen: string[]) {
  return z
    .object({
      listen: z.array(z.string().min(1).max(256)).min(1).max(16).default(listen),
      /** Extra bootstrap peers (multiaddrs with /p2p/ID), on top of the network file's. */
      bootstrap: z.array(z.string().min(1).max(512)).max(64).default([]),
      /** Find peers on the local network (on in devnet). */
      mdns: z.boolean().default(false),
    })
    .strict()
    .default({ listen, bootstrap: [], mdns: false })
}

/** The `[api]` section: metrics, health and status (and a verifier's bundles); keep it on loopback. */
export function apiSection(listen: string) {
  return z
    .object({
      listen: z
        .string()
        .regex(/^[\w.:[\]-]+:\d{1,5}$/, 'HOST:PORT')
        .default(listen),
    })
    .strict()
    .default({ listen })
}

/** The `[chain]` section: the network file and an RPC URL. */
export function chainSection() {
  return z
    .object({
      /** The network file, relative to the config's directory unless absolute. */
      network: z.string().min(1).default('network.json'),
      /** JSON-RPC URL; empty means the network file's. */
      rpc: z.string().default(''),
    })
    .strict()
    .default({ network: 'network.json', rpc: '' })
}

/** The node's configuration: one schema, defaults in it, validated at start, then frozen. */
export const nodeConfigSchema = z
  .object({
    node: z
      .object({
        /** Where the node is, as an H3 cell (resolution 7 or coarser is plenty; no exact address). */
        h3Cell: z.string().refine(isValidCell, 'not a valid H3 cell index'),
        tier: z.enum(['edge', 'cloud']).default('edge'),
        /** Where rewards go; empty means the operator key's address. */
        payoutAddress: z
          .string()
          .refine((v) => v === '' || isAddress(v, { strict: false }), 'not a 0x address')
          .default(''),
      })
      .strict(),
    mesh: meshSection(['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws']),
    ads: z
      .object({
        refreshSeconds: z.number().int().min(5).max(3_600).default(60),
        ttlSeconds: z.number().int().min(10).max(3_600).default(300),
      })
      .strict()
      .default({ refreshSeconds: 60, ttlSeconds: 300 }),
    compute: z
      .object({
        /** Run builders' WASM and JS jobs in sandboxes. */
        enabled: z.boolean().default(true),
        /** Price per job, MESH base units. */
        price: z
          .preprocess(
            // A small price may come as a number (an environment override such as PRICE=0).
            (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : v),
            z.string().regex(/^\d{1,30}$/, 'a whole number of MESH base units (as a string)'),
          )
          .default('1000000000000000'),
        /** Jobs at once (0: one per core). */
        slots: z.number().int().min(0).max(256).default(0),
        /** Unpaid jobs a builder's channel may have outstanding. */
        creditJobs: z.number().int().min(1).max(1_000).default(8),
        /** How often vouchers are redeemed on-chain (one transaction per channel with news). */
        redeemSeconds: z.number().int().min(1).max(86_400).default(60),
      })
      .strict()
      .default({ enabled: true, price: '1000000000000000', slots: 0, creditJobs: 8, redeemSeconds: 60 }),
    storage: z
      .object({
        /** Hold shards of builders' files (ciphertext only) under DIR/storage. */
        enabled: z.boolean().default(true),
        /** Price per GiB-epoch, MESH base units. */
        price: z
          .preprocess(
            (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : v),
            z.string().regex(/^\d{1,30}$/, 'a whole number of MESH base units (as a string)'),
          )
          .default('0'),
        /** Most space given to shards, in MiB. */
        quotaMb: z
          .number()
          .int()
          .min(1)
          .max(1 << 30)
          .default(1_024),
      })
      .strict()
      .default({ enabled: true, price: '0', quotaMb: 1_024 }),
    api: apiSection('127.0.0.1:9464'),
    chain: chainSection(),
  })
  .strict()

export type NodeConfig = z.infer<typeof nodeConfigSchema>

/** Reads, validates and freezes a node's config.toml (environment overrides as in {@link loadTomlConfig}). */
export function loadNodeConfig(path: string, env: NodeJS.ProcessEnv = process.env): Readonly<NodeConfig> {
  return loadTomlConfig(path, nodeConfigSchema, {
    env,
    missingHint: 'Run `meshwork node init` first, or pass --dir DIR',
  })
}

/** The commented config file `meshwork node init` writes. */
export function renderNodeConfig(init: {
  h3Cell: string
  tier: 'edge' | 'cloud'
  payoutAddress: string
  mdns: boolean
  apiListen: string
  listen: string[]
}): string {
  const list = (xs: readonly string[]) => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`
  return `# Meshwork node configuration (TOML).
# Every key can be overridden from the environment: MESHWORK_<SECTION>__<KEY_IN_UPPER_SNAKE>,
# e.g. MESHWORK_ADS__REFRESH_SECONDS=30 or MESHWORK_MESH__MDNS=true.

[node]
# Where this node is, as an H3 cell (https://h3geo.org). Resolution 7 (about 5 km²) is plenty:
# placement needs the neighbourhood, never the address.
h3Cell = ${JSON.stringify(init.h3Cell)}
# "edge" for a machine near its users (home, office, shop); "cloud" for a data-centre server.
tier = ${JSON.stringify(init.tier)}
# Where rewards are paid. Empty: the address of operator.key in this directory.
payoutAddress = ${JSON.stringify(init.payoutAddress)}

[mesh]
# Addresses to listen on (TCP and WebSockets).
listen = ${list(init.listen)}
# Extra bootstrap peers (/ip4/…/tcp/…/p2p/12D3KooW…), added to those of the network file.
bootstrap = []
# Find peers on the local network with mDNS.
mdns = ${init.mdns}

[ads]
# How often the node re-publishes its signed advertisement, and how long each one is valid.
refreshSeconds = 60
ttlSeconds = 300

[compute]
# Run builders' WASM and JS jobs in sandboxes (worker threads; each job within its time and memory
# limits), at this price per job in MESH base units, this many at once (0: one per core).
enabled = true
price = "1000000000000000"
slots = 0
# Builders pay each job with a voucher on their Payments channel after its result: at most this many
# jobs may be unpaid at once per channel. Vouchers are redeemed on-chain this often.
creditJobs = 8
redeemSeconds = 60

[storage]
# Hold shards of builders' files (encrypted on their side: this node only ever sees ciphertext)
# under DIR/storage, up to quotaMb MiB, at this price per GiB-epoch in MESH base units.
enabled = true
price = "0"
quotaMb = 1024

[api]
# Prometheus /metrics, /healthz and /status. Keep it on loopback.
listen = ${JSON.stringify(init.apiListen)}

[chain]
# The network file (relative to this directory unless absolute), and an RPC URL if not the file's.
network = "network.json"
rpc = ""
`
}
