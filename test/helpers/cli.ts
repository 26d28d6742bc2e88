import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The built `meshwork` command (npm test builds before the e2e group). */
export const BIN = join(dirname(fileURLToPath(import.meta.url)), '../../bin/meshwork.js')

/**
 * Spawns `node bin/meshwork.js ARGS`, or `WRAP… node bin/meshwork.js ARGS` when a wrapper command is
 * given (e.g. `nsenter -t PID -n` to run it in a network namespace; the wrapper must exec it).
 */
function spawnCli(args: string[], wrap: string[] | undefined, options: SpawnOptions): ChildProcess {
  const command = [...(wrap ?? []), process.execPath, BIN, ...args]
  return spawn(command[0] as string, command.slice(1), options)
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI to completion (bounded by `timeoutMs`). */
export function runCli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; wrap?: string[] } = {},
) {
  return new Promise<CliResult>((resolve, reject) => {
    const child = spawnCli(args, opts.wrap, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d) => {
      stdout += d
    })
    child.stderr?.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(
        new Error(`meshwork ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60_000} ms\n${stderr}`),
      )
    }, opts.timeoutMs ?? 60_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** A long-running CLI process (chain start, devnet) whose output can be awaited. */
export interface CliProcess {
  child: ChildProcess
  output(): string
  /** Resolves with the first match of `pattern` in stdout+stderr, or rejects at the deadline. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /** Sends `signal` and resolves with the exit code once the process has exited. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>
}

/** Starts the CLI in the background. */
export function startCli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; wrap?: string[] } = {},
): CliProcess {
  const child = spawnCli(args, opts.wrap, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let text = ''
  const listeners = new Set<() => void>()
  const onData = (d: Buffer) => {
    text += d.toString()
    for (const l of listeners) l()
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {
    child,
    output: () => text,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = text.match(pattern)
          if (m) {
            listeners.delete(check)
            clearTimeout(timer)
            resolve(m)
          }
        }
        const timer = setTimeout(() => {
          listeners.delete(check)
          reject(new Error(`timed out waiting for ${pattern}; output so far:\n${text}`))
        }, timeoutMs)
        listeners.add(check)
        void exited.then((code) => {
          if (listeners.has(check)) {
            listeners.delete(check)
            clearTimeout(timer)
            reject(new Error(`process exited (${code}) before ${pattern}; output:\n${text}`))
          }
        })
        check()
      })
    },
    async stop(signal = 'SIGINT', timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/**
 * Starts `meshwork chain start` on a free port in `cwd` and deploys the contracts to it, writing
 * `cwd/network.json`; resolves with the chain process (stop it when done).
 */
export async function startDeployedChain(cwd: string): Promise<CliProcess> {
  const chain = startCli(['chain', 'start', '--port', '0'], { cwd })
  const url = (await chain.waitFor(/listening: (http:\/\/127\.0\.0\.1:\d+)/))[1] as string
  const deployed = await runCli(['deploy', '--rpc', url, '--out', 'network.json'], { cwd })
  if (deployed.code !== 0) {
    await chain.stop('SIGKILL')
    throw new Error(`deploy exited ${deployed.code}: ${deployed.stderr}`)
  }
  return chain
}
