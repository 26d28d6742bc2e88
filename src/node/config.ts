import { isValidCell } from 'h3-js'
import { isAddress } from 'viem'
import { z } from 'zod'
import { loadTomlConfig } from '../core/toml-config.js'
import { SENSOR_KIND_NAMES } from '../sensors/reading.js'

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

/** Most sensors one node runs (as many as a verifier judges per node). */
const MAX_NODE_SENSORS = 16
const sensorName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - (at most 64)')

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
    relay: z
      .object({
        /**
         * Run a circuit relay v2 server for peers behind NAT, paid from the relay pool by their
         * downloaders' byte receipts. Off by default: only a node with a public address can relay,
         * and whether it has one is the operator's to say.
         */
        enabled: z.boolean().default(false),
        /** Peers holding a reservation at once. */
        maxReservations: z.number().int().min(1).max(4_096).default(64),
        /** Bytes one relayed connection may carry before the relay resets it, in MiB (a piece is up to 4). */
        connectionMb: z.number().int().min(8).max(65_536).default(64),
        /** Longest one relayed connection may stay open. */
        connectionSeconds: z.number().int().min(60).max(86_400).default(600),
        /**
         * For a node behind NAT: relays to reserve a slot on (multiaddrs ending in /p2p/ID). The
         * node is then dialled at RELAY/p2p-circuit/p2p/SELF, which its advertisement carries.
         */
        via: z
          .array(
            z
              .string()
              .min(1)
              .max(512)
              .refine(
                (a) => /\/p2p\/[^/]+$/.test(a) && !a.includes('/p2p-circuit'),
                'a multiaddr ending in /p2p/ID',
              ),
          )
          .max(4)
          .default([]),
      })
      .strict()
      .default({ enabled: false, maxReservations: 64, connectionMb: 64, connectionSeconds: 600, via: [] }),
    sensors: z
      .object({
        /** Simulated weather stations (temperature, humidity, pressure) by name, at the node's cell. */
        simulated: z.array(sensorName).max(MAX_NODE_SENSORS).default([]),
        /** How often a simulated station measures. */
        simulatedEverySeconds: z.number().min(0.1).max(3_600).default(60),
        /** Sensors fed by `jsonLines` or MQTT: a name (as the measurements give it) and its kinds. */
        devices: z
          .array(
            z
              .object({
                name: sensorName,
                kinds: z
                  .array(z.enum(SENSOR_KIND_NAMES))
                  .min(1)
                  .max(SENSOR_KIND_NAMES.length)
                  .refine((ks) => new Set(ks).size === ks.length, 'kinds listed twice'),
              })
              .strict(),
          )
          .max(MAX_NODE_SENSORS)
          .default([]),
        /** A JSON-lines file of measurements (`-` for standard input; empty: none). */
        jsonLines: z.string().max(4_096).default(''),
        /** An MQTT broker to subscribe to (e.g. mqtt://127.0.0.1:1883; empty: none), and the topic. */
        mqttUrl: z
          .string()
          .max(512)
          .refine((u) => u === '' || /^(mqtts?|wss?|tcp):\/\//.test(u), 'an mqtt:// (or mqtts, ws, wss) URL')
          .default(''),
        mqttTopic: z.string().min(1).max(256).default('meshwork/sensors/+'),
        /**
         * Makers' certificates of the sensors' device keys, by sensor name: a JSON file each (as
         * `meshwork maker certify` writes it), relative to the config's directory unless absolute.
         * Only sensors certified by a maker governance approves are paid.
         */
        certificates: z.record(sensorName, z.string().min(1).max(4_096)).default({}),
      })
      .strict()
      .refine((s) => s.simulated.length + s.devices.length <= MAX_NODE_SENSORS, {
        message: `at most ${MAX_NODE_SENSORS} sensors in all`,
      })
      .refine(
        (s) =>
          new Set([...s.simulated, ...s.devices.map((d) => d.name)]).size ===
          s.simulated.length + s.devices.length,
        {
          message: 'a sensor name is used twice',
        },
      )
      .refine((s) => s.devices.length === 0 || s.jsonLines !== '' || s.mqttUrl !== '', {
        message: 'devices need a source: set jsonLines or mqttUrl',
      })
      .refine(
        (s) => {
          const names = new Set([...s.simulated, ...s.devices.map((d) => d.name)])
          return Object.keys(s.certificates).every((name) => names.has(name))
        },
        { message: 'a certificate names no configured sensor (list it in simulated or devices)' },
      )
      .default({
        simulated: [],
        simulatedEverySeconds: 60,
        devices: [],
        jsonLines: '',
        mqttUrl: '',
        mqttTopic: 'meshwork/sensors/+',
        certificates: {},
      }),
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

[relay]
# Circuit relay v2. A node with a public address may relay for peers behind NAT (it is paid from the
# relay pool for the bytes their downloaders receipt it for): at most maxReservations peers at once,
# each relayed connection reset after connectionMb MiB or connectionSeconds, then dialled again.
enabled = false
maxReservations = 64
connectionMb = 64
connectionSeconds = 600
# A node behind NAT: relays to be reached through (/ip4/…/tcp/…/p2p/12D3KooW…, at most 4). It keeps
# a reservation on each and advertises RELAY/p2p-circuit/p2p/SELF as its address.
via = []

[sensors]
# Sensors on this rig: each gets a device key (DIR/sensors/NAME.key) that this node certifies, and
# its signed readings are gossiped under the node's coarse H3 cell (resolution 5, about 250 km²).
# Simulated weather stations, by name (temperature, humidity and pressure every few seconds):
simulated = []
simulatedEverySeconds = 60
# Real sensors: their measurements come as JSON lines from a file (or "-" for standard input), e.g.
#   {"sensor":"porch","kind":"temperature","value":21.4,"at":1764000000000}
# or from an MQTT broker your devices publish to (a message's sensor is its topic's last level).
jsonLines = ""
mqttUrl = ""
mqttTopic = "meshwork/sensors/+"
# Then name each real sensor and what it measures (temperature, humidity, pressure, pm25):
# [[sensors.devices]]
# name = "porch"
# kinds = ["temperature", "humidity"]
# Only sensors whose device key a maker approved by governance certifies are paid. A sensor's
# certificate (from its maker: \`meshwork node sensors\` shows the device key to certify) goes here,
# relative to this directory unless absolute:
# [sensors.certificates]
# porch = "porch.cert.json"

[api]
# Prometheus /metrics, /healthz and /status. Keep it on loopback.
listen = ${JSON.stringify(init.apiListen)}

[chain]
# The network file (relative to this directory unless absolute), and an RPC URL if not the file's.
network = "network.json"
rpc = ""
`
}
