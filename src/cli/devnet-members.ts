import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync, copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { latLngToCell } from 'h3-js'
import { parseEther } from 'viem'
import {
  type ChainClient,
  createChainClient,
  devAccounts,
  type Eip1193Provider,
  MESH,
  type NetworkFile,
  registerNode,
  registerVerifier,
  servicesMask,
  transferTokens,
} from '../chain/index.js'
import { writeSecretFile } from '../core/secret-file.js'
import { createPeerSigner, type PeerSigner, peerIdBytes } from '../mesh/peer-key.js'
import { loadNodeConfig } from '../node/config.js'
import { initNodeDir, NODE_FILES } from '../node/identity.js'
import { loadNodeDir } from '../node/node-dir.js'
import { loadDeviceKey } from '../sensors/device.js'
import { signMakerCertificate } from '../sensors/maker.js'
import { createMakerKey, readMakerKey, writeMakerCertificate } from '../sensors/maker-files.js'
import { initVerifierDir, loadVerifierDir } from '../verifier/verifier-dir.js'
import { NODE_CELL_RESOLUTION } from './commands/node-init.js'

/**
 * The members of a devnet: node and verifier directories under the devnet's directory, funded and
 * registered from dev account 0, each run as its own `meshwork node start` / `meshwork verifier
 * start` process (so that stopping one is real).
 */

/** The `meshwork` command this module ships with. */
const BIN = fileURLToPath(new URL('../../bin/meshwork.js', import.meta.url))

/** Where devnet nodes are: cities on every continent, so the map has something to show. */
const PLACES: readonly [string, number, number][] = [
  ['Berlin', 52.52, 13.405],
  ['Lagos', 6.524, 3.379],
  ['São Paulo', -23.55, -46.633],
  ['Tokyo', 35.68, 139.69],
  ['Nairobi', -1.286, 36.817],
  ['Toronto', 43.653, -79.383],
  ['Mumbai', 19.076, 72.878],
  ['Sydney', -33.869, 151.209],
  ['Mexico City', 19.433, -99.133],
  ['Cairo', 30.044, 31.236],
]

/** Stakes the devnet registers with (the devnet preset's minimums). */
export const DEVNET_NODE_STAKE = 1_000n * MESH
export const DEVNET_VERIFIER_STAKE = 100_000n * MESH
/** The demo builder's account file in the devnet directory, and what it is given to pay for jobs. */
export const BUILDER_KEY_FILE = 'builder.key'
export const DEVNET_BUILDER_FUNDS = 10_000n * MESH

/**
 * Writes the devnet's builder key (dev account 1, which has gas) to `path` and gives it MESH from
 * the treasury, so `meshwork job run --key PATH` can pay for jobs.
 */
export async function fundBuilder(
  path: string,
  provider: Eip1193Provider,
  network: NetworkFile,
): Promise<void> {
  const [treasury, builder] = devAccounts(2) as [
    { privateKey: `0x${string}` },
    { privateKey: `0x${string}`; address: `0x${string}` },
  ]
  const client = createChainClient({
    chainId: network.chainId,
    contracts: network.contracts,
    rpc: provider,
    privateKey: treasury.privateKey,
    pollingInterval: 10,
  })
  await transferTokens(client, builder.address, DEVNET_BUILDER_FUNDS)
  if (!existsSync(path)) writeSecretFile(path, `${builder.privateKey}\n`)
}

/**
 * The demo builder's account: dev account 2 (builder.key, account 1, is left to people, so that
 * their vouchers and the demo's never share a payment channel).
 */
export const DEMO_BUILDER_ACCOUNT = devAccounts(3)[2] as { privateKey: `0x${string}`; address: `0x${string}` }

/** Gives the demo builder MESH from the treasury to pay for its jobs. */
export async function fundDemoBuilder(provider: Eip1193Provider, network: NetworkFile): Promise<void> {
  const treasury = devAccounts(1)[0] as { privateKey: `0x${string}` }
  const client = createChainClient({
    chainId: network.chainId,
    contracts: network.contracts,
    rpc: provider,
    privateKey: treasury.privateKey,
    pollingInterval: 10,
  })
  await transferTokens(client, DEMO_BUILDER_ACCOUNT.address, DEVNET_BUILDER_FUNDS)
}

/** The devnet's hardware maker key in its directory, approved at deploy (kept across restarts). */
export const MAKER_KEY_FILE = 'maker.key'

/** The devnet's maker: the key in `dir`/maker.key, made on first use. */
export async function devnetMaker(dir: string): Promise<PeerSigner> {
  const path = join(dir, MAKER_KEY_FILE)
  return createPeerSigner(existsSync(path) ? readMakerKey(path) : await createMakerKey(path))
}

/** The model the devnet's maker certifies its simulated stations as. */
export const DEVNET_STATION_MODEL = 'meshwork devnet station'

/**
 * Certifies a devnet node's station with `maker`, unless its config already names a certificate:
 * makes the station's device key (as the node would on its first start), writes the certificate
 * to `station.cert.json` and names it in `[sensors.certificates]`.
 */
async function certifyStation(dir: string, maker: PeerSigner): Promise<void> {
  const configPath = join(dir, NODE_FILES.config)
  const sensors = loadNodeConfig(configPath, {}).sensors
  if (!sensors.simulated.includes('station') || sensors.certificates.station !== undefined) return
  const device = createPeerSigner(await loadDeviceKey(join(dir, 'sensors'), 'station')).peerId
  writeMakerCertificate(
    join(dir, 'station.cert.json'),
    signMakerCertificate(maker, device, DEVNET_STATION_MODEL),
  )
  appendFileSync(
    configPath,
    '\n# The devnet maker certified this station (meshwork maker certify).\n[sensors.certificates]\nstation = "station.cert.json"\n',
  )
}

/** One member directory. */
export interface Member {
  kind: 'node' | 'verifier'
  name: string
  dir: string
}

/**
 * The member directories (absolute) of a devnet in `dir`, created if missing: a resumed devnet keeps
 * its own. With `maker`, each node's simulated station is certified by it (a resumed node's too, if
 * it was made before stations were).
 */
export async function memberDirs(
  dir: string,
  counts: { nodes: number; verifiers: number },
  networkPath: string,
  options: { maker?: PeerSigner } = {},
): Promise<{ members: Member[]; created: Member[] }> {
  const root = resolve(dir)
  const members: Member[] = []
  const created: Member[] = []
  for (let i = 0; i < counts.nodes; i++) {
    const m: Member = { kind: 'node', name: `node-${i}`, dir: join(root, 'nodes', `node-${i}`) }
    members.push(m)
    if (existsSync(join(m.dir, 'peer.key'))) {
      // Resumed: the network file may name another RPC port now.
      copyFileSync(networkPath, join(m.dir, 'network.json'))
      if (options.maker !== undefined) await certifyStation(m.dir, options.maker)
      continue
    }
    const [, lat, lon] = PLACES[i % PLACES.length] as [string, number, number]
    // Nodes beyond the list of places go a little way off from the place they repeat.
    const offset = Math.floor(i / PLACES.length) * 0.05
    await initNodeDir({
      dir: m.dir,
      h3Cell: latLngToCell(lat + offset, lon + offset, NODE_CELL_RESOLUTION),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      apiListen: '127.0.0.1:0',
    })
    // Each devnet node runs a simulated weather station, measuring every 2 s (a real one: 60 s).
    const configPath = join(m.dir, NODE_FILES.config)
    writeFileSync(
      configPath,
      readFileSync(configPath, 'utf8')
        .replace(/^simulated = \[\]$/m, 'simulated = ["station"]')
        .replace(/^simulatedEverySeconds = 60$/m, 'simulatedEverySeconds = 2'),
    )
    if (options.maker !== undefined) await certifyStation(m.dir, options.maker)
    copyFileSync(networkPath, join(m.dir, 'network.json'))
    created.push(m)
  }
  for (let i = 0; i < counts.verifiers; i++) {
    const m: Member = {
      kind: 'verifier',
      name: `verifier-${i}`,
      dir: join(root, 'verifiers', `verifier-${i}`),
    }
    members.push(m)
    if (existsSync(join(m.dir, 'peer.key'))) {
      copyFileSync(networkPath, join(m.dir, 'network.json'))
      continue
    }
    await initVerifierDir({ dir: m.dir, listen: ['/ip4/127.0.0.1/tcp/0'], apiListen: '127.0.0.1:0' })
    copyFileSync(networkPath, join(m.dir, 'network.json'))
    created.push(m)
  }
  return { members, created }
}

/**
 * A member's peer id, operator address and a name for people: "node-0 (Berlin)", "verifier-1".
 */
export function memberIdentity(m: Member): { peerId: string; operator: `0x${string}`; label: string } {
  if (m.kind === 'node') {
    const { identity } = loadNodeDir(m.dir)
    const i = Number(m.name.slice('node-'.length))
    const place = PLACES[i % PLACES.length]?.[0]
    return {
      peerId: identity.peerId,
      operator: identity.operatorAddress as `0x${string}`,
      label: place === undefined ? m.name : `${m.name} (${place})`,
    }
  }
  const { identity } = loadVerifierDir(m.dir)
  return { peerId: identity.peerId, operator: identity.address, label: m.name }
}

/**
 * Funds and registers newly created members from dev account 0 (the treasury): gas, the stake, and
 * the registration sent from the member's own operator key.
 */
export async function registerMembers(
  members: readonly Member[],
  chain: { provider: Eip1193Provider; network: NetworkFile },
  onStep: (text: string) => void,
): Promise<void> {
  const client = (privateKey: `0x${string}`): ChainClient =>
    createChainClient({
      chainId: chain.network.chainId,
      contracts: chain.network.contracts,
      rpc: chain.provider,
      privateKey,
      pollingInterval: 10,
    })
  const treasury = client((devAccounts(1)[0] as { privateKey: `0x${string}` }).privateKey)
  const fund = async (to: `0x${string}`, stake: bigint) => {
    const hash = await treasury.wallet.sendTransaction({
      to,
      value: parseEther('10'),
      chain: treasury.wallet.chain,
      account: treasury.wallet.account,
    })
    await treasury.public.waitForTransactionReceipt({ hash })
    await transferTokens(treasury, to, stake)
  }
  for (const m of members) {
    onStep(`registering ${m.name}`)
    if (m.kind === 'node') {
      const { identity, config } = loadNodeDir(m.dir)
      const key = identity.operatorKey as `0x${string}`
      await fund(identity.operatorAddress as `0x${string}`, DEVNET_NODE_STAKE)
      await registerNode(client(key), {
        peerId: peerIdBytes(identity.peerId),
        services: servicesMask(['compute', 'storage', 'sensor']),
        h3Cell: BigInt(`0x${config.node.h3Cell}`),
        stake: DEVNET_NODE_STAKE,
      })
    } else {
      const { identity } = loadVerifierDir(m.dir)
      await fund(identity.address, DEVNET_VERIFIER_STAKE)
      await registerVerifier(client(identity.operatorKey), {
        peerId: peerIdBytes(identity.peerId),
        stake: DEVNET_VERIFIER_STAKE,
      })
    }
  }
}

/** A running member process. */
export interface MemberProcess extends Member {
  child: ChildProcess
  /** Resolves with its ops URL and mesh addresses once it says it is running. */
  ready: Promise<{ ops: string; addresses: string[] }>
  /** Everything it printed (stdout and stderr), for a failure message. */
  output(): string
  /** SIGTERM, then SIGKILL after `deadlineMs`; resolves once it has exited. */
  stop(deadlineMs?: number): Promise<void>
}

/** Starts a member as its own process with `env` on top of this one's. */
export function startMember(m: Member, env: NodeJS.ProcessEnv): MemberProcess {
  const child = spawn(process.execPath, [BIN, m.kind, 'start', '--dir', m.dir], {
    env: { ...process.env, ...env },
    // The IPC channel closes when the devnet dies, however it dies: the member then stops itself.
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  let text = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ready = new Promise<{ ops: string; addresses: string[] }>((resolve, reject) => {
    const look = () => {
      const ops = /metrics\s+(http:\/\/\S+)\/metrics/.exec(text)
      if (ops) {
        const addresses = [...text.matchAll(/listening\s+(\/\S+)/g)].map((match) => match[1] as string)
        resolve({ ops: ops[1] as string, addresses })
      }
    }
    const onData = (d: Buffer) => {
      text += d.toString()
      if (text.length > 1_000_000) text = text.slice(-500_000)
      look()
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code, signal) =>
      reject(new Error(`${m.name} exited (${signal ?? code}) before it was ready: ${lastLine(text)}`)),
    )
  })
  ready.catch(() => undefined)
  return {
    ...m,
    child,
    ready,
    output: () => text,
    async stop(deadlineMs = 6_000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
      await exited
      clearTimeout(timer)
    },
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n')
  return (lines.at(-1) ?? '').slice(0, 300)
}
