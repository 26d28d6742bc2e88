import { join } from 'node:path'
import type { Command } from 'commander'
import { createChainClient } from '../../chain/client.js'
import { chainProviderLedger } from '../../compute/chain-ledgers.js'
import { registerComputeMetrics } from '../../compute/compute-metrics.js'
import { ComputeService } from '../../compute/job-protocol.js'
import { PaymentDesk } from '../../compute/payments.js'
import { SandboxPool } from '../../compute/sandbox-pool.js'
import { systemClock } from '../../core/clock.js'
import { InvalidArgumentError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { VERSION } from '../../core/version.js'
import { createMeshLibp2p } from '../../mesh/create-libp2p.js'
import { createLibp2pPort } from '../../mesh/libp2p-port.js'
import { createPeerSigner } from '../../mesh/peer-key.js'
import { createWireCodec, networkIdOf } from '../../mesh/wire-codec.js'
import { adTopic } from '../../node/advertisement.js'
import { openNodeDatabase } from '../../node/database.js'
import { NODE_FILES } from '../../node/identity.js'
import { NodeAgent } from '../../node/node-agent.js'
import { DEFAULT_NODE_DIR, loadNodeDir } from '../../node/node-dir.js'
import { startOpsServer } from '../../node/ops-server.js'
import { probeResources } from '../../node/resources.js'
import type { NodeService } from '../../node/service.js'
import { buildSensorService, registerSensorMetrics } from '../../sensors/node-sensors.js'
import { StorageService } from '../../storage/holder.js'
import { STORAGE_MESSAGES } from '../../storage/protocol.js'
import { registerRelayMetrics } from '../../storage/relay-metrics.js'
import { RelayService } from '../../storage/relay-service.js'
import { registerStorageMetrics } from '../../storage/storage-metrics.js'
import { globalOptions } from '../context.js'
import { createOutput } from '../output.js'
import { stopWithin, waitForShutdown } from '../signals.js'

/**
 * `meshwork node start`: the composition root of an operator's node. Builds the parts in order
 * (database, libp2p, network port, agent, ops server) and stops them in reverse on SIGINT/SIGTERM.
 */
export function nodeStartCommand(node: Command): void {
  node
    .command('start')
    .description('join the mesh and advertise this node (Ctrl-C stops it)')
    .option('--dir <dir>', 'node directory', DEFAULT_NODE_DIR)
    .action(async (opts: { dir: string }, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const { dir, config, identity, network } = loadNodeDir(opts.dir)
      const logger = createLogger({ level: g.verbose ? 'debug' : 'info' }).child({ peerId: identity.peerId })
      logger.info({ config }, 'loaded config')
      const net = networkIdOf(network)
      const db = openNodeDatabase(join(dir, NODE_FILES.database))
      const stack: { name: string; stop: () => Promise<void> | void }[] = [
        { name: 'database', stop: () => db.close() },
      ]
      const stopAll = async () => {
        for (const part of stack.reverse()) {
          await Promise.resolve(part.stop()).catch((err: unknown) =>
            logger.warn({ err, part: part.name }, 'failed to stop'),
          )
        }
      }
      try {
        out.step('probing resources')
        const resources = await probeResources(dir)
        out.step('joining the mesh')
        const libp2p = await createMeshLibp2p({
          privateKey: identity.peerKey,
          listen: [...config.mesh.listen],
          bootstrap: [...network.bootstrap, ...config.mesh.bootstrap],
          mdns: config.mesh.mdns,
          scoredTopics: [adTopic(net)],
          relay: {
            ...(config.relay.enabled
              ? {
                  server: {
                    maxReservations: config.relay.maxReservations,
                    dataBytes: config.relay.connectionMb * 2 ** 20,
                    durationMs: config.relay.connectionSeconds * 1_000,
                  },
                }
              : {}),
            via: [...config.relay.via],
          },
        })
        const port = createLibp2pPort(libp2p, { logger: logger.child({ module: 'mesh' }) })
        stack.push({ name: 'mesh', stop: () => port.close() })
        const services: NodeService[] = []
        let compute: ComputeService | undefined
        let desk: PaymentDesk | undefined
        const computePrice = config.compute.enabled ? BigInt(config.compute.price) : 0n
        const storagePrice = config.storage.enabled ? BigInt(config.storage.price) : 0n
        // One cashier for every paid service: builders open one channel to this node's operator.
        if (computePrice > 0n || storagePrice > 0n) {
          if (identity.operatorKey === undefined)
            throw new InvalidArgumentError(
              'a node that charges for jobs or storage needs an operator key to redeem what builders pay',
              {
                hint: `Put the key in ${join(dir, NODE_FILES.operatorKey)}, or set [compute] and [storage] price = "0"`,
              },
            )
          const chain = createChainClient({
            chainId: network.chainId,
            contracts: network.contracts,
            rpc: config.chain.rpc || network.rpcUrl,
            privateKey: identity.operatorKey as `0x${string}`,
          })
          desk = new PaymentDesk(
            { network: net, creditJobs: config.compute.creditJobs },
            {
              ledger: chainProviderLedger(chain, { operator: identity.operatorAddress as `0x${string}` }),
              store: db.payments,
              now: () => Date.now(),
              logger: logger.child({ module: 'payments' }),
            },
          )
          const timer = setInterval(() => void desk?.redeemDue(), config.compute.redeemSeconds * 1_000)
          timer.unref()
          // Last: redeem what is owed before the process goes (bounded by the stop deadline).
          stack.push({
            name: 'payments',
            stop: async () => {
              clearInterval(timer)
              await desk?.redeemDue()
            },
          })
        }
        if (config.compute.enabled) {
          const pool = new SandboxPool(config.compute.slots > 0 ? { size: config.compute.slots } : {})
          stack.push({ name: 'sandboxes', stop: () => pool.close() })
          compute = new ComputeService(
            { network: net, price: computePrice, now: () => Date.now() },
            {
              pool,
              signer: createPeerSigner(identity.peerKey),
              ...(desk && computePrice > 0n ? { desk } : {}),
            },
          )
          services.push(compute)
        }
        let storage: StorageService | undefined
        if (config.storage.enabled) {
          const signer = createPeerSigner(identity.peerKey)
          storage = new StorageService(
            {
              network: net,
              price: storagePrice,
              quotaBytes: config.storage.quotaMb * 2 ** 20,
              now: () => Date.now(),
              // Leases: shards are dropped once their epochs are over or their rent stops.
              epochOf: (ms) =>
                Math.floor((ms / 1_000 - network.parameters.genesisTime) / network.parameters.epochDuration),
            },
            {
              ...(desk && storagePrice > 0n ? { desk } : {}),
              signer,
              codec: createWireCodec({
                network: net,
                signer,
                clock: systemClock,
                types: [...STORAGE_MESSAGES],
                nextSeq: (t) => db.nextSeq(t),
              }),
              logger: logger.child({ module: 'storage' }),
            },
          )
          services.push(storage)
        }
        let relay: RelayService | undefined
        if (config.relay.enabled) {
          const signer = createPeerSigner(identity.peerKey)
          relay = new RelayService(
            // Without the storage service, the relay forwards the storage topic for the holders
            // behind it (whose gossip may go out through it only).
            { network: net, forwardStorageTopic: !config.storage.enabled },
            {
              codec: createWireCodec({
                network: net,
                signer,
                clock: systemClock,
                types: [...STORAGE_MESSAGES],
                nextSeq: (t) => db.nextSeq(t),
              }),
              logger: logger.child({ module: 'relay' }),
              reservations: () => libp2p.services.relay?.reservations.size ?? 0,
            },
          )
          services.push(relay)
        }
        const sensors = buildSensorService({
          network: net,
          h3Cell: config.node.h3Cell,
          dir,
          config: config.sensors,
          signer: createPeerSigner(identity.peerKey),
          nextSeq: (t) => db.nextSeq(t),
        })
        if (sensors) services.push(sensors)
        const agent = new NodeAgent(
          {
            network: net,
            h3Cell: config.node.h3Cell,
            tier: config.node.tier,
            version: VERSION,
            refreshMs: config.ads.refreshSeconds * 1_000,
            ttlMs: config.ads.ttlSeconds * 1_000,
            dir,
          },
          {
            port,
            clock: systemClock,
            db,
            identity,
            resources,
            logger,
            services,
            addresses: () => libp2p.getMultiaddrs().map((a) => a.toString().replace(/\/p2p\/[^/]+$/, '')),
          },
        )
        // On the stack before it starts: a service that fails to start (a sensor certificate of
        // another key) leaves those started before it to be stopped, so the process exits.
        stack.push({ name: 'agent', stop: () => agent.stop() })
        await agent.start()
        if (config.relay.via.length > 0) {
          // A relay reservation brings the circuit address this node is dialled at: advertise it
          // then, not at the next refresh.
          let advertised = agent.status().addresses.join(' ')
          const onUpdate = (): void => {
            const now = agent.status().addresses.join(' ')
            if (now === advertised) return
            advertised = now
            agent
              .advertiseNow()
              .catch((err: unknown) => logger.warn({ err }, 'failed to advertise new addresses'))
          }
          libp2p.addEventListener('self:peer:update', onUpdate)
          stack.push({
            name: 'address watch',
            stop: () => libp2p.removeEventListener('self:peer:update', onUpdate),
          })
        }
        if (compute) {
          const served = compute
          registerComputeMetrics(agent.metrics.registry, {
            jobs: () => served.counts,
            ...(desk ? { payments: () => desk.counts, unredeemed: () => desk.totals().unredeemed } : {}),
          })
        }
        if (storage) {
          const held = storage
          registerStorageMetrics(agent.metrics.registry, () => held.counts)
        }
        if (relay) {
          const relaying = relay
          registerRelayMetrics(agent.metrics.registry, () => relaying.counts)
        }
        if (sensors) registerSensorMetrics(agent.metrics.registry, () => sensors.counts)
        const ops = await startOpsServer({
          listen: config.api.listen,
          registry: agent.metrics.registry,
          status: () => agent.status(),
          healthy: () => libp2p.status === 'started',
        })
        stack.push({ name: 'ops', stop: () => ops.close() })
        out.json({ ready: true, peerId: identity.peerId, addresses: agent.status().addresses, ops: ops.url })
        out.info(`Meshwork node ${identity.peerId} running`)
        for (const a of agent.status().addresses) out.info(`  listening ${a}/p2p/${identity.peerId}`)
        out.info(`  metrics   ${ops.url}/metrics   status ${ops.url}/status`)
        const signal = await waitForShutdown()
        out.step(`stopping (${signal})`)
      } finally {
        await stopWithin(stopAll, logger)
      }
    })
}
