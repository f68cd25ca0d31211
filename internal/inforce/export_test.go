package inforce

// WantEvery is how often a waiting node asks the other nodes again.
const WantEvery = wantEvery

// LagAfter is how long a node is behind a wait before it names who lags.
const LagAfter = lagAfter
