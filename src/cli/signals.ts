/**
 * Resolves on the first SIGINT or SIGTERM (Ctrl-C), for long-running commands, with the signal's
 * name. A process started with an IPC channel (a devnet member) also stops when that channel closes:
 * its parent is gone, even if it was killed with SIGKILL and could not stop it.
 */
export function waitForShutdown(): Promise<NodeJS.Signals | 'parent gone'> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals | 'parent gone') => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      process.off('disconnect', onDisconnect)
      resolve(signal)
    }
    const onDisconnect = () => on('parent gone')
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
    if (process.connected) {
      process.on('disconnect', onDisconnect)
      // The channel alone must not keep a stopped process alive.
      process.channel?.unref()
    }
  })
}

/** How long a clean stop may take before the process exits anyway. */
export const STOP_DEADLINE_MS = 5_000

/** Runs `stop`; if it has not finished within {@link STOP_DEADLINE_MS}, logs it and exits with 1. */
export async function stopWithin(
  stop: () => Promise<void>,
  logger: { error(msg: string): void },
): Promise<void> {
  const deadline = setTimeout(() => {
    logger.error(`did not stop within ${STOP_DEADLINE_MS / 1000} s; exiting`)
    process.exit(1)
  }, STOP_DEADLINE_MS)
  deadline.unref()
  await stop()
  clearTimeout(deadline)
}
