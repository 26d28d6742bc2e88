import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

/** The dashboard: built into dist/web, which `meshwork devnet` serves; nothing is fetched at run time. */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1_000,
  },
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  logLevel: 'warn',
})
