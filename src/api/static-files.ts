import { readdirSync, readFileSync, statSync } from 'node:fs'
import { extname, join, relative, sep } from 'node:path'
import { InvalidArgumentError } from '../core/errors.js'

/** A file the dashboard serves. */
export interface StaticFile {
  body: Buffer
  contentType: string
  /** Vite's hashed assets never change; everything else is revalidated. */
  immutable: boolean
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
}

/** Most files and bytes a dashboard directory may hold (it is loaded into memory once). */
export const MAX_STATIC_FILES = 500
export const MAX_STATIC_BYTES = 32 * 1024 * 1024

/**
 * Loads a built dashboard (`dist/web`) into memory, keyed by URL path ("/index.html",
 * "/assets/index-1a2b.js"). Only the files present at start are ever served, so no request path can
 * reach outside the directory. Files of unknown types are left out.
 *
 * @throws InvalidArgumentError when the directory has no index.html, or more than the caps.
 */
export function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>()
  let bytes = 0
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name)
      if (entry.isDirectory()) {
        walk(path)
        continue
      }
      const contentType = TYPES[extname(entry.name).toLowerCase()]
      if (!entry.isFile() || contentType === undefined) continue
      bytes += statSync(path).size
      if (files.size >= MAX_STATIC_FILES || bytes > MAX_STATIC_BYTES)
        throw new InvalidArgumentError(`the dashboard in ${dir} is larger than the server loads`, {
          details: { maxFiles: MAX_STATIC_FILES, maxBytes: MAX_STATIC_BYTES },
        })
      const url = `/${relative(dir, path).split(sep).join('/')}`
      files.set(url, { body: readFileSync(path), contentType, immutable: url.startsWith('/assets/') })
    }
  }
  walk(dir)
  if (!files.has('/index.html'))
    throw new InvalidArgumentError(`no dashboard in ${dir}: index.html is missing`, {
      hint: 'Run `npm run build` (it builds the dashboard into dist/web)',
    })
  return files
}
