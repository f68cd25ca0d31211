// Self-hosted (TEGATA_MODE=self, no gate in front): one @tegata/node
// verifier per server process, started before the first request and shared
// through globalThis by every route. Behind `tegata gate --web` nothing
// starts here: the gate verifies, and auth() reads its headers.
export async function register() {
  if (process.env.NEXT_RUNTIME === 'nodejs' && process.env.TEGATA_MODE === 'self') {
    const { startVerifier } = await import('@tegata/node/next')
    await startVerifier({ authorities: [process.env.TEGATA_URL], feedKey: process.env.TEGATA_FEED_KEY, name: 'nextjs-example' })
  }
}
