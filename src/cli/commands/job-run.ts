import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import type { Command } from 'commander'
import { formatUnits, parseUnits } from 'viem'
import { InvalidArgumentError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { readOperatorKeyFile } from '../../node/identity.js'
import { Meshwork } from '../../sdk/index.js'
import { globalOptions } from '../context.js'
import { DEFAULT_NETWORK_FILE } from '../network-option.js'
import { createOutput } from '../output.js'
import { parsePositiveInt } from '../parse.js'

/** How often a running job's progress line is refreshed. */
const PROGRESS_EVERY_MS = 5_000

interface Options {
  network: string
  input?: string
  inputFile?: string
  near?: string
  maxRtt?: string
  localOnly?: boolean
  tier: string
  maxPrice: string
  timeMs?: string
  memoryMb?: string
  operator?: string[]
  verify?: string
  key?: string
}

/** `--near LAT,LON[,KM]` or an H3 cell. */
function parseNear(value: string): { lat: number; lon: number; radiusKm?: number } | { cell: string } {
  const parts = value.split(',').map((p) => p.trim())
  if (parts.length === 1 && /^[0-9a-f]{15}$/i.test(value)) return { cell: value.toLowerCase() }
  const [lat, lon, km] = parts.map(Number)
  if (
    (parts.length !== 2 && parts.length !== 3) ||
    !Number.isFinite(lat) ||
    !Number.isFinite(lon) ||
    Math.abs(lat as number) > 90 ||
    Math.abs(lon as number) > 180 ||
    (km !== undefined && !(km > 0))
  )
    throw new InvalidArgumentError(`--near must be LAT,LON[,KM] or an H3 cell, got "${value}"`)
  return { lat: lat as number, lon: lon as number, ...(km === undefined ? {} : { radiusKm: km }) }
}

/** `meshwork job run FILE`: place a job on the network and print its checked, signed result. */
export function jobCommands(program: Command): Command {
  const job = program.command('job').description("builders' jobs: run code near its data, paid per job")
  job
    .command('run')
    .description('run a .wasm module, a .js function (`(input) => output`) or an .onnx model on the network')
    .argument(
      '<file>',
      'a .wasm module (ABI in docs/protocol.md), a .js file holding one function, or an .onnx model',
    )
    .option('--network <file>', 'the network file', DEFAULT_NETWORK_FILE)
    .option('--input <json>', 'JS: the input as JSON; ONNX: the feeds as JSON; WASM: as UTF-8 text')
    .option('--input-file <file>', 'the input from a file (JS, ONNX: JSON; WASM: raw bytes)')
    .option('--near <place>', 'LAT,LON[,KM] (default radius 100 km) or an H3 cell')
    .option('--max-rtt <ms>', 'only nodes within this round trip')
    .option('--local-only', 'only nodes of your own operator addresses (--operator)')
    .option('--operator <address...>', 'your operator addresses, for --local-only')
    .option('--tier <tier>', 'edge, cloud or any (edge first either way)', 'any')
    .option('--max-price <mesh>', 'the most to pay, in MESH', '1')
    .option('--time-ms <ms>', 'time limit')
    .option('--memory-mb <mb>', 'memory limit')
    .option(
      '--verify <p>',
      're-run on an independent node with this probability, 0 to 1 (default: adaptive, within the bounds NetworkParams sets on the chain)',
    )
    .option(
      '--key <file>',
      'pay with this account (a file holding a funded 0x private key; the devnet writes builder.key)',
    )
    .action(async (file: string, opts: Options, cmd: Command) => {
      const g = globalOptions(cmd)
      const out = createOutput(g)
      const ext = extname(file).toLowerCase()
      if (ext !== '.wasm' && ext !== '.js' && ext !== '.onnx')
        throw new InvalidArgumentError(`${file}: a job is a .wasm module, a .js function or an .onnx model`, {
          hint: 'Name the file .wasm, .js or .onnx',
        })
      const kind = ext === '.wasm' ? 'wasm' : ext === '.js' ? 'js' : 'onnx'
      let code: Uint8Array
      try {
        code = new Uint8Array(readFileSync(file))
      } catch {
        throw new InvalidArgumentError(`cannot read ${file}`)
      }
      if (opts.tier !== 'edge' && opts.tier !== 'cloud' && opts.tier !== 'any')
        throw new InvalidArgumentError(`--tier must be edge, cloud or any, got "${opts.tier}"`)
      if (!/^\d{1,12}(\.\d{1,18})?$/.test(opts.maxPrice))
        throw new InvalidArgumentError(`--max-price must be an amount of MESH, got "${opts.maxPrice}"`)
      let input: unknown
      const raw = opts.inputFile !== undefined ? readFileSync(opts.inputFile, 'utf8') : opts.input
      if (kind !== 'wasm') {
        try {
          input = raw === undefined ? null : JSON.parse(raw)
        } catch {
          throw new InvalidArgumentError(
            `the input of ${kind === 'js' ? 'a JS' : 'an ONNX'} job must be JSON`,
            {
              hint: `Got: ${raw?.slice(0, 60)}`,
            },
          )
        }
      } else {
        input = opts.inputFile !== undefined ? new Uint8Array(readFileSync(opts.inputFile)) : (raw ?? '')
      }
      const limits = {
        ...(opts.timeMs ? { timeMs: parsePositiveInt(opts.timeMs, '--time-ms', 60_000) } : {}),
        ...(opts.memoryMb ? { memoryMb: parsePositiveInt(opts.memoryMb, '--memory-mb', 512) } : {}),
      }
      const verify = opts.verify === undefined ? undefined : Number(opts.verify)
      if (verify !== undefined && !(verify >= 0 && verify <= 1))
        throw new InvalidArgumentError(`--verify must be a probability from 0 to 1, got "${opts.verify}"`)
      const logger = createLogger({ level: g.verbose ? 'debug' : 'silent' })
      const payer = opts.key === undefined ? undefined : { privateKey: readOperatorKeyFile(opts.key) }
      out.step('joining the network')
      const mw = await Meshwork.connect({
        network: opts.network,
        logger,
        ...(payer ? { payer } : {}),
        ...(opts.operator ? { ownOperators: opts.operator } : {}),
      })
      // A long job says it is still going, with the time so far, every few seconds.
      const started = Date.now()
      let current = ''
      const ticker = setInterval(() => {
        if (current) out.step(`${current} (${Math.round((Date.now() - started) / 1000)} s)`)
      }, PROGRESS_EVERY_MS)
      ticker.unref()
      try {
        const r = await mw.jobs.run({
          kind,
          // A file holding one function expression; a trailing semicolon is allowed.
          code: ext === '.js' ? new TextDecoder().decode(code).trim().replace(/;$/, '') : code,
          input,
          limits,
          ...(opts.near ? { near: parseNear(opts.near) } : {}),
          ...(opts.maxRtt ? { maxRttMs: parsePositiveInt(opts.maxRtt, '--max-rtt', 10_000) } : {}),
          localOnly: opts.localOnly === true,
          tier: opts.tier,
          maxPrice: parseUnits(opts.maxPrice, 18),
          ...(verify === undefined ? {} : { verify }),
          onProgress: (stage, detail) => {
            if (stage === 'placing') out.step(`asking for quotes (${detail.known} nodes known)`)
            if (stage === 'running') {
              current = `running on ${detail.provider ?? 'the best quote'}`
              out.step(current)
            }
            if (stage === 'verifying') {
              current = 're-running on an independent node to check the result'
              out.step(current)
            }
          },
        })
        clearInterval(ticker)
        out.json({
          jobId: r.jobId,
          ...(r.value === undefined
            ? { output: Buffer.from(r.output).toString('base64') }
            : { value: r.value }),
          provider: r.provider,
          tier: r.tier,
          fallback: r.fallback,
          price: r.price.toString(),
          latencyMs: Math.round(r.latencyMs * 10) / 10,
          verification: r.verification,
          evidence: r.evidence,
          paid: r.paid.toString(),
        })
        out.info(
          r.value === undefined ? Buffer.from(r.output).toString('hex') : JSON.stringify(r.value, null, 2),
        )
        out.info(
          `  ran on ${r.provider} (${r.tier}${r.fallback ? ', cloud fallback' : ''}) for ${formatUnits(r.price, 18)} MESH (paid ${formatUnits(r.paid, 18)} with checks) in ${Math.round(r.latencyMs)} ms; result ${r.verification}`,
        )
      } finally {
        clearInterval(ticker)
        await mw.close()
      }
    })
  return job
}
