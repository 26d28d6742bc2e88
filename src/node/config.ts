import { existsSync, readFileSync } from 'node:fs'
import { isValidCell } from 'h3-js'
import { parse as parseToml } from 'smol-toml'
import { isAddress } from 'viem'
import { z } from 'zod'
import { InvalidArgumentError } from '../core/errors.js'

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
    mesh: z
      .object({
        listen: z
          .array(z.string().min(1).max(256))
          .min(1)
          .max(16)
          .default(['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws']),
        /** Extra bootstrap peers (multiaddrs with /p2p/ID), on top of the network file's. */
        bootstrap: z.array(z.string().min(1).max(512)).max(64).default([]),
        /** Find peers on the local network (on in devnet). */
        mdns: z.boolean().default(false),
      })
      .strict()
      .default({ listen: ['/ip4/0.0.0.0/tcp/4001', '/ip4/0.0.0.0/tcp/4002/ws'], bootstrap: [], mdns: false }),
    ads: z
      .object({
        refreshSeconds: z.number().int().min(5).max(3_600).default(60),
        ttlSeconds: z.number().int().min(10).max(3_600).default(300),
      })
      .strict()
      .default({ refreshSeconds: 60, ttlSeconds: 300 }),
    api: z
      .object({
        /** Metrics, health and status; keep it on loopback. */
        listen: z
          .string()
          .regex(/^[\w.:[\]-]+:\d{1,5}$/, 'HOST:PORT')
          .default('127.0.0.1:9464'),
      })
      .strict()
      .default({ listen: '127.0.0.1:9464' }),
    chain: z
      .object({
        /** The network file, relative to the node directory unless absolute. */
        network: z.string().min(1).default('network.json'),
        /** JSON-RPC URL; empty means the network file's. */
        rpc: z.string().default(''),
      })
      .strict()
      .default({ network: 'network.json', rpc: '' }),
  })
  .strict()

export type NodeConfig = z.infer<typeof nodeConfigSchema>

/** Largest config file accepted. */
const MAX_CONFIG_BYTES = 64 * 1024

/**
 * Reads the TOML config file, applies `MESHWORK_SECTION__KEY` environment overrides (the key in
 * UPPER_SNAKE, e.g. `MESHWORK_ADS__REFRESH_SECONDS=30`; values parse as TOML values, else as
 * strings), validates, and freezes it. Errors name the file, the key and the fix.
 */
export function loadNodeConfig(path: string, env: NodeJS.ProcessEnv = process.env): Readonly<NodeConfig> {
  if (!existsSync(path)) {
    throw new InvalidArgumentError(`config file ${path} does not exist`, {
      hint: 'Run `meshwork node init` first, or pass --dir DIR',
    })
  }
  const text = readFileSync(path, 'utf8')
  if (text.length > MAX_CONFIG_BYTES) throw new InvalidArgumentError(`config file ${path} is too large`)
  let raw: Record<string, unknown>
  try {
    raw = parseToml(text) as Record<string, unknown>
  } catch (err) {
    throw new InvalidArgumentError(
      `config file ${path} is not valid TOML: ${(err as Error).message.split('\n')[0]}`,
      {
        cause: err,
      },
    )
  }
  for (const [name, value] of Object.entries(env)) {
    const m = /^MESHWORK_([A-Z0-9]+)__([A-Z0-9_]+)$/.exec(name)
    if (!m || value === undefined) continue
    const section = (m[1] as string).toLowerCase()
    const key = (m[2] as string).toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
    const table = (raw[section] ?? {}) as Record<string, unknown>
    table[key] = parseEnvValue(value)
    raw[section] = table
  }
  const parsed = nodeConfigSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidArgumentError(
      `config ${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
      { hint: 'Fix the value in the config file or the MESHWORK_… environment variable' },
    )
  }
  return deepFreeze(parsed.data)
}

function parseEnvValue(value: string): unknown {
  try {
    return (parseToml(`v = ${value}`) as { v: unknown }).v
  } catch {
    return value
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
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

[api]
# Prometheus /metrics, /healthz and /status. Keep it on loopback.
listen = ${JSON.stringify(init.apiListen)}

[chain]
# The network file (relative to this directory unless absolute), and an RPC URL if not the file's.
network = "network.json"
rpc = ""
`
}
