// Builds the tegata binary from this checkout into js/.cache/tegata, once
// per `npm test`, so that every test file runs the code beside it.
import { binary } from './authority.js'
binary()
