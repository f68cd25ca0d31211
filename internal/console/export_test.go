package console

// Patterns returns the pattern of every route the console serves, for the
// authorization test to check its table against.
func Patterns() []string {
	var c Console
	var out []string
	for _, rt := range c.routes() {
		out = append(out, rt.pattern)
	}
	return out
}
