package gate

import "strings"

// Tokens in a User-Agent that name a browser or a system, most specific
// first: Edge, Opera and Samsung Internet also say "Chrome", Chrome on iOS
// says "CriOS" and every Chromium also says "Safari".
var (
	uaBrowsers = []struct{ token, name string }{
		{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"OPR/", "Opera"},
		{"SamsungBrowser/", "Samsung Internet"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	}
	uaSystems = []struct{ token, name string }{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
		{"Windows", "Windows"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
	}
)

// deviceLabel names the device of a User-Agent for the devices list, e.g.
// "Firefox on Windows". It is a label for people, not a fingerprint: an
// unknown agent is "Unknown browser".
func deviceLabel(ua string) string {
	browser, system := "", ""
	for _, b := range uaBrowsers {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, s := range uaSystems {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "Browser on " + system
	}
	return "Unknown browser"
}
