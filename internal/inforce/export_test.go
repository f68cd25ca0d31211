package inforce

// WantEvery is how often a waiting node asks the other nodes again.
const WantEvery = wantEvery
