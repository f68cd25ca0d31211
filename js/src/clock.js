// The verifier's one clock: its decisions (token times, staleness, leases)
// and its timers (lease renewals, pruning, key refresh) follow it, so that
// a test that moves the time moves the timers with it. Waits on an
// authority (request timeouts, retries, a silent stream) stay on the wall
// clock, as Go's feed.Client does: a stopped test clock must not stop the
// verifier from reaching its peer.

/** wallClock is the real time: Date.now and the global timers. */
export const wallClock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (h) => clearTimeout(h),
})

/** checkClock returns c, or wallClock when c is undefined; it throws a TypeError naming what c lacks. */
export function checkClock(c, what) {
  if (c === undefined) return wallClock
  for (const m of ['now', 'setTimeout', 'clearTimeout']) {
    if (typeof c?.[m] !== 'function') throw new TypeError(`${what}: clock.${m} must be a function (a clock is { now, setTimeout, clearTimeout })`)
  }
  return c
}
