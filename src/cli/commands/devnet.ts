import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Command } from 'commander'
import { formatUnits } from 'viem'
import {
  createApiServer,
  createNetworkDataSource,
  HealthProber,
  JobLog,
  LOOPBACK_HOSTNAMES,
  loadStaticFiles,
  SensorFeed,
  type StaticFile,
  StorageFeed,
} from '../../api/index.js'
import {
  connectChain,
  createChainClient,
  deployNetwork,
  devAccounts,
  type NetworkFile,
  readNetworkFile,
  startDevChain,
  writeNetworkFile,
} from '../../chain/index.js'
import { systemClock } from '../../core/clock.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { createMeshLibp2p } from '../../mesh/create-libp2p.js'
import { createLibp2pPort } from '../../mesh/libp2p-port.js'
import { createPeerSigner, createPeerVerifier } from '../../mesh/peer-key.js'
import { createWireCodec, networkIdOf } from '../../mesh/wire-codec.js'
import { SENSOR_READING } from '../../sensors/reading.js'
import { STORAGE_MESSAGES } from '../../storage/protocol.js'
import { httpBundleSource } from '../../verifier/audit.js'
import { createEvmVerifierChain } from '../../verifier/chain-port.js'
import { globalOptions } from '../context.js'
import { claimForAll, type DemoBuilder, demoStorageFor, startDemoBuilder } from '../devnet-activity.js'
import {
  BUILDER_KEY_FILE,
  DEMO_BUILDER_ACCOUNT,
  devnetMaker,
  fundBuilder,
  fundDemoBuilder,
  MAKER_KEY_FILE,
  type MemberProcess,
  memberDirs,
  memberIdentity,
  registerMembers,
  startMember,
} from '../devnet-members.js'
import { createOutput } from '../output.js'
import { parsePort, parsePositiveInt } from '../parse.js'
import { waitForShutdown } from '../signals.js'

interface Options {
  port: string
  chainPort: string
  demo: boolean
  dir: string
  epochSeconds: string
  nodes: string
  verifiers: string
  resume?: boolean
}

/** A block a second, as a live chain has: epochs need blocks to start and end on. */
const BLOCK_INTERVAL_MS = 1_000

/** The file that marks a directory as a devnet's (so that --dir never empties someone else's). */
export const DEVNET_MARKER = '.meshwork-devnet'

/** The built dashboard (`npm run build` puts it in dist/web). */
const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url))

/**
 * Refuses a --dir that holds something other than a devnet: a non-empty directory with neither the
 * marker nor a network file (an earlier devnet's, from before the marker).
 */
function checkDevnetDir(dir: string): void {
  if (!existsSync(dir)) return
  const entries = readdirSync(dir)
  if (entries.length === 0 || entries.includes(DEVNET_MARKER) || entries.includes('network.json')) return
  throw new InvalidArgumentError(`--dir ${dir} is not empty and is not a devnet's directory`, {
    hint: 'Pass an empty or new --dir, or the directory of an earlier devnet',
    details: { dir },
  })
}

/** Refuses a port something else listens on, before anything starts. 0 (any free port) always passes. */
async function checkPortFree(port: number, flag: string): Promise<void> {
  if (port === 0) return
  await new Promise<void>((resolve, reject) => {
    const probe = createServer()
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE' || err.code === 'EACCES'
          ? new InvalidArgumentError(`port ${port} (${flag}) is already in use`, {
              hint: `Stop what uses it, or pass another ${flag}`,
              details: { port },
            })
          : err,
      ),
    )
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()))
  })
}

/** The built dashboard's files, or undefined (with the reason) when it was not built. */
function dashboardFiles(): { files?: ReadonlyMap<string, StaticFile>; missing?: string } {
  try {
    return { files: loadStaticFiles(WEB_DIR) }
  } catch (err) {
    return { missing: (err as Error).message }
  }
}

function parseCount(value: string, flag: string, max: number): number {
  if (!/^\d{1,3}$/.test(value) || Number(value) > max)
    throw new InvalidArgumentError(`${flag} must be a whole number from 0 to ${max}, got "${value}"`)
  return Number(value)
}

/**
 * `meshwork devnet`: the whole local network in one command: the embedded chain (a block a second),
 * the contracts, and `--nodes` nodes and `--verifiers` verifiers, each registered with stake and run
 * as its own process, so that epochs close and roots are posted; a demo builder that keeps running
 * jobs and claims for every operator once an epoch; and the dashboard and HTTP API on `--port`.
 * Ctrl-C stops everything.
 */
export function devnetCommand(program: Command): void {
  program
    .command('devnet')
    .description(
      'start a local Meshwork network: chain, contracts, nodes, verifiers, a demo builder, and the dashboard (Ctrl-C stops it)',
    )
    .option('--port <port>', 'port of the dashboard and HTTP API on 127.0.0.1 (0 picks a free one)', '7070')
    .option('--chain-port <port>', 'JSON-RPC port of the chain (0 picks a free one)', '8545')
    .option(
      '--dir <dir>',
      'directory for the chain state, network.json, nodes and verifiers',
      '.meshwork/devnet',
    )
    .option('--epoch-seconds <n>', 'epoch length in seconds', '15')
    .option('--nodes <n>', 'nodes to run', '6')
    .option('--verifiers <n>', 'verifiers to run (quorum 2, or 1 with a single verifier)', '3')
    .option('--resume', 'continue from the state in --dir instead of starting fresh')
    .option('--no-demo', 'run no demo builder and no claims')
    .action(async (opts: Options, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const port = parsePort(opts.port)
      const chainPort = parsePort(opts.chainPort, '--chain-port')
      const epochDuration = parsePositiveInt(opts.epochSeconds, '--epoch-seconds', 86_400)
      const counts = {
        nodes: parseCount(opts.nodes, '--nodes', 50),
        verifiers: parseCount(opts.verifiers, '--verifiers', 21),
      }
      if (port !== 0 && port === chainPort)
        throw new InvalidArgumentError(`--port and --chain-port are both ${port}`, {
          hint: 'Pass two different ports',
        })
      checkDevnetDir(opts.dir)
      await checkPortFree(port, '--port')
      await checkPortFree(chainPort, '--chain-port')
      const chainDir = join(opts.dir, 'chain')
      const networkPath = join(opts.dir, 'network.json')
      if (!opts.resume && (existsSync(chainDir) || existsSync(networkPath))) {
        out.step(`starting fresh: removing the previous devnet in ${opts.dir} (--resume continues it)`)
        for (const part of [chainDir, networkPath, join(opts.dir, 'nodes'), join(opts.dir, 'verifiers')])
          rmSync(part, { recursive: true, force: true })
      }
      mkdirSync(opts.dir, { recursive: true })
      writeFileSync(
        join(opts.dir, DEVNET_MARKER),
        'a meshwork devnet: `meshwork devnet --dir` may empty it\n',
      )
      const logger = createLogger({ level: g.verbose ? 'debug' : 'warn' })
      // The devnet's hardware maker (maker.key, kept): approved at deploy, it certifies every
      // node's station, so that the stations are paid as certified hardware.
      const maker = await devnetMaker(opts.dir)
      const steps = 6
      // Listening from the start: a Ctrl-C while starting up stops everything once started.
      const shutdown = waitForShutdown()
      let stopping = false

      out.step(opts.resume ? `resuming the chain from ${chainDir}` : 'starting the embedded chain', 1, steps)
      const chain = await startDevChain({ port: chainPort, stateDir: chainDir, logger })
      const members: MemberProcess[] = []
      let miner: ReturnType<typeof setInterval> | undefined
      let watcher: ReturnType<typeof setInterval> | undefined
      // Stopped in reverse, before the members and the chain.
      const parts: { name: string; stop: () => Promise<unknown> | unknown }[] = []
      try {
        const url = chain.url as string
        let network: NetworkFile | undefined
        if (opts.resume && existsSync(networkPath)) {
          network = readNetworkFile(networkPath)
          await connectChain({ chainId: network.chainId, contracts: network.contracts, rpc: chain.provider })
          // The RPC port and the members' mesh addresses change with each start.
          network = { ...network, rpcUrl: url, bootstrap: [] }
          writeNetworkFile(networkPath, network, { force: true })
          out.step(`reusing the contracts in ${networkPath}`, 2, steps)
        } else {
          out.step('deploying the contracts', 2, steps)
          network = await deployNetwork({
            rpcUrl: url,
            provider: chain.provider,
            privateKey: (devAccounts(1)[0] as { privateKey: `0x${string}` }).privateKey,
            preset: 'devnet',
            overrides: { epochDuration, quorum: counts.verifiers === 1 ? 1 : 2 },
            makers: [maker.peerId],
            onStep: (step) => logger.debug({ step }, 'deploy step'),
          })
          writeNetworkFile(networkPath, network, { force: true })
          await fundBuilder(join(opts.dir, BUILDER_KEY_FILE), chain.provider, network)
          await fundDemoBuilder(chain.provider, network)
        }
        const net = network
        miner = setInterval(
          () => void chain.provider.request({ method: 'evm_mine', params: [] }).catch(() => undefined),
          BLOCK_INTERVAL_MS,
        )

        out.step(`preparing ${counts.nodes} nodes and ${counts.verifiers} verifiers`, 3, steps)
        const { members: dirs, created } = await memberDirs(opts.dir, counts, networkPath, { maker })
        await registerMembers(created, { provider: chain.provider, network: net }, (text) =>
          logger.debug({ text }, 'register'),
        )

        out.step('starting them, each in its own process', 4, steps)
        // Verifiers' timing follows the epoch: a leader that is down is replaced within half an epoch.
        const verifierEnv = {
          MESHWORK_VERIFIER__GRACE_SECONDS: '1',
          MESHWORK_VERIFIER__LEADER_TIMEOUT_SECONDS: String(Math.max(2, Math.floor(epochDuration / 2))),
          MESHWORK_VERIFIER__POLL_MS: '500',
          MESHWORK_VERIFIER__CHALLENGE_TIMEOUT_MS: '1500',
        }
        // Nodes redeem builders' vouchers once an epoch.
        const nodeEnv = { MESHWORK_COMPUTE__REDEEM_SECONDS: String(epochDuration) }
        // The first member is everyone's bootstrap peer.
        const [first, ...rest] = dirs
        let bootstrap: string[] = []
        if (first !== undefined) {
          const started = startMember(first, first.kind === 'verifier' ? verifierEnv : nodeEnv)
          members.push(started)
          const { addresses } = await started.ready
          bootstrap = addresses.filter((a) => a.includes('/tcp/') && !a.includes('/ws'))
        }
        // Tools (`meshwork rewards …`) join the mesh through the network file's bootstrap peers.
        writeNetworkFile(networkPath, { ...net, bootstrap }, { force: true })
        const env = { MESHWORK_MESH__BOOTSTRAP: JSON.stringify(bootstrap) }
        for (const m of rest)
          members.push(
            startMember(m, m.kind === 'verifier' ? { ...env, ...verifierEnv } : { ...env, ...nodeEnv }),
          )
        let up = 0
        await Promise.all(
          members.map(async (m) => {
            await m.ready
            up++
            out.step(`${m.name} running (${up}/${members.length})`, 4, steps)
          }),
        )
        out.step(`wrote ${networkPath}`, 5, steps)

        const ready = await Promise.all(members.map(async (m) => ({ name: m.name, ...(await m.ready) })))
        // Who is who: peer ids to names, and to the ops ports their health is checked on.
        const ids = new Map(dirs.map((m) => [m.name, memberIdentity(m)]))
        const labels = new Map<string, string>()
        const opsOf = new Map<string, string>()
        for (const m of ready) {
          const id = ids.get(m.name) as { peerId: string; label: string }
          labels.set(id.peerId, id.label)
          opsOf.set(id.peerId, m.ops)
        }
        const verifierOps = ready.filter((m) => m.name.startsWith('verifier')).map((m) => m.ops)

        out.step('starting the dashboard and API', 6, steps)
        const reader = await connectChain({
          chainId: net.chainId,
          contracts: net.contracts,
          rpc: chain.provider,
        })
        const verifierChain = createEvmVerifierChain(reader, { deployBlock: BigInt(net.deployBlock) })
        const health = new HealthProber(
          { intervalMs: 1_000 },
          { targets: () => opsOf, clock: systemClock, logger },
        )
        health.start()
        parts.push({ name: 'health', stop: () => health.stop() })
        const jobs = new JobLog()
        // The sensor readings the dashboard shows: heard on the mesh like any builder hears them.
        const feedKey = await generateKeyPair('Ed25519')
        const feedMesh = await createMeshLibp2p({ privateKey: feedKey, listen: [], bootstrap })
        const feedPort = createLibp2pPort(feedMesh, { logger })
        parts.push({ name: 'sensor feed mesh', stop: () => feedPort.close() })
        let feedSeq = 0
        const sensors = new SensorFeed({
          port: feedPort,
          codec: createWireCodec({
            network: networkIdOf(net),
            signer: createPeerSigner(feedKey),
            clock: systemClock,
            types: [SENSOR_READING],
            nextSeq: () => ++feedSeq,
          }),
          verifier: createPeerVerifier(),
          network: networkIdOf(net),
          now: () => Date.now(),
        })
        parts.push({ name: 'sensor feed', stop: () => sensors.close() })
        // The shards each node holds: the receipts holders gossip for the verifiers, heard the same way.
        let storageSeq = 0
        const storage = new StorageFeed({
          port: feedPort,
          codec: createWireCodec({
            network: networkIdOf(net),
            signer: createPeerSigner(feedKey),
            clock: systemClock,
            types: STORAGE_MESSAGES,
            nextSeq: () => ++storageSeq,
          }),
          network: networkIdOf(net),
          epochAt: (ms) =>
            Math.floor((ms / 1_000 - net.parameters.genesisTime) / net.parameters.epochDuration),
        })
        storage.start()
        parts.push({ name: 'storage feed', stop: () => storage.close() })
        const source = createNetworkDataSource(
          // Governance looked at every 2 s: a vote shows on the dashboard about when it is mined.
          { network: net, label: (id) => labels.get(id), governancePollMs: 2_000 },
          {
            reader,
            chain: verifierChain,
            bundles: () => verifierOps.map((u) => httpBundleSource(u, { timeoutMs: 10_000 })),
            health,
            jobs,
            verifier: createPeerVerifier(),
            clock: systemClock,
            logger,
            sensors,
            storage,
          },
        )
        parts.push({ name: 'data source', stop: () => source.close() })
        const web = dashboardFiles()
        const api = createApiServer(
          {
            ...(web.files === undefined ? {} : { staticFiles: web.files }),
            // Loopback names only: a web page elsewhere cannot read the devnet through DNS rebinding.
            allowedHostnames: LOOPBACK_HOSTNAMES,
          },
          {
            source,
            clock: systemClock,
            logger,
          },
        )
        parts.push({ name: 'api', stop: () => api.close() })
        await api.listen({ host: '127.0.0.1', port }).catch((err: NodeJS.ErrnoException) => {
          throw err.code === 'EADDRINUSE'
            ? new InvalidArgumentError(`port ${port} (--port) is already in use`, {
                hint: 'Stop what uses it, or pass another --port',
              })
            : err
        })
        const webUrl = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`

        let builder: DemoBuilder | undefined
        const storageDemo = demoStorageFor(counts.nodes)
        if (opts.demo) {
          try {
            builder = await startDemoBuilder(
              {
                network: { ...net, bootstrap },
                privateKey: DEMO_BUILDER_ACCOUNT.privateKey,
                rpc: url,
                intervalMs: Math.max(2_000, Math.min(5_000, (epochDuration * 1_000) / 3)),
                ...(storageDemo === undefined ? {} : { storage: storageDemo }),
              },
              { jobs, clock: systemClock, logger },
            )
            const b = builder
            parts.push({ name: 'demo builder', stop: () => b.stop() })
          } catch (err) {
            out.info(`the demo builder did not start: ${(err as Error).message}`)
          }
        }

        out.json({
          ready: true,
          url: webUrl,
          rpcUrl: url,
          chainId: net.chainId,
          networkFile: networkPath,
          contracts: net.contracts,
          maker: maker.peerId,
          members: ready,
        })
        out.info(`Meshwork devnet ready: ${webUrl}`)
        out.info(
          web.files === undefined
            ? `  dashboard  not built (${web.missing}); the API is at ${webUrl}/api/network`
            : `  dashboard  ${webUrl}   API ${webUrl}/api/network   OpenAPI ${webUrl}/api/openapi.json`,
        )
        out.info(`  chain      ${url} (chain ${net.chainId}, epochs of ${net.parameters.epochDuration} s)`)
        out.info(
          `  members    ${counts.nodes} nodes, ${counts.verifiers} verifiers, each its own process${opts.demo ? '; a demo builder runs a job every few seconds and keeps a small file stored' : ''}`,
        )
        out.info(`  network    ${networkPath}`)
        out.info(
          `  maker      ${maker.peerId} (${join(opts.dir, MAKER_KEY_FILE)}): approved, certifies every node's station`,
        )
        out.info(
          `  try: npx meshwork job run FILE.js --input JSON --network ${networkPath} --key ${join(opts.dir, BUILDER_KEY_FILE)}`,
        )
        out.info(
          `  try: npx meshwork rewards show --network ${networkPath} --bundle-url ${verifierOps[0] ?? 'URL'}`,
        )

        // The live summary: a line per posted root (with the jobs since), members that stop, nodes
        // that go offline or come back.
        for (const m of members)
          m.child.once('exit', (code, signal) => {
            if (!stopping) out.info(`${m.name} stopped (${signal ?? code})`)
          })
        const offHealth = health.onChange((id, h) => {
          if (stopping) return
          const name = labels.get(id) ?? id
          // The first answer of each member is not news.
          if (h.online && h.lastSeen !== null && !wentOffline.has(id)) return
          if (h.online) wentOffline.delete(id)
          else wentOffline.add(id)
          out.info(`${name} is ${h.online ? 'back online' : 'offline'}`)
        })
        const wentOffline = new Set<string>()
        parts.push({ name: 'health summary', stop: offHealth })
        const claimer = createChainClient({
          chainId: net.chainId,
          contracts: net.contracts,
          rpc: chain.provider,
          privateKey: (devAccounts(1)[0] as { privateKey: `0x${string}` }).privateKey,
          pollingInterval: 10,
        })
        const operators = dirs.filter((m) => m.kind === 'node').map((m) => memberIdentity(m).operator)
        const seen = new Set<number>()
        let jobsSeen = 0
        let claiming = false
        let claimDue = false
        watcher = setInterval(() => {
          void verifierChain
            .postedRoots()
            .then((roots) => {
              for (const [epoch, r] of [...roots].sort((a, b) => a[0] - b[0])) {
                if (seen.has(epoch)) continue
                seen.add(epoch)
                claimDue = true
                const recent = jobs.list(500)
                const fresh = recent.slice(0, Math.max(0, recent.length - jobsSeen))
                jobsSeen = recent.length
                const ok = fresh.filter((j) => j.ok && j.latencyMs !== null)
                const p50 = ok.map((j) => j.latencyMs as number).sort((a, b) => a - b)[
                  Math.floor(ok.length / 2)
                ]
                out.info(
                  `epoch ${epoch} closed: root ${r.root.slice(0, 10)}… posted, ${formatUnits(r.totalCumulative, 18)} MESH earned in total` +
                    (opts.demo
                      ? `; ${ok.length} jobs since${p50 === undefined ? '' : `, p50 ${p50.toFixed(1)} ms`}`
                      : ''),
                )
              }
              // Once an epoch, everyone's rewards are claimed (against the newest settled root).
              if (opts.demo && claimDue && !claiming && verifierOps[0] !== undefined) {
                claiming = true
                claimDue = false
                void claimForAll(claimer, operators, verifierOps[0])
                  .catch((err: unknown) => logger.debug({ err }, 'devnet claims failed'))
                  .finally(() => {
                    claiming = false
                  })
              }
            })
            .catch(() => undefined)
        }, 1_000)
        const signal = await shutdown
        out.step(`stopping (${signal})`)
      } finally {
        stopping = true
        clearInterval(watcher)
        for (const part of parts.splice(0).reverse())
          await Promise.resolve()
            .then(part.stop)
            .catch((err: unknown) => logger.warn({ err, part: part.name }, 'failed to stop'))
        clearInterval(miner)
        await Promise.all(members.map((m) => m.stop()))
        await chain.stop()
      }
    })
}
