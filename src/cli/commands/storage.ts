import { randomBytes } from 'node:crypto'
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  type WriteStream,
} from 'node:fs'
import { dirname } from 'node:path'
import type { Command } from 'commander'
import { formatUnits } from 'viem'
import { InvalidArgumentError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { readOperatorKeyFile } from '../../node/identity.js'
import { type LeaseStore, Meshwork, openLeaseStore } from '../../sdk/index.js'
import { globalOptions } from '../context.js'
import { DEFAULT_NETWORK_FILE } from '../network-option.js'
import { createOutput, type Output } from '../output.js'
import { parsePositiveInt } from '../parse.js'
import { waitForShutdown } from '../signals.js'

/** A progress line at most this often. */
const PROGRESS_EVERY_MS = 500

/** `K/N`: 1 <= K <= N <= 64. */
function parseRedundancy(value: string): { k: number; n: number } {
  const m = /^(\d{1,3})\/(\d{1,3})$/.exec(value)
  const k = Number(m?.[1])
  const n = Number(m?.[2])
  if (!m || k < 1 || n < k || n > 64)
    throw new InvalidArgumentError(`--redundancy must be K/N with 1 <= K <= N <= 64, got "${value}"`, {
      hint: 'For example 4/6: any 4 of 6 shards give the file back',
    })
  return { k, n }
}

/** `LAT,LON` or an H3 cell. */
function parsePlace(value: string): { lat: number; lon: number } | { cell: string } {
  if (/^[0-9a-f]{15}$/i.test(value)) return { cell: value.toLowerCase() }
  const [lat, lon, ...rest] = value.split(',').map((p) => Number(p.trim()))
  if (
    rest.length > 0 ||
    !Number.isFinite(lat) ||
    !Number.isFinite(lon) ||
    Math.abs(lat as number) > 90 ||
    Math.abs(lon as number) > 180
  )
    throw new InvalidArgumentError(`--near must be LAT,LON or an H3 cell, got "${value}"`)
  return { lat: lat as number, lon: lon as number }
}

/** Progress as `label 12.5 / 100.0 MiB (12%)`, at most twice a second. */
function progressLine(out: Output, label: string): (done: number, total: number) => void {
  let last = 0
  return (done, total) => {
    const now = Date.now()
    if (now - last < PROGRESS_EVERY_MS && done < total) return
    last = now
    const mib = (b: number) => (b / 2 ** 20).toFixed(1)
    out.step(
      `${label} ${mib(done)} / ${mib(total)} MiB (${total === 0 ? 100 : Math.floor((done * 100) / total)}%)`,
    )
  }
}

/** `meshwork put FILE` and `meshwork get ID`: files stored encrypted and erasure-coded on the mesh. */
export function storageCommands(program: Command): Command[] {
  const put = program
    .command('put')
    .description('store a file on the network, encrypted on this machine and erasure-coded over N nodes')
    .argument('<file>', 'the file to store')
    .option('--network <file>', 'the network file', DEFAULT_NETWORK_FILE)
    .option('--redundancy <K/N>', 'any K of N shards give the file back', '4/6')
    .option('--near <place>', 'prefer holders near LAT,LON or an H3 cell')
    .option('--epochs <n>', 'how many epochs to keep it', '10')
    .option('--key <file>', KEY_HELP)
    .option('--leases <file>', LEASES_HELP, DEFAULT_LEASES_FILE)
    .action(
      async (
        file: string,
        opts: {
          network: string
          redundancy: string
          near?: string
          epochs: string
          key?: string
          leases: string
        },
        cmd: Command,
      ) => {
        const g = globalOptions(cmd)
        const out = createOutput(g)
        const { k, n } = parseRedundancy(opts.redundancy)
        const epochs = parsePositiveInt(opts.epochs, '--epochs', 100_000)
        const near = opts.near === undefined ? undefined : parsePlace(opts.near)
        let size: number
        try {
          const st = statSync(file)
          if (!st.isFile()) throw new Error('not a file')
          size = st.size
        } catch {
          throw new InvalidArgumentError(`cannot read ${file}`, { hint: 'Give the path of a regular file' })
        }
        const leases = openLeases(opts.leases)
        out.step('joining the network')
        const mw = await Meshwork.connect({
          network: opts.network,
          logger: createLogger({ level: g.verbose ? 'debug' : 'silent' }),
          ...payerOf(opts.key),
        })
        try {
          out.step(`sealing and storing ${file} on ${n} nodes (any ${k} give it back)`)
          const r = await mw.storage.put(createReadStream(file, { highWaterMark: 1 << 20 }), {
            size,
            k,
            n,
            epochs,
            ...(near ? { near } : {}),
            onProgress: progressLine(out, 'stored'),
          })
          mw.storage.rent(leases).add(r.leases)
          out.json({ id: r.id, key: r.key, size, k, n, holders: r.holders, leases: opts.leases })
          out.info(`id  ${r.id}`)
          out.info(`key ${r.key}`)
          out.info(
            `  ${size} bytes in ${n} shards on ${new Set(r.holders).size} nodes; keep the key: nothing else opens the file`,
          )
          out.info(`  get it back: meshwork get ${r.id} --key ${r.key}`)
          out.info(
            `  the first epoch is paid; pay each later one as the holders prove it: meshwork rent --watch${opts.key ? ` --key ${opts.key}` : ''}`,
          )
        } finally {
          leases.close()
          await mw.close()
        }
      },
    )
  const get = program
    .command('get')
    .description('fetch a stored file by its id and key, and check every byte')
    .argument('<id>', 'the content identifier `put` printed')
    .option('--key <key>', 'the content key `put` printed (or $MESHWORK_CONTENT_KEY)')
    .option('-o, --output <file>', 'write the file here (default: stdout)')
    .option('--network <file>', 'the network file', DEFAULT_NETWORK_FILE)
    .action(async (id: string, opts: { key?: string; output?: string; network: string }, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const key = opts.key ?? process.env.MESHWORK_CONTENT_KEY
      if (key === undefined)
        throw new InvalidArgumentError('a stored file needs its content key', {
          hint: 'Pass --key mwk1.… (as `put` printed it) or set MESHWORK_CONTENT_KEY',
        })
      if (opts.output === undefined && g.json)
        throw new InvalidArgumentError('--json needs -o FILE (stdout carries the JSON result)')
      out.step('joining the network')
      const mw = await Meshwork.connect({
        network: opts.network,
        logger: createLogger({ level: g.verbose ? 'debug' : 'silent' }),
      })
      // Written to a temporary name and renamed once every byte checked: a failed get leaves no file.
      const temp = opts.output === undefined ? undefined : `${opts.output}.partial`
      const stream: WriteStream | NodeJS.WriteStream =
        temp === undefined ? process.stdout : createWriteStream(temp)
      try {
        const r = await mw.storage.get(id, key, {
          sink: (b) =>
            new Promise<void>((resolve, reject) => stream.write(b, (err) => (err ? reject(err) : resolve()))),
          onProgress: progressLine(out, 'fetched'),
        })
        if (temp !== undefined && opts.output !== undefined) {
          await new Promise<void>((resolve, reject) =>
            (stream as WriteStream).end((err?: Error | null) => (err ? reject(err) : resolve())),
          )
          renameSync(temp, opts.output)
        }
        out.json({ id, bytes: r.bytes, output: opts.output ?? null, faulty: r.faulty })
        if (opts.output !== undefined) out.info(`${r.bytes} bytes written to ${opts.output}`)
        if (r.faulty.length > 0)
          out.step(`holders that served changed bytes (skipped): ${r.faulty.join(', ')}`)
      } catch (err) {
        if (temp !== undefined) {
          ;(stream as WriteStream).destroy()
          rmSync(temp, { force: true })
        }
        throw err
      } finally {
        await mw.close()
      }
    })
  const repair = program
    .command('repair')
    .description('bring a stored file back to N shards: rebuild missing ones on new nodes (no key needed)')
    .argument('<id>', 'the content identifier')
    .option('--exclude <peer...>', 'holders not to count (e.g. ones that failed their challenges)')
    .option('--network <file>', 'the network file', DEFAULT_NETWORK_FILE)
    .option('--key <file>', KEY_HELP)
    .option('--leases <file>', LEASES_HELP, DEFAULT_LEASES_FILE)
    .action(
      async (
        id: string,
        opts: { exclude?: string[]; network: string; key?: string; leases: string },
        cmd: Command,
      ) => {
        const g = globalOptions(cmd)
        const out = createOutput(g)
        const leases = openLeases(opts.leases)
        out.step('joining the network')
        const mw = await Meshwork.connect({
          network: opts.network,
          logger: createLogger({ level: g.verbose ? 'debug' : 'silent' }),
          ...payerOf(opts.key),
        })
        try {
          out.step(`looking for the holders of ${id}`)
          const r = await mw.storage.repair(id, opts.exclude ? { exclude: opts.exclude } : {})
          mw.storage.rent(leases).add(r.leases)
          out.json({
            id,
            repaired: r.repaired.map((x) => ({ shard: x.shard, holder: x.holder })),
            redundancy: r.redundancy,
            n: r.manifest.n,
          })
          if (r.repaired.length === 0)
            out.info(`${id}: all ${r.manifest.n} shards are held; nothing to repair`)
          for (const x of r.repaired) out.info(`  shard ${x.shard} rebuilt on ${x.holder}`)
          if (r.repaired.length > 0) out.info(`${id}: ${r.redundancy} of ${r.manifest.n} shards held again`)
        } finally {
          leases.close()
          await mw.close()
        }
      },
    )
  const rent = program
    .command('rent')
    .description(
      'pay storage rent: challenge each leased shard once an epoch and pay the holders that prove theirs',
    )
    .option('--leases <file>', LEASES_HELP, DEFAULT_LEASES_FILE)
    .option('--key <file>', KEY_HELP)
    .option('--network <file>', 'the network file', DEFAULT_NETWORK_FILE)
    .option('--watch', 'keep settling, a few times an epoch, until Ctrl-C')
    .action(
      async (opts: { leases: string; key?: string; network: string; watch?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd)
        const out = createOutput(g)
        if (!existsSync(opts.leases))
          throw new InvalidArgumentError(`no leases at ${opts.leases}`, {
            hint: 'Store a file with `meshwork put` first, or pass --leases FILE',
          })
        const leases = openLeases(opts.leases)
        out.step('joining the network')
        const mw = await Meshwork.connect({
          network: opts.network,
          logger: createLogger({ level: g.verbose ? 'debug' : 'silent' }),
          ...payerOf(opts.key),
        })
        const payer = mw.storage.rent(leases)
        const priced = payer.leases().some((l) => l.state !== 'void' && l.price > 0n && l.operator !== '')
        if (priced && opts.key === undefined) {
          leases.close()
          await mw.close()
          throw new InvalidArgumentError('these leases charge rent; paying needs the account that pays', {
            hint: 'Pass --key FILE (the key file `put` was given)',
          })
        }
        const settle = async () => {
          const epoch = await mw.currentEpoch()
          const r = await payer.settle(epoch, randomBytes(16).toString('hex'))
          const all = payer.leases()
          const summary = {
            epoch,
            proven: r.proven,
            paid: formatUnits(r.paid, 18),
            unproven: r.unproven.map((u) => ({
              id: u.lease.cid,
              shard: u.lease.shard,
              holder: u.lease.holder,
              outcome: u.outcome,
            })),
            missed: r.missed,
            voided: r.voided.map((l) => ({ id: l.cid, shard: l.shard, holder: l.holder })),
            active: all.filter((l) => l.state === 'active').length,
            ended: all.filter((l) => l.state === 'ended').length,
            void: all.filter((l) => l.state === 'void').length,
          }
          out.json(summary)
          out.info(
            `epoch ${epoch}: ${r.proven} proven, ${summary.paid} MESH paid, ${r.unproven.length} not proven yet, ${summary.active} leases active`,
          )
          for (const v of r.voided)
            out.info(
              `  lease void (its challenges failed 2 epochs in a row): ${v.cid} shard ${v.shard} on ${v.holder}; run meshwork repair ${v.cid}`,
            )
        }
        try {
          await settle()
          if (opts.watch) {
            const everyMs = Math.min(
              60_000,
              Math.max(5_000, (mw.network.parameters.epochDuration * 1_000) / 4),
            )
            const stop = new AbortController()
            void waitForShutdown().then(() => stop.abort())
            while (!stop.signal.aborted) {
              await sleep(everyMs, stop.signal)
              if (!stop.signal.aborted) await settle()
            }
          }
        } finally {
          leases.close()
          await mw.close()
        }
      },
    )
  return [put, get, repair, rent]
}

/** Where `put`, `repair` and `rent` keep the owner's leases unless told otherwise. */
const DEFAULT_LEASES_FILE = '.meshwork/leases.db'
const LEASES_HELP = "the owner's storage leases (SQLite), where rent is settled from"
const KEY_HELP =
  'pay with this account (a file holding a funded 0x private key; the devnet writes builder.key)'

function openLeases(path: string): LeaseStore {
  mkdirSync(dirname(path), { recursive: true })
  return openLeaseStore(path)
}

function payerOf(key: string | undefined): { payer?: { privateKey: `0x${string}` } } {
  return key === undefined ? {} : { payer: { privateKey: readOperatorKeyFile(key) } }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve()
      },
      { once: true },
    )
  })
}
