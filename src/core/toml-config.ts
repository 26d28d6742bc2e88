import { existsSync, readFileSync } from 'node:fs'
import { parse as parseToml } from 'smol-toml'
import type { z } from 'zod'
import { InvalidArgumentError } from './errors.js'

/** Largest config file accepted. */
const MAX_CONFIG_BYTES = 64 * 1024

/**
 * Reads a TOML config file, applies `MESHWORK_SECTION__KEY` environment overrides (the key in
 * UPPER_SNAKE, e.g. `MESHWORK_ADS__REFRESH_SECONDS=30`; values parse as TOML values, else as
 * strings), validates it against `schema` and freezes it. Errors name the file, the key and the
 * fix; `missingHint` says how to create the file.
 */
export function loadTomlConfig<S extends z.ZodType>(
  path: string,
  schema: S,
  options: { env?: NodeJS.ProcessEnv; missingHint: string },
): Readonly<z.infer<S>> {
  if (!existsSync(path)) {
    throw new InvalidArgumentError(`config file ${path} does not exist`, { hint: options.missingHint })
  }
  const text = readFileSync(path, 'utf8')
  if (text.length > MAX_CONFIG_BYTES) throw new InvalidArgumentError(`config file ${path} is too large`)
  let raw: Record<string, unknown>
  try {
    raw = parseToml(text) as Record<string, unknown>
  } catch (err) {
    throw new InvalidArgumentError(
      `config file ${path} is not valid TOML: ${(err as Error).message.split('\n')[0]}`,
      { cause: err },
    )
  }
  for (const [name, value] of Object.entries(options.env ?? process.env)) {
    const m = /^MESHWORK_([A-Z0-9]+)__([A-Z0-9_]+)$/.exec(name)
    if (!m || value === undefined) continue
    const section = (m[1] as string).toLowerCase()
    const key = (m[2] as string).toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())
    const table = (raw[section] ?? {}) as Record<string, unknown>
    table[key] = parseEnvValue(value)
    raw[section] = table
  }
  const parsed = schema.safeParse(raw)
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
