// A clock for tests that moves only when the test moves it, with timers
// that fire as it passes them: the verifier's { now, setTimeout,
// clearTimeout } (src/clock.js).

/** fakeClock returns a clock stopped at start (Unix ms). */
export function fakeClock(start) {
  const timers = new Set()
  const c = {
    t: start,
    now: () => c.t,
    setTimeout(f, ms) {
      const h = { at: c.t + Math.max(0, ms), f }
      timers.add(h)
      return h
    },
    clearTimeout(h) {
      timers.delete(h)
    },
    /** add moves the clock by ms, firing the timers it passes in the order they fall due, each at its time. */
    add(ms) {
      const end = c.t + ms
      for (;;) {
        let next = null
        for (const h of timers) if (h.at <= end && (!next || h.at < next.at)) next = h
        if (!next) break
        timers.delete(next)
        c.t = next.at
        next.f()
      }
      c.t = end
    },
    /** armedAt says whether a timer is armed to fire at t. */
    armedAt: (t) => [...timers].some((h) => h.at === t),
  }
  return c
}
