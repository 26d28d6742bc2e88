import type { Command } from 'commander'
import { InvalidArgumentError } from '../../core/errors.js'
import { createLogger } from '../../core/logger.js'
import { Meshwork } from '../../sdk/index.js'
import { SENSOR_KINDS, type SensorKind } from '../../sensors/reading.js'
import { MAX_SUBSCRIBE_RADIUS_KM, type SubscribedReading } from '../../sensors/subscriber.js'
import { globalOptions } from '../context.js'
import { DEFAULT_NETWORK_FILE } from '../network-option.js'
import { createOutput, toJson } from '../output.js'
import { parsePositiveInt } from '../parse.js'
import { waitForShutdown } from '../signals.js'

/** `LAT,LON`. */
function parseLatLon(value: string): { lat: number; lon: number } {
  const parts = value.split(',').map((p) => Number(p.trim()))
  const [lat, lon] = parts
  if (
    parts.length !== 2 ||
    !Number.isFinite(lat) ||
    !Number.isFinite(lon) ||
    Math.abs(lat as number) > 90 ||
    Math.abs(lon as number) > 180
  )
    throw new InvalidArgumentError(`--near must be LAT,LON, got "${value}"`, {
      hint: 'For example --near 52.52,13.40',
    })
  return { lat: lat as number, lon: lon as number }
}

/** One line for people: time, kind, value, distance, sensor, quality. */
function describe(r: SubscribedReading): string {
  const time = new Date(r.at).toISOString().slice(11, 19)
  const flag = r.quality.flag === 'ok' ? 'ok' : `suspect (${r.quality.reasons.join(', ')})`
  return `${time}  ${r.kind.padEnd(11)} ${String(r.value).padStart(8)} ${r.unit.padEnd(6)} ${String(r.distanceKm).padStart(4)} km  ${r.sensor.slice(-8)}  ${flag}`
}

/** `meshwork stream subscribe`: live sensor readings near a place. */
export function streamCommands(program: Command): Command {
  const stream = program.command('stream').description('live sensor data from the network')
  stream
    .command('subscribe')
    .description('print the checked sensor readings near a place as they arrive (Ctrl-C stops)')
    .requiredOption('--near <lat,lon>', 'the place, e.g. 52.52,13.40')
    .option('--radius <km>', `kilometres around it (at most ${MAX_SUBSCRIBE_RADIUS_KM})`, '25')
    .option('--kind <kind>', `only one kind (${Object.keys(SENSOR_KINDS).join(', ')})`)
    .option('--count <n>', 'stop after this many readings')
    .option('--timeout <seconds>', 'stop after this long')
    .option('--network <file>', 'the network file', DEFAULT_NETWORK_FILE)
    .action(
      async (
        opts: {
          near: string
          radius: string
          kind?: string
          count?: string
          timeout?: string
          network: string
        },
        cmd: Command,
      ) => {
        const g = globalOptions(cmd)
        const out = createOutput(g)
        const near = parseLatLon(opts.near)
        const radiusKm = Number(opts.radius)
        if (!(Number.isFinite(radiusKm) && radiusKm > 0 && radiusKm <= MAX_SUBSCRIBE_RADIUS_KM))
          throw new InvalidArgumentError(
            `--radius must be in (0, ${MAX_SUBSCRIBE_RADIUS_KM}] km, got "${opts.radius}"`,
          )
        if (opts.kind !== undefined && !(opts.kind in SENSOR_KINDS))
          throw new InvalidArgumentError(`unknown --kind "${opts.kind}"`, {
            hint: `Use one of ${Object.keys(SENSOR_KINDS).join(', ')}`,
          })
        const count =
          opts.count === undefined ? undefined : parsePositiveInt(opts.count, '--count', 1_000_000_000)
        const timeoutS =
          opts.timeout === undefined ? undefined : parsePositiveInt(opts.timeout, '--timeout', 86_400 * 365)
        out.step('joining the network')
        const mw = await Meshwork.connect({
          network: opts.network,
          logger: createLogger({ level: g.verbose ? 'debug' : 'silent' }),
        })
        let seen = 0
        let done: (why: string) => void = () => undefined
        const finished = new Promise<string>((resolve) => {
          done = resolve
        })
        try {
          const sub = await mw.sensors.subscribe(
            { near, radiusKm, ...(opts.kind === undefined ? {} : { kind: opts.kind as SensorKind }) },
            (r) => {
              if (count !== undefined && seen >= count) return
              seen++
              // One JSON object per line for scripts; a table row for people.
              if (g.json) process.stdout.write(`${toJson(r)}\n`)
              else out.info(describe(r))
              if (count !== undefined && seen >= count) done('count')
            },
          )
          out.step(
            `following ${sub.cells.length} cells within ${radiusKm} km of ${near.lat},${near.lon}; Ctrl-C stops`,
          )
          const timer =
            timeoutS === undefined ? undefined : setTimeout(() => done('timeout'), timeoutS * 1_000)
          void waitForShutdown().then((signal) => done(String(signal)))
          const why = await finished
          if (timer) clearTimeout(timer)
          sub.unsubscribe()
          out.step(`stopped (${why}): ${seen} readings, ${sub.dropped()} dropped`)
        } finally {
          await mw.close()
        }
      },
    )
  return stream
}
